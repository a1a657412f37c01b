#include "call_rules.h"

#include <cmath>
#include <utility>

#include "kernels/attention/launch_plan.h"

namespace kernels::loader {

using attention::DType;
using attention::FwdParams;
using attention::LseLayout;

void check_scalars(TensorChecker& c, const ScalarArgs& a, const DeviceProperties& device) {
  if (a.ver != 3 && a.ver != 4)
    c.fail("ver", "ver", "unknown flash attention version " + std::to_string(a.ver),
           "ver is 3 (FlashAttention-3 family) or 4 (FlashAttention-4 family)");
  else if (a.num_splits < 0 || a.num_splits > 256)
    c.fail("value_range", "num_splits",
           "num_splits must be in [0, 256] (0 = heuristic), got " + std::to_string(a.num_splits));
  else if (!(a.softcap >= 0.0f) || !std::isfinite(a.softcap))
    c.fail("value_range", "softcap",
           "softcap must be >= 0 (0 = off), got " + std::to_string(a.softcap));
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
           "sm_margin must be in [0, " + std::to_string(device.sm_count) +
               ") for this device, got " + std::to_string(a.sm_margin));
  else if (a.pack_gqa < -1 || a.pack_gqa > 1)
    c.fail("value_range", "pack_gqa", "pack_gqa must be -1 (None), 0 or 1");
  else if (!std::isfinite(a.softmax_scale) || a.softmax_scale < 0.0)
    c.fail("value_range", "softmax_scale", "softmax_scale must be finite and > 0 (0 = default)");
}

void apply_scalars(const ScalarArgs& a, FwdParams& p) {
  p.softmax_scale = a.softmax_scale > 0.0 ? static_cast<float>(a.softmax_scale)
                                          : static_cast<float>(1.0 / std::sqrt(double(p.d)));
  p.softcap = a.softcap;
  p.is_causal = a.causal ? 1 : 0;
  p.window_left = a.window_left;
  // FA3: causal is a window with right edge 0.
  p.window_right = a.causal ? 0 : a.window_right;
  p.num_splits = a.num_splits;
}

// One rule after another, the first broken one reported: an else-if chain, since a later rule
// reads what an earlier one established (k's dtype is only compared once q's is known good).
void check_heads(TensorChecker& c, const kl_tensor& q, const kl_tensor& k, const kl_tensor& v,
                 const kl_tensor& out, const char* kname, const char* vname, std::int64_t h,
                 std::int64_t h_k, std::int64_t d, std::int64_t dv, FwdParams& p) {
  for (auto [t, n] : {std::pair{&q, "q"}, {&k, kname}, {&v, vname}, {&out, "out"}})
    c.positive_strides(*t, n);
  if (c.failed()) return;
  const bool kbad = k.dtype != q.dtype;
  // The two shapes where FA3 allows a V head dim other than Q/K's.
  const bool mla_prefill = d > 128 && d <= 192 && dv > 96 && dv <= 128;
  const bool mla_decode = d <= 64 && dv <= 512;
  if (q.dtype == KL_DTYPE_FLOAT8_E4M3)
    c.fail("dtype", "q", "float8_e4m3fn inputs are not supported by these kernels",
           "use float16 or bfloat16 q, k and v");
  else if (q.dtype != KL_DTYPE_FLOAT16 && q.dtype != KL_DTYPE_BFLOAT16)
    c.fail("dtype", "q", std::string("q must be float16 or bfloat16, got ") + dtype_name(q.dtype));
  else if (kbad || v.dtype != q.dtype)
    c.fail("dtype_mismatch", kbad ? kname : vname,
           std::string(kbad ? "query and key" : "query and value") + " must have the same dtype (" +
               dtype_name(q.dtype) + " vs " + dtype_name(kbad ? k.dtype : v.dtype) + ")");
  else if (out.dtype != q.dtype)
    c.fail("out_dtype", "out",
           std::string("out must have the dtype of q (") + dtype_name(q.dtype) + "), got " +
               dtype_name(out.dtype));
  else if (h_k <= 0 || h <= 0 || h % h_k != 0)
    c.fail("gqa_ratio", kname,
           "number of heads in key/value (" + std::to_string(h_k) +
               ") must divide number of heads in query (" + std::to_string(h) + ")");
  else if (d > 256)
    c.fail("head_dim_max", "q", "head dimension " + std::to_string(d) + " exceeds 256",
           "FlashAttention forward supports head dimension at most 256");
  else if (d <= 0 || d % 8 != 0)
    c.fail("head_dim_multiple", "q",
           "head_size should be a multiple of 8, got " + std::to_string(d));
  else if (dv <= 0 || dv % 8 != 0)
    c.fail("head_dim_multiple", vname,
           "head_size_v should be a multiple of 8, got " + std::to_string(dv));
  else if (dv != d && !mla_prefill && !mla_decode)
    c.fail("head_dim_v", vname,
           "V head dim " + std::to_string(dv) + " differs from Q/K head dim " + std::to_string(d) +
               "; only Q/K in (128, 192] with V in (96, 128], or Q/K <= 64 with V <= 512 are "
               "defined");
  if (c.failed()) return;
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

void check_sinks(TensorChecker& c, const kl_tensor& sinks, std::int64_t h, FwdParams& p) {
  if (!given(sinks)) return;
  c.tensor(sinks, "sinks");
  c.dtype(sinks, "sinks", KL_DTYPE_FLOAT32, "sinks_dtype",
          "these kernels take fp32 sinks; the Python wrapper converts bf16 sinks");
  c.dims(sinks, "sinks", {h}, "(h,)");
  c.contiguous(sinks, "sinks");
  p.sinks = static_cast<const float*>(sinks.data);
}

void check_descales(TensorChecker& c, const kl_tensor& q_descale, const kl_tensor& k_descale,
                    const kl_tensor& v_descale) {
  for (auto [t, n] :
       {std::pair{&q_descale, "q_descale"}, {&k_descale, "k_descale"}, {&v_descale, "v_descale"}}) {
    c.tensor(*t, n);
    c.dtype(*t, n, KL_DTYPE_FLOAT32, "descale_dtype");
  }
}

void check_lse(TensorChecker& c, const kl_tensor& lse, bool varlen_q, std::int64_t b,
               std::int64_t h, std::int64_t s_q, std::int64_t total_q, FwdParams& p) {
  if (!given(lse)) return;
  c.tensor(lse, "softmax_lse");
  c.dtype(lse, "softmax_lse", KL_DTYPE_FLOAT32, "lse_dtype");
  if (varlen_q) c.dims(lse, "softmax_lse", {h, total_q}, "(h, total_q)");
  else c.dims(lse, "softmax_lse", {b, h, s_q}, "(b, h, seqlen_q)");
  c.contiguous(lse, "softmax_lse");
  p.lse = static_cast<float*>(lse.data);
  p.lse_layout = varlen_q ? LseLayout::head_total_q : LseLayout::batch_head_seq;
}

void check_page_table(TensorChecker& c, const kl_tensor& page_table, std::int64_t b,
                      const char* batch_source) {
  c.tensor(page_table, "page_table");
  c.dtype(page_table, "page_table", KL_DTYPE_INT32, "index_dtype");
  c.rank(page_table, "page_table", 2, "(b, max_pages_per_seq)");
  if (c.failed()) return;  // the extents below exist only for a 2-D table
  if (page_table.shape[1] > 1 && page_table.stride[1] != 1)
    c.fail("index_contiguous", "page_table", "page_table must have contiguous last dimension");
  else if (page_table.shape[0] != b)
    c.fail("batch_mismatch", "page_table",
           std::string("batch_size must be equal to batch_size_k: ") + batch_source + " gives " +
               std::to_string(b) + ", page_table has " + std::to_string(page_table.shape[0]) +
               " rows");
}

void check_cu_seqlens_q(TensorChecker& c, const kl_tensor& cu_seqlens_q, std::int64_t b) {
  c.index(cu_seqlens_q, "cu_seqlens_q", -1, "(b+1,)");
  if (b < 0) c.fail("shape", "cu_seqlens_q", "cu_seqlens_q must have at least one entry");
}

void check_max_seqlen_q(TensorChecker& c, std::int64_t max_seqlen_q, std::int64_t total_q) {
  if (max_seqlen_q > total_q)
    c.fail("value_range", "max_seqlen_q",
           "max_seqlen_q (" + std::to_string(max_seqlen_q) + ") exceeds total_q (" +
               std::to_string(total_q) + ")");
}

void set_strides3(const kl_tensor& t, std::int64_t& batch, std::int64_t& row, std::int64_t& head) {
  batch = 0;
  row = t.stride[0];
  head = t.stride[1];
}

void set_strides4(const kl_tensor& t, std::int64_t& batch, std::int64_t& row, std::int64_t& head) {
  batch = t.stride[0];
  row = t.stride[1];
  head = t.stride[2];
}

void set_paged(const kl_tensor& k, const kl_tensor& page_table, FwdParams& p) {
  p.page_table = static_cast<const std::int32_t*>(page_table.data);
  p.page_table_batch_stride = page_table.stride[0];
  p.page_size = static_cast<std::int32_t>(k.shape[1]);
  p.num_pages = static_cast<std::int32_t>(k.shape[0]);
  p.seqlen_k = static_cast<std::int32_t>(page_table.shape[1] * k.shape[1]);
}

}  // namespace kernels::loader
