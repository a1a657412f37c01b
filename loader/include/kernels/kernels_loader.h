/* kernels_loader.h: FlashAttention-3-compatible attention for inference servers, as a C ABI.
 *
 * What it does
 *   Each call runs attention on the caller's CUDA stream. The kernels come from a community bundle
 *   pinned by kernels.lock (verified byte for byte against the lock, then loaded from the same
 *   bytes), or from the kernels built into this library. No network access, ever.
 *
 * Which kernels serve a device (decided once per device, on first use)
 *   1. KERNELS_USE_BUILTIN=1                        -> built-in kernels.
 *   2. Lockfile: KERNELS_LOCKFILE, else <cache>/kernels.lock, where <cache> is the cache that
 *      `kernels download` fills ($KERNELS_CACHE, $HF_HUB_CACHE, $HF_HOME/hub,
 *      ~/.cache/huggingface/hub).
 *      Without KERNELS_LOCKFILE, when that lock (the project downloaded last) does not serve the
 *      family, the locks of the other projects that downloaded into the cache are tried; used
 *      when those that serve it agree on the revision.
 *   3. The repo for ver=3 is KERNELS_FA3_REPO (default kernels-community/attention-fa3), for ver=4
 *      KERNELS_FA4_REPO (default kernels-community/attention-fa4).
 *   4. The variant for this GPU (cubin-cu<MAJ><MIN>-sm<CC>[a]) is chosen, read, hash-checked,
 *      its manifest.json checked against this library's params ABI, and loaded. With
 *      KERNELS_REQUIRE_SIGNED=1, the cache must also hold the signature record that
 *      `kernels download --require-signatures` writes for exactly this commit and variant, naming
 *      the SHA-256 of the variant's metadata.json as read (reasons "unsigned": no record or no
 *      metadata.json; "signature_unverified": a record that does not vouch for these bytes; both
 *      KL_ERR_INTEGRITY in reason_code; docs/SIGNATURES.md).
 *   Any failure in 2-4 for ver=3 -> built-in kernels plus ONE warning per reason through the log
 *   sink. ver=4 has no built-in family: without a verified bundle, calls fail with
 *   KL_ERR_NO_VARIANT and say why. kernels_loader_device_source() reports the decision.
 *   The built-in kernels are loaded and checked in kernels_loader_init(), so a broken fallback
 *   fails at start-up, never at the first request.
 *
 * Calling convention
 *   - Structs start with struct_size, set by their _init function. A program built
 *     against another version of this header keeps working: a newer, larger struct is accepted
 *     when the fields this library does not know are zero; an older, smaller one keeps the
 *     defaults for the fields it lacks. Anything else is KL_ERR_INVALID_ARGUMENT, reported
 *     before the driver is needed.
 *   - Tensors are kl_tensor: device pointer, dtype, shape and strides in elements (like torch).
 *     A tensor with data == NULL means "not given" (None in Python).
 *   - Outputs are caller-allocated: out, optional softmax_lse (fp32; (h, total_q) for varlen q,
 *     (b, h, s_q) for batched q) and a workspace of kernels_loader_*_workspace_size() bytes.
 *   - No allocation, no host synchronisation inside a call: graph-capturable.
 *   - Every argument is validated before anything is launched; on error nothing is launched,
 *     the call returns a status and kernels_loader_last_error() says what and why.
 *   - Thread-safe. Several GPUs: the stream's device decides.
 *   - Index values (cu_seqlens, cache_seqlens, page ids) are trusted, as FA3 trusts them, unless
 *     a call's check_values is 1, or -1 (the default) with KERNELS_LOADER_DEBUG_CHECKS=1 when the
 *     library started: then they are checked too, which synchronises the stream. (The Python
 *     package reads the variable at every call and sets check_values from it.)
 *
 * Minimal use (see loader/examples/attention_example.cpp):
 *   if (kernels_loader_init(NULL) != KL_OK)
 *     fprintf(stderr, "%s\n", kernels_loader_last_error());
 *   kl_varlen_args a; kernels_loader_varlen_args_init(&a);
 *   a.q = ...; a.k = ...; a.v = ...; a.cu_seqlens_q = ...; a.cu_seqlens_k = ...;
 *   a.max_seqlen_q = ...; a.max_seqlen_k = ...; a.causal = 1; a.out = ...;
 *   size_t ws; kernels_loader_varlen_workspace_size(&a, stream, &ws);  (allocate ws bytes once)
 *   a.workspace = ...; a.workspace_bytes = ws;
 *   int rc = kernels_loader_flash_attn_varlen_func(&a, stream);
 */
#ifndef KERNELS_LOADER_H
#define KERNELS_LOADER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KERNELS_LOADER_ABI_VERSION 1

/* Status codes: the project's exit-code table (kernels::ErrorCode). */
enum kl_status {
  KL_OK = 0,
  KL_ERR_INVALID_ARGUMENT = 2, /* validation failed; nothing was launched */
  KL_ERR_LOCKFILE_MISSING = 3,
  KL_ERR_LOCKFILE_INVALID = 5,
  KL_ERR_INTEGRITY = 6,
  KL_ERR_UNSAFE = 11,
  KL_ERR_NO_VARIANT = 12, /* no kernels for this GPU / ver / shape */
  KL_ERR_IO = 13,
  KL_ERR_NO_DEVICE = 14, /* no CUDA driver or device, or a driver call failed */
  KL_ERR_INTERNAL = 70
};

enum kl_dtype {
  KL_DTYPE_NONE = 0,
  KL_DTYPE_FLOAT16 = 1,
  KL_DTYPE_BFLOAT16 = 2,
  KL_DTYPE_FLOAT32 = 3,
  KL_DTYPE_INT32 = 4,
  KL_DTYPE_FLOAT8_E4M3 = 5,
  KL_DTYPE_INT64 = 6
};

/* A strided tensor; data == NULL means "not given". device: CUDA ordinal, -1 = host memory. */
typedef struct kl_tensor {
  void* data;
  int32_t dtype; /* enum kl_dtype */
  int32_t ndim;  /* 0..4 */
  int64_t shape[4];
  int64_t stride[4]; /* in elements */
  int32_t device;
  int32_t reserved;
} kl_tensor;

/* FA3's flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
 * seqused_q, seqused_k, page_table, softmax_scale, causal, qv, q_descale, k_descale, v_descale,
 * window_size, attention_chunk, softcap, num_splits, pack_gqa, sm_margin, return_softmax_lse,
 * sinks, ver). Defaults come from kernels_loader_varlen_args_init(). */
typedef struct kl_varlen_args {
  uint32_t struct_size;   /* sizeof(kl_varlen_args), set by _init */
  int32_t ver;            /* 3 or 4 */
  kl_tensor q;            /* (total_q, h, d) */
  kl_tensor k;            /* (total_k, h_k, d) */
  kl_tensor v;            /* (total_k, h_k, dv) */
  kl_tensor cu_seqlens_q; /* (b+1,) int32 */
  kl_tensor cu_seqlens_k; /* (b+1,) int32 */
  int64_t max_seqlen_q;   /* required; -1 = not given */
  int64_t max_seqlen_k;   /* required; -1 = not given */
  kl_tensor seqused_q;
  kl_tensor seqused_k;
  kl_tensor page_table;
  double softmax_scale; /* 0 = default (d ** -0.5) */
  int32_t causal;
  int32_t window_left; /* -1 = unbounded */
  int32_t window_right;
  int32_t attention_chunk;
  float softcap;      /* 0 = off */
  int32_t num_splits; /* 0 = heuristic, 1 = off (deterministic), n */
  int32_t pack_gqa;   /* -1 = None (heuristic), 0, 1 */
  int32_t sm_margin;
  kl_tensor qv;
  kl_tensor q_descale, k_descale, v_descale;
  kl_tensor sinks;       /* (h,) fp32 (FA3 takes bf16; the Python wrapper converts) */
  kl_tensor out;         /* (total_q, h, dv), caller-allocated, dtype of q */
  kl_tensor softmax_lse; /* optional: (h, total_q) fp32 */
  void* workspace;
  size_t workspace_bytes;
  /* The index tensors' values (cu_seqlens, cache_seqlens / seqused_k, page ids) copied to the host
   * and checked before the launch, which synchronises the stream and cannot be graph-captured:
   * -1 (the _init default) as KERNELS_LOADER_DEBUG_CHECKS said when the library started, 0 no,
   * 1 yes. */
  int32_t check_values;
} kl_varlen_args;

/* FA3's flash_attn_with_kvcache(q, k_cache, v_cache, k, v, qv, rotary_cos, rotary_sin,
 * cache_seqlens, cache_batch_idx, cache_leftpad, page_table, cu_seqlens_q, cu_seqlens_k_new,
 * max_seqlen_q, rotary_seqlens, q_descale, k_descale, v_descale, softmax_scale, causal,
 * window_size, attention_chunk, softcap, rotary_interleaved, scheduler_metadata, num_splits,
 * pack_gqa, sm_margin, return_softmax_lse, sinks, ver). An int cache_seqlens is the Python
 * wrapper's business: here it is a (b,) int32 tensor. */
typedef struct kl_kvcache_args {
  uint32_t struct_size;
  int32_t ver;
  kl_tensor q;       /* (b, s_q, h, d), or (total_q, h, d) with cu_seqlens_q */
  kl_tensor k_cache; /* (b_k, s_k, h_k, d) or paged (num_pages, page_size, h_k, d) */
  kl_tensor v_cache; /* same with dv */
  kl_tensor k, v;    /* append-KV: not supported by these kernels, must be NULL */
  kl_tensor qv;
  kl_tensor rotary_cos, rotary_sin;
  kl_tensor cache_seqlens; /* (b,) int32 */
  kl_tensor cache_batch_idx;
  kl_tensor cache_leftpad;
  kl_tensor page_table;   /* (b, max_pages_per_seq) int32 */
  kl_tensor cu_seqlens_q; /* (b+1,) int32 */
  kl_tensor cu_seqlens_k_new;
  int64_t max_seqlen_q; /* required with cu_seqlens_q; -1 = not given */
  kl_tensor rotary_seqlens;
  kl_tensor q_descale, k_descale, v_descale;
  double softmax_scale;
  int32_t causal;
  int32_t window_left, window_right;
  int32_t attention_chunk;
  float softcap;
  int32_t rotary_interleaved;
  kl_tensor scheduler_metadata;
  int32_t num_splits;
  int32_t pack_gqa;
  int32_t sm_margin;
  kl_tensor sinks;
  kl_tensor out;         /* (b, s_q, h, dv) or (total_q, h, dv) */
  kl_tensor softmax_lse; /* optional: (b, h, s_q), or (h, total_q) with cu_seqlens_q */
  void* workspace;
  size_t workspace_bytes;
  /* The index tensors' values (cu_seqlens, cache_seqlens / seqused_k, page ids) copied to the host
   * and checked before the launch, which synchronises the stream and cannot be graph-captured:
   * -1 (the _init default) as KERNELS_LOADER_DEBUG_CHECKS said when the library started, 0 no,
   * 1 yes. */
  int32_t check_values;
} kl_kvcache_args;

typedef struct kl_options {
  uint32_t struct_size;
  const char* lockfile;  /* NULL: $KERNELS_LOCKFILE, else <cache>/kernels.lock */
  const char* cache_dir; /* NULL: the cache the environment selects */
  const char* fa3_repo;  /* NULL: $KERNELS_FA3_REPO, else kernels-community/attention-fa3 */
  const char* fa4_repo;  /* NULL: $KERNELS_FA4_REPO, else kernels-community/attention-fa4 */
  int32_t force_builtin; /* -1: $KERNELS_USE_BUILTIN, 0: no, 1: yes */
} kl_options;

enum kl_source { KL_SOURCE_UNAVAILABLE = 0, KL_SOURCE_BUNDLE = 1, KL_SOURCE_BUILTIN = 2 };

/* Filled by kernels_loader_device_source(); initialise with kernels_loader_source_info_init() so
 * struct_size says which layout the caller has (the library writes no byte past it). */
typedef struct kl_source_info {
  uint32_t struct_size; /* sizeof(kl_source_info), set by _init */
  int32_t source;       /* enum kl_source */
  int32_t reason_code;  /* kl_status of the bundle failure, KL_OK when the bundle serves */
  char reason[512];     /* why built-in / unavailable; empty for a bundle */
  char repo_id[128];
  char sha[48];
  char variant[64];
} kl_source_info;

enum kl_log_level { KL_LOG_DEBUG = 0, KL_LOG_INFO = 1, KL_LOG_WARNING = 2, KL_LOG_ERROR = 3 };
typedef void (*kl_log_sink)(int level, const char* message, void* user);

void kernels_loader_options_init(kl_options* options);
void kernels_loader_varlen_args_init(kl_varlen_args* args);
void kernels_loader_kvcache_args_init(kl_kvcache_args* args);
void kernels_loader_source_info_init(kl_source_info* info);

/* Optional; the first call does it with options = NULL. Loads and checks the built-in kernels.
 * Calling it again with different options returns KL_ERR_INVALID_ARGUMENT. */
int kernels_loader_init(const kl_options* options);
/* Where warnings and errors go; takes effect at once (install it before init to see the start-up
 * messages too). NULL restores the default: warnings and errors to stderr. */
void kernels_loader_set_log_sink(kl_log_sink sink, void* user);

int kernels_loader_varlen_workspace_size(const kl_varlen_args* args, void* stream, size_t* bytes);
int kernels_loader_flash_attn_varlen_func(const kl_varlen_args* args, void* stream);
int kernels_loader_kvcache_workspace_size(const kl_kvcache_args* args, void* stream, size_t* bytes);
int kernels_loader_flash_attn_with_kvcache(const kl_kvcache_args* args, void* stream);

/* Which kernels serve (device, ver); loads them if this is the first use of the device. */
int kernels_loader_device_source(int device, int ver, kl_source_info* info);

/* The last error of this thread: what failed, on which argument, and a hint. Never NULL. */
const char* kernels_loader_last_error(void);
int kernels_loader_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* KERNELS_LOADER_H */
