// The ABI between host code (loader/, tests) and the built-in attention kernels (FA3 semantics).
//
// Plain C++: no CUDA header, so g++ host code and nvcc device code see the same bytes. Every
// kernel entry point takes exactly one argument, one of these structs by value
// (`const __grid_constant__`). Changing a field, its type or its order is an ABI change: bump
// kParamsAbiVersion, and the static_asserts below say where the layout moved.
//
// Conventions (FlashAttention-3's `mha_fwd`):
//   - strides are in elements, int64, and the last dimension of q, k, v, out is contiguous;
//   - b = batch, h = query heads, h_k = kv heads (h % h_k == 0), d = q/k head dim, dv = v head dim;
//   - query row addressing: varlen (cu_seqlens_q != nullptr): row = cu_seqlens_q[bi] + i, address
//     q + row*q_row_stride + head*q_head_stride; batched: q + bi*q_batch_stride + i*q_row_stride
//     + head*q_head_stride. `out` follows q's rule with its own strides.
//   - key rows: paged (page_table != nullptr): the j-th key of batch bi lives in page
//     page_table[bi*page_table_batch_stride + j / page_size] at slot j % page_size, address
//     k + page*k_batch_stride + slot*k_row_stride + head*k_head_stride (k_batch_stride is the
//     stride of the num_pages dimension). Varlen (cu_seqlens_k): row = cu_seqlens_k[bi] + j.
//     Otherwise batched: k + bi*k_batch_stride + j*k_row_stride. v follows k's rule.
//   - seqlen_k of batch bi: seqused_k[bi] when given (= cache_seqlens), else the cu_seqlens_k
//     difference, else seqlen_k. seqlen_q of batch bi: the cu_seqlens_q difference, else seqlen_q.
//   - causal is bottom-right aligned: query i sees keys j <= i + s_k - s_q (+ window_right);
//     window_left >= 0 also hides keys j < i + s_k - s_q - window_left. -1 means unbounded.
//   - softcap > 0: score = softcap * tanh(softmax_scale * q.k / softcap), else softmax_scale * q.k.
//   - sinks: one logit per query head (fp32, not scaled), counted in the softmax denominator and
//     in the LSE, with no value row.
//   - LSE: fp32, natural log; -inf for a row that sees no key (and has no sink).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/common/host_device.h"

namespace kernels::attention {

inline constexpr uint32_t kParamsAbiVersion = 1;

// The largest split count the plan uses (num_splits is clamped to it).
inline constexpr int kMaxSplits = 128;

enum class DType : uint32_t { fp16 = 0, bf16 = 1 };

enum class LseLayout : uint32_t {
  none = 0,            // no LSE output (lse must be nullptr)
  head_total_q = 1,    // (h, total_q): FA3's layout for varlen q
  batch_head_seq = 2,  // (b, h, seqlen_q): FA3's layout for batched q
};

struct FwdParams {
  uint32_t abi_version;  // = kParamsAbiVersion, checked by the plan
  DType dtype;           // of q, k, v and out

  const void* q;
  const void* k;
  const void* v;
  void* out;

  int64_t q_batch_stride, q_row_stride, q_head_stride;
  int64_t k_batch_stride, k_row_stride, k_head_stride;  // batch stride = page stride when paged
  int64_t v_batch_stride, v_row_stride, v_head_stride;
  int64_t out_batch_stride, out_row_stride, out_head_stride;

  const int32_t* cu_seqlens_q;  // (b+1,) or nullptr (batched q)
  const int32_t* cu_seqlens_k;  // (b+1,) or nullptr
  const int32_t* seqused_k;     // (b,) = cache_seqlens, or nullptr
  const int32_t* page_table;    // (b, max_pages) or nullptr
  int64_t page_table_batch_stride;
  int32_t page_size;  // >= 1 when paged
  int32_t num_pages;

  int32_t b, h, h_k, d, dv;
  int32_t seqlen_q;  // max over the batch (max_seqlen_q for varlen)
  int32_t seqlen_k;  // max over the batch (max_seqlen_k; max_pages*page_size when paged)
  int32_t total_q;   // number of query rows: cu_seqlens_q[b] for varlen, else b*seqlen_q

  float softmax_scale;
  float softcap;                      // 0 = off
  int32_t window_left, window_right;  // -1 = unbounded
  int32_t is_causal;                  // 0 or 1

  const float* sinks;  // (h,) fp32 or nullptr
  float* lse;          // fp32 or nullptr
  LseLayout lse_layout;

  // 0 = heuristic, 1 = no split (deterministic), n = split the keys into n ranges. The plan
  // replaces 0 by its decision; kernels see the final value.
  int32_t num_splits;
  // Split-KV partials, carved out of the caller's workspace by plan_forward:
  // out_accum (num_splits, h, total_q, dv) fp32, lse_accum (num_splits, h, total_q) fp32.
  float* out_accum;
  float* lse_accum;
};

// Merges split-KV partials into out (and lse). Written by plan_forward from a FwdParams.
struct CombineParams {
  uint32_t abi_version;
  DType dtype;  // of out

  const float* out_accum;  // (num_splits, h, total_q, dv)
  const float* lse_accum;  // (num_splits, h, total_q)
  void* out;
  int64_t out_batch_stride, out_row_stride, out_head_stride;
  float* lse;
  LseLayout lse_layout;
  const float* sinks;  // (h,) or nullptr: added once here, never per split

  const int32_t* cu_seqlens_q;  // nullptr for batched q
  int32_t b, h, dv;
  int32_t seqlen_q;
  int32_t total_q;
  int32_t num_splits;
};

// A CUtensorMap (cuTensorMapEncodeTiled's output), opaque here: the loader encodes it through
// the driver from a TensorMapSpec the plan writes (launch_plan.h).
struct alignas(64) TensorMap {
  uint64_t words[16];
};

// The argument of the sm_90a kernels (TMA loads): the same FwdParams, plus tensor maps over q, k
// and v as 4-D tiles (innermost first): (head dim, rows, heads, batch). Varlen tensors have one
// batch whose rows are all tokens; batched ones have seqlen rows per batch.
struct TmaFwdParams {
  FwdParams fwd;
  TensorMap q;
  TensorMap k;
  TensorMap v;
};

// How the sm_90a kernels read a paged K/V block of block_n keys: by TMA when the block is whole
// copies of rows of one page (pages of 16 rows or more, page size and block_n dividing one
// another; the 128-byte swizzle's period is 8 rows), otherwise gathered row by row with cp.async
// by the producer warpgroup. The plan and the kernel decide with this one rule.
constexpr KERNELS_HOST_DEVICE bool sm90_pages_by_tma(int page_size, int block_n) {
  return page_size % 16 == 0 && (page_size % block_n == 0 || block_n % page_size == 0);
}
// The sm_90a kernels that gather such pages: d >= 256 with 64-key blocks (measured there: 1.43x
// the built-in kernels; below d256 the built-in kernels are faster, docs/PERFORMANCE.md). The
// others carry no gathering producer (one warpgroup at 24 registers, whose loop setup spills).
constexpr int kSm90MinHeadDimGathered = 256;
constexpr KERNELS_HOST_DEVICE bool sm90_gathers_pages(int d, int block_n) {
  return d >= kSm90MinHeadDimGathered && block_n <= 64;
}

static_assert(std::is_standard_layout_v<FwdParams> && std::is_trivially_copyable_v<FwdParams>);
static_assert(std::is_standard_layout_v<CombineParams> &&
              std::is_trivially_copyable_v<CombineParams>);
static_assert(sizeof(void*) == 8, "the params ABI is defined for 64-bit hosts and devices");
static_assert(offsetof(FwdParams, abi_version) == 0);
static_assert(offsetof(FwdParams, q) == 8);
static_assert(offsetof(FwdParams, q_batch_stride) == 40);
static_assert(offsetof(FwdParams, cu_seqlens_q) == 136);
static_assert(offsetof(FwdParams, page_size) == 176);
static_assert(offsetof(FwdParams, b) == 184);
static_assert(offsetof(FwdParams, softmax_scale) == 216);
static_assert(offsetof(FwdParams, sinks) == 240);
static_assert(offsetof(FwdParams, num_splits) == 260);
static_assert(offsetof(FwdParams, out_accum) == 264);
static_assert(sizeof(FwdParams) == 280);
static_assert(offsetof(CombineParams, out_accum) == 8);
static_assert(offsetof(CombineParams, lse) == 56);
static_assert(offsetof(CombineParams, cu_seqlens_q) == 80);
static_assert(sizeof(CombineParams) == 112);
static_assert(offsetof(TmaFwdParams, q) == 320 && sizeof(TmaFwdParams) == 704);
// Kernel parameters are limited to 4 KiB (32 KiB from CUDA 12.1 on Volta+); stay far below.
static_assert(sizeof(FwdParams) <= 4096 && sizeof(CombineParams) <= 4096 &&
              sizeof(TmaFwdParams) <= 4096);

}  // namespace kernels::attention
