// flash_attn_varlen_func: q (total_q, h, d) with cu_seqlens_q; k/v either varlen (total_k, h_k, d)
// with cu_seqlens_k, or paged (num_pages, page_size, h_k, d) with page_table and seqused_k.
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "call_rules.h"
#include "validate.h"

namespace kernels::loader {

ValidatedCall validate_varlen(const kl_varlen_args& a, const DeviceProperties& device) {
  ValidatedCall out;
  attention::FwdParams& p = out.params;
  TensorChecker c(device);
  if (!begin_call(a, "kl_varlen_args", "kernels_loader_varlen_args_init", c, out, device))
    return out;
  c.required(a.q, "q");
  c.required(a.k, "k");
  c.required(a.v, "v");
  c.required(a.out, "out");
  const bool paged = given(a.page_table);
  if (!given(a.cu_seqlens_q))
    c.fail("required", "cu_seqlens_q", "cu_seqlens_q is required by flash_attn_varlen_func");
  if (!paged && !given(a.cu_seqlens_k))
    c.fail("required", "cu_seqlens_k",
           "cu_seqlens_k is required by flash_attn_varlen_func (or page_table with seqused_k)");
  if (paged && given(a.cu_seqlens_k))
    c.fail("mutually_exclusive", "page_table",
           "if cu_seqlens_k is passed in, then page table is not supported",
           "paged KV takes its lengths from seqused_k");
  if (paged && !given(a.seqused_k))
    c.fail("missing_companion", "seqused_k", "paged attention (page_table) requires seqused_k");
  if (a.max_seqlen_q < 0)
    c.fail("missing_companion", "max_seqlen_q",
           "max_seqlen_q must be provided if cu_seqlens_q is provided");
  if (!paged && a.max_seqlen_k < 0)
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
  if (!passed(c, out)) return out;

  // The ranks are known from here on.
  const int kh = paged ? 2 : 1;  // index of the head dimension in k/v
  const std::int64_t total_q = a.q.shape[0], h = a.q.shape[1], d = a.q.shape[2];
  const std::int64_t h_k = a.k.shape[kh], dv = a.v.shape[kh + 1];
  if (a.v.shape[kh] != h_k || a.v.shape[0] != a.k.shape[0] ||
      (paged && a.v.shape[1] != a.k.shape[1]))
    c.fail("shape", "v", "v " + shape_str(a.v) + " does not match k " + shape_str(a.k));
  c.dims(a.k, "k",
         paged ? std::initializer_list<std::int64_t>{a.k.shape[0], a.k.shape[1], h_k, d}
               : std::initializer_list<std::int64_t>{a.k.shape[0], h_k, d},
         paged ? "(num_pages, page_size, h_k, d)" : "(total_k, h_k, d) with d of q");
  c.dims(a.out, "out", {total_q, h, dv}, "(total_q, h, dv)");
  check_heads(c, a.q, a.k, a.v, a.out, "k", "v", h, h_k, d, dv, p);
  const std::int64_t b = a.cu_seqlens_q.ndim == 1 ? a.cu_seqlens_q.shape[0] - 1 : -1;
  check_cu_seqlens_q(c, a.cu_seqlens_q, b);
  c.index(a.cu_seqlens_k, "cu_seqlens_k", b + 1, "(b+1,)");
  c.index(a.seqused_k, "seqused_k", b, "(b,)");
  if (paged) check_page_table(c, a.page_table, b, "cu_seqlens_q");
  check_max_seqlen_q(c, a.max_seqlen_q, total_q);
  if (!paged && a.max_seqlen_k > a.k.shape[0])
    c.fail("value_range", "max_seqlen_k",
           "max_seqlen_k (" + std::to_string(a.max_seqlen_k) + ") exceeds total_k (" +
               std::to_string(a.k.shape[0]) + ")");
  check_descales(c, a.q_descale, a.k_descale, a.v_descale);
  check_sinks(c, a.sinks, h, p);
  check_lse(c, a.softmax_lse, true, b, h, a.max_seqlen_q, total_q, p);
  c.fits_int32(total_q, "q");
  c.fits_int32(a.max_seqlen_q, "max_seqlen_q");
  c.fits_int32(paged ? extent_product(a.page_table.shape[1], a.k.shape[1]) : a.max_seqlen_k,
               "max_seqlen_k");
  if (!passed(c, out)) return out;

  p.q = a.q.data;
  p.k = a.k.data;
  p.v = a.v.data;
  p.out = a.out.data;
  set_strides3(a.q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
  set_strides3(a.out, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
  if (paged) {
    set_strides4(a.k, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
    set_strides4(a.v, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
    set_paged(a.k, a.page_table, p);
  } else {
    set_strides3(a.k, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
    set_strides3(a.v, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
    p.cu_seqlens_k = static_cast<const std::int32_t*>(a.cu_seqlens_k.data);
    p.seqlen_k = static_cast<std::int32_t>(a.max_seqlen_k);
  }
  p.cu_seqlens_q = static_cast<const std::int32_t*>(a.cu_seqlens_q.data);
  p.seqused_k = static_cast<const std::int32_t*>(a.seqused_k.data);
  p.b = static_cast<std::int32_t>(b);
  p.seqlen_q = static_cast<std::int32_t>(a.max_seqlen_q);
  p.total_q = static_cast<std::int32_t>(total_q);
  apply_scalars(ScalarArgs::of(a), p);
  out.k_rows = a.k.shape[paged ? 1 : 0];
  out.empty = total_q == 0 || b == 0;
  return out;
}

}  // namespace kernels::loader
