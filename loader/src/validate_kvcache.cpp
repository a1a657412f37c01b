// flash_attn_with_kvcache: q batched (b, seqlen_q, h, d) or varlen (total_q, h, d) with
// cu_seqlens_q; the cache batched (b, seqlen_k, h_k, d) or paged (num_pages, page_size, h_k, d)
// with page_table, its lengths in cache_seqlens.
#include <cstdint>
#include <utility>

#include "call_rules.h"
#include "validate.h"

namespace kernels::loader {

ValidatedCall validate_kvcache(const kl_kvcache_args& a, const DeviceProperties& device) {
  ValidatedCall out;
  attention::FwdParams& p = out.params;
  TensorChecker c(device);
  if (!begin_call(a, "kl_kvcache_args", "kernels_loader_kvcache_args_init", c, out, device))
    return out;
  c.required(a.q, "q");
  c.required(a.k_cache, "k_cache");
  c.required(a.v_cache, "v_cache");
  c.required(a.out, "out");
  // Companions first (FA3's order of complaints), then what these kernels do not do.
  if (given(a.k) != given(a.v))
    c.fail("missing_companion", given(a.k) ? "v" : "k",
           "if k_new is supplied, v_new must also be passed in (and the reverse)");
  if (given(a.rotary_cos) != given(a.rotary_sin))
    c.fail("missing_companion", given(a.rotary_cos) ? "rotary_sin" : "rotary_cos",
           "if rotary cos is provided, rotary sin must also be provided (and the reverse)");
  if (given(a.rotary_cos) && !given(a.k))
    c.fail("missing_companion", "k",
           "if rotary cos/sin are provided, new key / value to be appended to KV cache must also "
           "be provided");
  if (given(a.cu_seqlens_q) && a.max_seqlen_q < 0)
    c.fail("missing_companion", "max_seqlen_q",
           "max_seqlen_q must be provided if cu_seqlens_q is provided");
  const bool paged = given(a.page_table);
  if (paged && !given(a.cache_seqlens))
    c.fail("missing_companion", "cache_seqlens",
           "paged attention (page_table) requires cache_seqlens");
  if (paged && given(a.cache_batch_idx))
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
  for (auto [t, n] :
       {std::pair{&a.q, "q"}, {&a.k_cache, "k_cache"}, {&a.v_cache, "v_cache"}, {&a.out, "out"}})
    c.last_dim_contiguous(*t, n);
  if (!passed(c, out)) return out;

  // The ranks are known from here on.
  const int hq = varlen_q ? 1 : 2;
  const std::int64_t h = a.q.shape[hq], d = a.q.shape[hq + 1];
  const std::int64_t h_k = a.k_cache.shape[2], dv = a.v_cache.shape[3];
  const std::int64_t b = varlen_q ? a.cu_seqlens_q.shape[0] - 1 : a.q.shape[0];
  const std::int64_t s_q = varlen_q ? a.max_seqlen_q : a.q.shape[1];
  const std::int64_t total_q = varlen_q ? a.q.shape[0] : extent_product(a.q.shape[0], a.q.shape[1]);
  if (a.v_cache.shape[0] != a.k_cache.shape[0] || a.v_cache.shape[1] != a.k_cache.shape[1] ||
      a.v_cache.shape[2] != h_k)
    c.fail("shape", "v_cache",
           "v_cache " + shape_str(a.v_cache) + " does not match k_cache " + shape_str(a.k_cache));
  c.dims(a.k_cache, "k_cache", {a.k_cache.shape[0], a.k_cache.shape[1], h_k, d},
         "(.., .., h_k, d) with d of q");
  if (varlen_q) c.dims(a.out, "out", {total_q, h, dv}, "(total_q, h, dv)");
  else c.dims(a.out, "out", {b, s_q, h, dv}, "(b, seqlen_q, h, dv)");
  check_heads(c, a.q, a.k_cache, a.v_cache, a.out, "k_cache", "v_cache", h, h_k, d, dv, p);
  if (varlen_q) {
    check_cu_seqlens_q(c, a.cu_seqlens_q, b);
    check_max_seqlen_q(c, a.max_seqlen_q, total_q);
  }
  c.index(a.cache_seqlens, "cache_seqlens", b, "(b,)");
  // cu_seqlens_k_new is read only with k_new, which these kernels refuse; SGLang passes it anyway.
  c.index(a.cu_seqlens_k_new, "cu_seqlens_k_new", b + 1, "(b+1,)");
  if (paged) check_page_table(c, a.page_table, b, "q");
  else if (a.k_cache.shape[0] != b)
    c.fail("batch_mismatch", "k_cache",
           "batch_size must be equal to batch_size_k: q gives " + std::to_string(b) +
               ", k_cache has " + std::to_string(a.k_cache.shape[0]) + " sequences");
  check_descales(c, a.q_descale, a.k_descale, a.v_descale);
  check_sinks(c, a.sinks, h, p);
  check_lse(c, a.softmax_lse, varlen_q, b, h, s_q, total_q, p);
  c.fits_int32(total_q, "q");
  c.fits_int32(paged ? extent_product(a.page_table.shape[1], a.k_cache.shape[1])
                     : a.k_cache.shape[1],
               "k_cache");
  c.fits_int32(paged ? a.k_cache.shape[0] : 0, "k_cache");
  if (!passed(c, out)) return out;

  p.q = a.q.data;
  p.k = a.k_cache.data;
  p.v = a.v_cache.data;
  p.out = a.out.data;
  if (varlen_q) {
    set_strides3(a.q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
    set_strides3(a.out, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
    p.cu_seqlens_q = static_cast<const std::int32_t*>(a.cu_seqlens_q.data);
  } else {
    set_strides4(a.q, p.q_batch_stride, p.q_row_stride, p.q_head_stride);
    set_strides4(a.out, p.out_batch_stride, p.out_row_stride, p.out_head_stride);
  }
  set_strides4(a.k_cache, p.k_batch_stride, p.k_row_stride, p.k_head_stride);
  set_strides4(a.v_cache, p.v_batch_stride, p.v_row_stride, p.v_head_stride);
  if (paged) set_paged(a.k_cache, a.page_table, p);
  else p.seqlen_k = static_cast<std::int32_t>(a.k_cache.shape[1]);
  p.seqused_k = static_cast<const std::int32_t*>(a.cache_seqlens.data);
  p.b = static_cast<std::int32_t>(b);
  p.seqlen_q = static_cast<std::int32_t>(s_q);
  p.total_q = static_cast<std::int32_t>(total_q);
  apply_scalars(ScalarArgs::of(a), p);
  out.k_rows = a.k_cache.shape[1];
  out.empty = total_q == 0 || b == 0;
  return out;
}

}  // namespace kernels::loader
