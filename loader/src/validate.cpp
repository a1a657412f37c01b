#include "validate.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/attention/launch_plan.h"

namespace kernels::loader {
namespace {

using attention::DType;
using attention::FwdParams;
using attention::LseLayout;

constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

bool given(const kl_tensor& t) { return t.data != nullptr; }

const char* dtype_name(int dt) {
  switch (dt) {
    case KL_DTYPE_FLOAT16: return "float16";
    case KL_DTYPE_BFLOAT16: return "bfloat16";
    case KL_DTYPE_FLOAT32: return "float32";
    case KL_DTYPE_INT32: return "int32";
    case KL_DTYPE_FLOAT8_E4M3: return "float8_e4m3fn";
    case KL_DTYPE_INT64: return "int64";
    default: return "unknown dtype";
  }
}

std::string shape_str(const kl_tensor& t) {
  std::string s = "(";
  for (int i = 0; i < t.ndim && i < 4; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + (t.ndim == 1 ? ",)" : ")");
}

// Collects the first violation; every check after it is skipped.
class Checker {
 public:
  explicit Checker(const DeviceProperties& device) : device_(device) {}

  bool failed() const { return violation_.has_value(); }
  std::optional<ArgViolation> take() { return std::move(violation_); }

  bool fail(std::string rule, std::string argument, std::string message, std::string hint = {}) {
    if (!violation_)
      violation_ = ArgViolation{std::move(rule), std::move(argument), std::move(message),
                                std::move(hint)};
    return false;
  }

  // Structure every tensor must have: a sane rank and shape, and the stream's device.
  bool tensor(const kl_tensor& t, const char* name) {
    if (failed() || !given(t)) return !failed();
    if (t.ndim < 1 || t.ndim > 4)
      return fail("rank", name, std::string(name) + " has rank " + std::to_string(t.ndim) +
                                    "; tensors have 1 to 4 dimensions");
    for (int i = 0; i < t.ndim; ++i)
      if (t.shape[i] < 0)
        return fail("shape", name, std::string(name) + " has a negative extent: " + shape_str(t));
    if (t.device != device_.ordinal)
      return fail("device", name,
                  std::string(name) + " is on " +
                      (t.device < 0 ? std::string("the host") : "cuda:" + std::to_string(t.device)) +
                      " but the stream is on cuda:" + std::to_string(device_.ordinal),
                  "move every tensor to the stream's device");
    return true;
  }

  bool required(const kl_tensor& t, const char* name) {
    if (failed()) return false;
    if (!given(t)) return fail("required", name, std::string(name) + " is required");
    return tensor(t, name);
  }

  bool rank(const kl_tensor& t, const char* name, int want, const char* layout) {
    if (failed() || !given(t)) return !failed();
    if (t.ndim != want)
      return fail("rank", name, std::string(name) + " must be " + layout + ", got shape " +
                                    shape_str(t));
    return true;
  }

  bool dims(const kl_tensor& t, const char* name, std::initializer_list<std::int64_t> want,
            const char* layout) {
    if (failed() || !given(t)) return !failed();
    bool match = t.ndim == static_cast<int>(want.size());
    int i = 0;
    for (auto w : want) match = match && (i < t.ndim && t.shape[i++] == w);
    if (!match)
      return fail("shape", name,
                  std::string(name) + " must have shape " + layout + ", got " + shape_str(t));
    return true;
  }

  bool last_dim_contiguous(const kl_tensor& t, const char* name) {
    if (failed() || !given(t)) return !failed();
    if (t.shape[t.ndim - 1] > 1 && t.stride[t.ndim - 1] != 1)
      return fail("last_dim_stride", name,
                  std::string(name) + " must have a contiguous last dimension (stride " +
                      std::to_string(t.stride[t.ndim - 1]) + ")",
                  "pass x.contiguous() or a view whose last stride is 1");
    return true;
  }

  // The kernels multiply indices by these strides: a zero stride makes distinct rows one address
  // (overlapping writes to out), a negative one reads and writes before the pointer, and a span
  // past 2^63 elements wraps. Every dimension of extent > 1 needs a stride >= 1.
  bool positive_strides(const kl_tensor& t, const char* name) {
    if (failed() || !given(t)) return !failed();
    std::int64_t span = 0;
    for (int i = 0; i < t.ndim; ++i) {
      if (t.shape[i] <= 1) continue;
      std::int64_t part = 0;
      if (t.stride[i] < 1)
        return fail("stride", name,
                    std::string(name) + " has stride " + std::to_string(t.stride[i]) +
                        " in dimension " + std::to_string(i) + "; strides must be >= 1",
                    "pass x.contiguous()");
      if (__builtin_mul_overflow(t.stride[i], t.shape[i] - 1, &part) ||
          __builtin_add_overflow(span, part, &span))
        return fail("stride", name,
                    std::string(name) + " spans more than 2^63 elements (strides " +
                        std::to_string(t.stride[0]) + "...)",
                    "pass x.contiguous()");
    }
    return true;
  }

  bool contiguous(const kl_tensor& t, const char* name) {
    if (failed() || !given(t)) return !failed();
    // No element, no layout: torch gives an empty (h, 0) LSE strides (1, 1).
    for (int i = 0; i < t.ndim; ++i)
      if (t.shape[i] == 0) return true;
    std::int64_t expect = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      if (t.shape[i] > 1 && t.stride[i] != expect)
        return fail("contiguous", name, std::string(name) + " must be contiguous",
                    "pass x.contiguous()");
      expect *= t.shape[i];
    }
    return true;
  }

  bool dtype(const kl_tensor& t, const char* name, int want, const char* rule, std::string hint = {}) {
    if (failed() || !given(t)) return !failed();
    if (t.dtype != want)
      return fail(rule, name,
                  std::string(name) + " must have dtype " + dtype_name(want) + ", got " +
                      dtype_name(t.dtype),
                  std::move(hint));
    return true;
  }

  // int32, contiguous, 1-D of length n (n < 0: any length).
  bool index(const kl_tensor& t, const char* name, std::int64_t n, const char* layout) {
    if (failed() || !given(t)) return !failed();
    tensor(t, name);
    dtype(t, name, KL_DTYPE_INT32, "index_dtype");
    rank(t, name, 1, layout);
    contiguous(t, name);
    if (!failed() && n >= 0 && t.shape[0] != n)
      return fail("shape", name, std::string(name) + " must have shape " + layout + " = (" +
                                     std::to_string(n) + ",), got " + shape_str(t));
    return !failed();
  }

  bool unsupported(const kl_tensor& t, const char* name, const char* feature) {
    if (failed() || !given(t)) return !failed();
    return fail("unsupported", name,
                std::string(name) + " was given, but " + feature +
                    " is not supported by these kernels",
                "leave it None; these kernels negotiate features and never ignore one");
  }

 private:
  const DeviceProperties& device_;
  std::optional<ArgViolation> violation_;
};

// Head dims, dtypes and the scalar arguments shared by both entry points.
struct Common {
  int ver;
  double softmax_scale;
  int causal;
  int window_left, window_right;
  int attention_chunk;
  float softcap;
  int num_splits;
  int pack_gqa;
  int sm_margin;
};

void check_common(Checker& c, const Common& a, const DeviceProperties& device) {
  if (c.failed()) return;
  if (a.ver != 3 && a.ver != 4)
    c.fail("ver", "ver", "unknown flash attention version " + std::to_string(a.ver),
           "ver is 3 (FlashAttention-3 family) or 4 (FlashAttention-4 family)");
  else if (a.num_splits < 0 || a.num_splits > 256)
    c.fail("value_range", "num_splits",
           "num_splits must be in [0, 256] (0 = heuristic), got " + std::to_string(a.num_splits));
  else if (!(a.softcap >= 0.0f) || !std::isfinite(a.softcap))
    c.fail("value_range", "softcap", "softcap must be >= 0 (0 = off), got " + std::to_string(a.softcap));
  else if (a.window_left < -1 || a.window_right < -1)
    c.fail("value_range", "window_size",
           "window_size entries must be >= -1 (-1 = unbounded), got (" +
               std::to_string(a.window_left) + ", " + std::to_string(a.window_right) + ")");
  else if (a.attention_chunk < 0)
    c.fail("value_range", "attention_chunk",
           "attention_chunk must be >= 0, got " + std::to_string(a.attention_chunk));
  else if (a.attention_chunk > 0)
    c.fail("unsupported", "attention_chunk",
           "attention_chunk > 0 (chunked local attention) is not supported by these kernels");
  else if (a.sm_margin < 0 || (device.sm_count > 0 && a.sm_margin >= device.sm_count))
    c.fail("value_range", "sm_margin",
           "sm_margin must be in [0, " + std::to_string(device.sm_count) + ") for this device, got " +
               std::to_string(a.sm_margin));
  else if (a.pack_gqa < -1 || a.pack_gqa > 1)
    c.fail("value_range", "pack_gqa", "pack_gqa must be -1 (None), 0 or 1");
  else if (!std::isfinite(a.softmax_scale) || a.softmax_scale < 0.0)
    c.fail("value_range", "softmax_scale", "softmax_scale must be finite and > 0 (0 = default)");
}

// q/k/v/out dtypes, head dims, GQA ratio; fills the matching FwdParams fields.
void check_heads(Checker& c, const kl_tensor& q, const kl_tensor& k, const kl_tensor& v,
                 const kl_tensor& out, const char* kname, const char* vname, std::int64_t h,
                 std::int64_t h_k, std::int64_t d, std::int64_t dv, FwdParams& p) {
  if (c.failed()) return;
  for (auto [t, n] : {std::pair{&q, "q"}, {&k, kname}, {&v, vname}, {&out, "out"}})
    if (!c.positive_strides(*t, n)) return;
  if (q.dtype == KL_DTYPE_FLOAT8_E4M3) {
    c.fail("dtype", "q", "float8_e4m3fn inputs are not supported by these kernels",
           "use float16 or bfloat16 q, k and v");
    return;
  }
  if (q.dtype != KL_DTYPE_FLOAT16 && q.dtype != KL_DTYPE_BFLOAT16) {
    c.fail("dtype", "q", std::string("q must be float16 or bfloat16, got ") + dtype_name(q.dtype));
    return;
  }
  if (k.dtype != q.dtype || v.dtype != q.dtype) {
    const bool kbad = k.dtype != q.dtype;
    c.fail("dtype_mismatch", kbad ? kname : vname,
           std::string(kbad ? "query and key" : "query and value") + " must have the same dtype (" +
               dtype_name(q.dtype) + " vs " + dtype_name(kbad ? k.dtype : v.dtype) + ")");
    return;
  }
  if (out.dtype != q.dtype) {
    c.fail("out_dtype", "out",
           std::string("out must have the dtype of q (") + dtype_name(q.dtype) + "), got " +
               dtype_name(out.dtype));
    return;
  }
  if (h_k <= 0 || h <= 0 || h % h_k != 0) {
    c.fail("gqa_ratio", kname,
           "number of heads in key/value (" + std::to_string(h_k) +
               ") must divide number of heads in query (" + std::to_string(h) + ")");
    return;
  }
  if (d > 256) {
    c.fail("head_dim_max", "q", "head dimension " + std::to_string(d) + " exceeds 256",
           "FlashAttention forward supports head dimension at most 256");
    return;
  }
  if (d <= 0 || d % 8 != 0) {
    c.fail("head_dim_multiple", "q", "head_size should be a multiple of 8, got " + std::to_string(d));
    return;
  }
  if (dv <= 0 || dv % 8 != 0) {
    c.fail("head_dim_multiple", vname,
           "head_size_v should be a multiple of 8, got " + std::to_string(dv));
    return;
  }
  if (dv != d) {
    const bool mla_prefill = d > 128 && d <= 192 && dv > 96 && dv <= 128;
    const bool mla_decode = d <= 64 && dv <= 512;
    if (!mla_prefill && !mla_decode) {
      c.fail("head_dim_v", vname,
             "V head dim " + std::to_string(dv) + " differs from Q/K head dim " + std::to_string(d) +
                 "; only Q/K in (128, 192] with V in (96, 128], or Q/K <= 64 with V <= 512 are defined");
      return;
    }
  }
  p.dtype = q.dtype == KL_DTYPE_BFLOAT16 ? DType::bf16 : DType::fp16;
  // FA3 accepts the shapes above; which of them have kernels here is the launch plan's answer.
  if (auto r = attention::covers(static_cast<int>(d), static_cast<int>(dv), p.dtype); !r) {
    c.fail("head_dim_covered", dv != d ? vname : "q", r.error().what, r.error().hint);
    return;
  }
  p.h = static_cast<std::int32_t>(h);
  p.h_k = static_cast<std::int32_t>(h_k);
  p.d = static_cast<std::int32_t>(d);
  p.dv = static_cast<std::int32_t>(dv);
}

void apply_scalars(const Common& a, FwdParams& p) {
  p.softmax_scale = a.softmax_scale > 0.0 ? static_cast<float>(a.softmax_scale)
                                          : static_cast<float>(1.0 / std::sqrt(double(p.d)));
  p.softcap = a.softcap;
  p.is_causal = a.causal ? 1 : 0;
  p.window_left = a.window_left;
  // FA3: causal is a window with right edge 0.
  p.window_right = a.causal ? 0 : a.window_right;
  p.num_splits = a.num_splits;
}

void check_sinks(Checker& c, const kl_tensor& sinks, std::int64_t h, FwdParams& p) {
  if (c.failed() || !given(sinks)) return;
  c.tensor(sinks, "sinks");
  c.dtype(sinks, "sinks", KL_DTYPE_FLOAT32, "sinks_dtype",
          "these kernels take fp32 sinks; the Python wrapper converts bf16 sinks");
  c.dims(sinks, "sinks", {h}, "(h,)");
  c.contiguous(sinks, "sinks");
  p.sinks = static_cast<const float*>(sinks.data);
}

// Descales only scale fp8 inputs (FA3 ignores them otherwise); their dtype is still checked.
void check_descales(Checker& c, const kl_tensor& qd, const kl_tensor& kd, const kl_tensor& vd) {
  const kl_tensor* ts[] = {&qd, &kd, &vd};
  const char* names[] = {"q_descale", "k_descale", "v_descale"};
  for (int i = 0; i < 3; ++i) {
    c.tensor(*ts[i], names[i]);
    c.dtype(*ts[i], names[i], KL_DTYPE_FLOAT32, "descale_dtype");
  }
}

void check_lse(Checker& c, const kl_tensor& lse, bool varlen_q, std::int64_t b, std::int64_t h,
               std::int64_t s_q, std::int64_t total_q, FwdParams& p) {
  if (c.failed() || !given(lse)) return;
  c.tensor(lse, "softmax_lse");
  c.dtype(lse, "softmax_lse", KL_DTYPE_FLOAT32, "lse_dtype");
  if (varlen_q)
    c.dims(lse, "softmax_lse", {h, total_q}, "(h, total_q)");
  else
    c.dims(lse, "softmax_lse", {b, h, s_q}, "(b, h, seqlen_q)");
  c.contiguous(lse, "softmax_lse");
  p.lse = static_cast<float*>(lse.data);
  p.lse_layout = varlen_q ? LseLayout::head_total_q : LseLayout::batch_head_seq;
}

bool fits_int32(Checker& c, std::int64_t v, const char* name) {
  if (c.failed()) return false;
  if (v > kInt32Max) return c.fail("value_range", name, std::string(name) + " exceeds 2^31-1");
  return true;
}

void strides3(const kl_tensor& t, std::int64_t& batch, std::int64_t& row, std::int64_t& head) {
  // (rows, heads, dim): no batch dimension.
  batch = 0;
  row = t.stride[0];
  head = t.stride[1];
}

void strides4(const kl_tensor& t, std::int64_t& batch, std::int64_t& row, std::int64_t& head) {
  batch = t.stride[0];
  row = t.stride[1];
  head = t.stride[2];
}

// The paged-KV page table: int32, (b, max_pages_per_seq), contiguous rows, one row per sequence
// of `batch_source`.
void check_page_table(Checker& c, const kl_tensor& page_table, std::int64_t b,
                      const char* batch_source) {
  c.tensor(page_table, "page_table");
  c.dtype(page_table, "page_table", KL_DTYPE_INT32, "index_dtype");
  c.rank(page_table, "page_table", 2, "(b, max_pages_per_seq)");
  if (!c.failed() && page_table.shape[1] > 1 && page_table.stride[1] != 1)
    c.fail("index_contiguous", "page_table", "page_table must have contiguous last dimension");
  if (!c.failed() && page_table.shape[0] != b)
    c.fail("batch_mismatch", "page_table",
           std::string("batch_size must be equal to batch_size_k: ") + batch_source + " gives " +
               std::to_string(b) + ", page_table has " + std::to_string(page_table.shape[0]) +
               " rows");
}

// The start every entry point shares: params defaults, the struct-size guard (a caller built
// against another header), and the arguments common to both functions. False: stop, `out` holds
// the violation.
template <class Args>
bool begin_call(const Args& a, const char* struct_name, const char* init_function, Checker& c,
                ValidatedCall& out, const DeviceProperties& device) {
  FwdParams& p = out.params;
  p.abi_version = attention::kParamsAbiVersion;
  p.window_left = p.window_right = -1;
  if (a.struct_size != sizeof(Args)) {
    c.fail("struct_size", "args",
           std::string(struct_name) + ".struct_size is " + std::to_string(a.struct_size) +
               ", this library expects " + std::to_string(sizeof(Args)),
           std::string("initialise the struct with ") + init_function + "()");
    out.violation = c.take();
    return false;
  }
  check_common(c, {a.ver, a.softmax_scale, a.causal, a.window_left, a.window_right,
                   a.attention_chunk, a.softcap, a.num_splits, a.pack_gqa, a.sm_margin},
               device);
  return true;
}

}  // namespace

ValidatedCall validate_varlen(const kl_varlen_args& a, const DeviceProperties& device) {
  ValidatedCall out;
  FwdParams& p = out.params;
  Checker c(device);
  if (!begin_call(a, "kl_varlen_args", "kernels_loader_varlen_args_init", c, out, device)) return out;
  c.required(a.q, "q");
  c.required(a.k, "k");
  c.required(a.v, "v");
  c.required(a.out, "out");
  const bool paged = given(a.page_table);
  if (!c.failed() && !given(a.cu_seqlens_q))
    c.fail("required", "cu_seqlens_q", "cu_seqlens_q is required by flash_attn_varlen_func");
  if (!c.failed() && !paged && !given(a.cu_seqlens_k))
    c.fail("required", "cu_seqlens_k",
           "cu_seqlens_k is required by flash_attn_varlen_func (or page_table with seqused_k)");
  if (!c.failed() && paged && given(a.cu_seqlens_k))
    c.fail("mutually_exclusive", "page_table",
           "if cu_seqlens_k is passed in, then page table is not supported",
           "paged KV takes its lengths from seqused_k");
  if (!c.failed() && paged && !given(a.seqused_k))
    c.fail("missing_companion", "seqused_k", "paged attention (page_table) requires seqused_k");
  if (!c.failed() && a.max_seqlen_q < 0)
    c.fail("missing_companion", "max_seqlen_q",
           "max_seqlen_q must be provided if cu_seqlens_q is provided");
  if (!c.failed() && !paged && a.max_seqlen_k < 0)
    c.fail("missing_companion", "max_seqlen_k",
           "max_seqlen_k must be provided if cu_seqlens_k is provided");
  c.unsupported(a.qv, "qv", "qv (absorbed MLA)");
  c.unsupported(a.seqused_q, "seqused_q", "seqused_q");
  c.rank(a.q, "q", 3, "(total_q, h, d)");
  c.rank(a.out, "out", 3, "(total_q, h, dv)");
  if (paged) {
    c.rank(a.k, "k", 4, "(num_pages, page_size, h_k, d) with page_table");
    c.rank(a.v, "v", 4, "(num_pages, page_size, h_k, dv) with page_table");
  } else {
    c.rank(a.k, "k", 3, "(total_k, h_k, d)");
    c.rank(a.v, "v", 3, "(total_k, h_k, dv)");
  }
  for (auto [t, n] : {std::pair{&a.q, "q"}, {&a.k, "k"}, {&a.v, "v"}, {&a.out, "out"}})
    c.last_dim_contiguous(*t, n);
  if (c.failed()) {
    out.violation = c.take();
    return out;
  }
  const int kh = paged ? 2 : 1;  // index of the head dimension in k/v
  const std::int64_t total_q = a.q.shape[0], h = a.q.shape[1], d = a.q.shape[2];
  const std::int64_t h_k = a.k.shape[kh], dv = a.v.shape[kh + 1];
  if (a.v.shape[kh] != h_k || a.v.shape[0] != a.k.shape[0] || (paged && a.v.shape[1] != a.k.shape[1]))
    c.fail("shape", "v", "v " + shape_str(a.v) + " does not match k " + shape_str(a.k));
  c.dims(a.k, "k", paged ? std::initializer_list<std::int64_t>{a.k.shape[0], a.k.shape[1], h_k, d}
                         : std::initializer_list<std::int64_t>{a.k.shape[0], h_k, d},
         paged ? "(num_pages, page_size, h_k, d)" : "(total_k, h_k, d) with d of q");
  c.dims(a.out, "out", {total_q, h, dv}, "(total_q, h, dv)");
  check_heads(c, a.q, a.k, a.v, a.out, "k", "v", h, h_k, d, dv, p);
  const std::int64_t b = a.cu_seqlens_q.ndim == 1 ? a.cu_seqlens_q.shape[0] - 1 : -1;
  c.index(a.cu_seqlens_q, "cu_seqlens_q", -1, "(b+1,)");
  if (!c.failed() && b < 0) c.fail("shape", "cu_seqlens_q", "cu_seqlens_q must have at least one entry");
  c.index(a.cu_seqlens_k, "cu_seqlens_k", b + 1, "(b+1,)");
  c.index(a.seqused_k, "seqused_k", b, "(b,)");
  if (paged && !c.failed()) check_page_table(c, a.page_table, b, "cu_seqlens_q");
  if (!c.failed() && a.max_seqlen_q > total_q)
    c.fail("value_range", "max_seqlen_q",
           "max_seqlen_q (" + std::to_string(a.max_seqlen_q) + ") exceeds total_q (" +
               std::to_string(total_q) + ")");
  if (!c.failed() && !paged && a.max_seqlen_k > a.k.shape[0])
    c.fail("value_range", "max_seqlen_k",
           "max_seqlen_k (" + std::to_string(a.max_seqlen_k) + ") exceeds total_k (" +
               std::to_string(a.k.shape[0]) + ")");
  check_descales(c, a.q_descale, a.k_descale, a.v_descale);
  check_sinks(c, a.sinks, h, p);
  check_lse(c, a.softmax_lse, true, b, h, a.max_seqlen_q, total_q, p);
  fits_int32(c, total_q, "q");
  fits_int32(c, a.max_seqlen_q, "max_seqlen_q");
  fits_int32(c, paged ? a.page_table.shape[1] * a.k.shape[1] : a.max_seqlen_k, "max_seqlen_k");
  if (c.failed()) {
    out.violation = c.take();
    return out;
  }

  p.q = a.q.data;
  p.k = a.k.data;
  p.v = a.v.data;
  p.out = a.out.data;
  strides3(a.q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
  strides3(a.out, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
  if (paged) {
    strides4(a.k, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
    strides4(a.v, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
    p.page_table = static_cast<const std::int32_t*>(a.page_table.data);
    p.page_table_batch_stride = a.page_table.stride[0];
    p.page_size = static_cast<std::int32_t>(a.k.shape[1]);
    p.num_pages = static_cast<std::int32_t>(a.k.shape[0]);
    p.seqlen_k = static_cast<std::int32_t>(a.page_table.shape[1] * a.k.shape[1]);
  } else {
    strides3(a.k, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
    strides3(a.v, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
    p.cu_seqlens_k = static_cast<const std::int32_t*>(a.cu_seqlens_k.data);
    p.seqlen_k = static_cast<std::int32_t>(a.max_seqlen_k);
  }
  p.cu_seqlens_q = static_cast<const std::int32_t*>(a.cu_seqlens_q.data);
  p.seqused_k = static_cast<const std::int32_t*>(a.seqused_k.data);
  p.b = static_cast<std::int32_t>(b);
  p.seqlen_q = static_cast<std::int32_t>(a.max_seqlen_q);
  p.total_q = static_cast<std::int32_t>(total_q);
  apply_scalars({a.ver, a.softmax_scale, a.causal, a.window_left, a.window_right,
                 a.attention_chunk, a.softcap, a.num_splits, a.pack_gqa, a.sm_margin},
                p);
  out.k_rows = a.k.shape[paged ? 1 : 0];
  out.empty = total_q == 0 || b == 0;
  return out;
}

ValidatedCall validate_kvcache(const kl_kvcache_args& a, const DeviceProperties& device) {
  ValidatedCall out;
  FwdParams& p = out.params;
  Checker c(device);
  if (!begin_call(a, "kl_kvcache_args", "kernels_loader_kvcache_args_init", c, out, device)) return out;
  c.required(a.q, "q");
  c.required(a.k_cache, "k_cache");
  c.required(a.v_cache, "v_cache");
  c.required(a.out, "out");
  // Companions first (FA3's order of complaints), then what these kernels do not do.
  if (!c.failed() && given(a.k) != given(a.v))
    c.fail("missing_companion", given(a.k) ? "v" : "k",
           "if k_new is supplied, v_new must also be passed in (and the reverse)");
  if (!c.failed() && given(a.rotary_cos) != given(a.rotary_sin))
    c.fail("missing_companion", given(a.rotary_cos) ? "rotary_sin" : "rotary_cos",
           "if rotary cos is provided, rotary sin must also be provided (and the reverse)");
  if (!c.failed() && given(a.rotary_cos) && !given(a.k))
    c.fail("missing_companion", "k",
           "if rotary cos/sin are provided, new key / value to be appended to KV cache must also "
           "be provided");
  if (!c.failed() && given(a.cu_seqlens_q) && a.max_seqlen_q < 0)
    c.fail("missing_companion", "max_seqlen_q",
           "max_seqlen_q must be provided if cu_seqlens_q is provided");
  const bool paged = given(a.page_table);
  if (!c.failed() && paged && !given(a.cache_seqlens))
    c.fail("missing_companion", "cache_seqlens", "paged attention (page_table) requires cache_seqlens");
  if (!c.failed() && paged && given(a.cache_batch_idx))
    c.fail("mutually_exclusive", "cache_batch_idx",
           "cache_batch_idx cannot be combined with page_table");
  c.unsupported(a.k, "k", "appending to the KV cache (k, v)");
  c.unsupported(a.rotary_cos, "rotary_cos", "rotary embedding");
  c.unsupported(a.qv, "qv", "qv (absorbed MLA)");
  c.unsupported(a.cache_batch_idx, "cache_batch_idx", "cache_batch_idx");
  c.unsupported(a.cache_leftpad, "cache_leftpad", "cache_leftpad");
  c.unsupported(a.rotary_seqlens, "rotary_seqlens", "rotary embedding");
  c.unsupported(a.scheduler_metadata, "scheduler_metadata",
                "precomputed scheduler_metadata (the plan is computed per call on the host)");
  const bool varlen_q = given(a.cu_seqlens_q);
  if (varlen_q) {
    c.rank(a.q, "q", 3, "(total_q, h, d) with cu_seqlens_q");
    c.rank(a.out, "out", 3, "(total_q, h, dv)");
  } else {
    c.rank(a.q, "q", 4, "(b, seqlen_q, h, d)");
    c.rank(a.out, "out", 4, "(b, seqlen_q, h, dv)");
  }
  c.rank(a.k_cache, "k_cache", 4,
         paged ? "(num_pages, page_size, h_k, d)" : "(b, seqlen_k, h_k, d)");
  c.rank(a.v_cache, "v_cache", 4,
         paged ? "(num_pages, page_size, h_k, dv)" : "(b, seqlen_k, h_k, dv)");
  for (auto [t, n] : {std::pair{&a.q, "q"}, {&a.k_cache, "k_cache"}, {&a.v_cache, "v_cache"},
                      {&a.out, "out"}})
    c.last_dim_contiguous(*t, n);
  if (c.failed()) {
    out.violation = c.take();
    return out;
  }
  const int hq = varlen_q ? 1 : 2;
  const std::int64_t h = a.q.shape[hq], d = a.q.shape[hq + 1];
  const std::int64_t h_k = a.k_cache.shape[2], dv = a.v_cache.shape[3];
  const std::int64_t b = varlen_q ? a.cu_seqlens_q.shape[0] - 1 : a.q.shape[0];
  const std::int64_t s_q = varlen_q ? a.max_seqlen_q : a.q.shape[1];
  const std::int64_t total_q = varlen_q ? a.q.shape[0] : a.q.shape[0] * a.q.shape[1];
  if (a.v_cache.shape[0] != a.k_cache.shape[0] || a.v_cache.shape[1] != a.k_cache.shape[1] ||
      a.v_cache.shape[2] != h_k)
    c.fail("shape", "v_cache", "v_cache " + shape_str(a.v_cache) + " does not match k_cache " +
                                   shape_str(a.k_cache));
  c.dims(a.k_cache, "k_cache", {a.k_cache.shape[0], a.k_cache.shape[1], h_k, d},
         "(.., .., h_k, d) with d of q");
  if (varlen_q)
    c.dims(a.out, "out", {total_q, h, dv}, "(total_q, h, dv)");
  else
    c.dims(a.out, "out", {b, s_q, h, dv}, "(b, seqlen_q, h, dv)");
  check_heads(c, a.q, a.k_cache, a.v_cache, a.out, "k_cache", "v_cache", h, h_k, d, dv, p);
  if (varlen_q) {
    c.index(a.cu_seqlens_q, "cu_seqlens_q", -1, "(b+1,)");
    if (!c.failed() && b < 0) c.fail("shape", "cu_seqlens_q", "cu_seqlens_q must have at least one entry");
    if (!c.failed() && a.max_seqlen_q > total_q)
      c.fail("value_range", "max_seqlen_q",
             "max_seqlen_q (" + std::to_string(a.max_seqlen_q) + ") exceeds total_q (" +
                 std::to_string(total_q) + ")");
  }
  c.index(a.cache_seqlens, "cache_seqlens", b, "(b,)");
  // cu_seqlens_k_new is read only with k_new, which these kernels refuse; SGLang passes it anyway.
  c.index(a.cu_seqlens_k_new, "cu_seqlens_k_new", b + 1, "(b+1,)");
  if (paged && !c.failed()) {
    check_page_table(c, a.page_table, b, "q");
  } else if (!c.failed() && a.k_cache.shape[0] != b) {
    c.fail("batch_mismatch", "k_cache",
           "batch_size must be equal to batch_size_k: q gives " + std::to_string(b) +
               ", k_cache has " + std::to_string(a.k_cache.shape[0]) + " sequences");
  }
  check_descales(c, a.q_descale, a.k_descale, a.v_descale);
  check_sinks(c, a.sinks, h, p);
  check_lse(c, a.softmax_lse, varlen_q, b, h, s_q, total_q, p);
  fits_int32(c, total_q, "q");
  fits_int32(c, paged ? a.page_table.shape[1] * a.k_cache.shape[1] : a.k_cache.shape[1], "k_cache");
  fits_int32(c, paged ? a.k_cache.shape[0] : 0, "k_cache");
  if (c.failed()) {
    out.violation = c.take();
    return out;
  }

  p.q = a.q.data;
  p.k = a.k_cache.data;
  p.v = a.v_cache.data;
  p.out = a.out.data;
  if (varlen_q) {
    strides3(a.q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
    strides3(a.out, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
    p.cu_seqlens_q = static_cast<const std::int32_t*>(a.cu_seqlens_q.data);
  } else {
    strides4(a.q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
    strides4(a.out, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
  }
  strides4(a.k_cache, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
  strides4(a.v_cache, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
  if (paged) {
    p.page_table = static_cast<const std::int32_t*>(a.page_table.data);
    p.page_table_batch_stride = a.page_table.stride[0];
    p.page_size = static_cast<std::int32_t>(a.k_cache.shape[1]);
    p.num_pages = static_cast<std::int32_t>(a.k_cache.shape[0]);
    p.seqlen_k = static_cast<std::int32_t>(a.page_table.shape[1] * a.k_cache.shape[1]);
  } else {
    p.seqlen_k = static_cast<std::int32_t>(a.k_cache.shape[1]);
  }
  p.seqused_k = static_cast<const std::int32_t*>(a.cache_seqlens.data);
  p.b = static_cast<std::int32_t>(b);
  p.seqlen_q = static_cast<std::int32_t>(s_q);
  p.total_q = static_cast<std::int32_t>(total_q);
  apply_scalars({a.ver, a.softmax_scale, a.causal, a.window_left, a.window_right,
                 a.attention_chunk, a.softcap, a.num_splits, a.pack_gqa, a.sm_margin},
                p);
  out.k_rows = a.k_cache.shape[1];
  out.empty = total_q == 0 || b == 0;
  return out;
}

}  // namespace kernels::loader
