// The rules both entry points share (flash_attn_varlen_func and flash_attn_with_kvcache): the
// scalar arguments, the q/k/v/out dtypes and head dims, sinks, descales, LSE, the page table, and
// the start and end of every validation. validate_varlen.cpp and validate_kvcache.cpp hold what
// differs: which tensors exist and how their shapes relate.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/attention/params.h"
#include "tensor_checker.h"
#include "validate.h"

namespace kernels::loader {

// The scalar arguments, as both args structs name them.
struct ScalarArgs {
  int ver;
  double softmax_scale;
  int causal;
  int window_left, window_right;
  int attention_chunk;
  float softcap;
  int num_splits;
  int pack_gqa;
  int sm_margin;

  template <class Args>
  static ScalarArgs of(const Args& a) {
    return {a.ver,          a.softmax_scale,   a.causal,  a.window_left,
            a.window_right, a.attention_chunk, a.softcap, a.num_splits,
            a.pack_gqa,     a.sm_margin};
  }
};

void check_scalars(TensorChecker& c, const ScalarArgs& a, const DeviceProperties& device);
// Scale, softcap, causal/window and splits into the params (after every check passed).
void apply_scalars(const ScalarArgs& a, attention::FwdParams& p);

// q/k/v/out strides, dtypes, head dims and GQA ratio; fills the matching FwdParams fields.
// `kname`/`vname`: what the entry point calls its key and value tensors.
void check_heads(TensorChecker& c, const kl_tensor& q, const kl_tensor& k, const kl_tensor& v,
                 const kl_tensor& out, const char* kname, const char* vname, std::int64_t h,
                 std::int64_t h_k, std::int64_t d, std::int64_t dv, attention::FwdParams& p);

void check_sinks(TensorChecker& c, const kl_tensor& sinks, std::int64_t h, attention::FwdParams& p);
// Descales only scale fp8 inputs (FA3 ignores them otherwise); their dtype is still checked.
void check_descales(TensorChecker& c, const kl_tensor& q_descale, const kl_tensor& k_descale,
                    const kl_tensor& v_descale);
// (h, total_q) for varlen q, (b, h, seqlen_q) for batched q.
void check_lse(TensorChecker& c, const kl_tensor& lse, bool varlen_q, std::int64_t b,
               std::int64_t h, std::int64_t s_q, std::int64_t total_q, attention::FwdParams& p);
// The paged-KV page table: int32, (b, max_pages_per_seq), contiguous rows, one row per sequence
// of `batch_source`.
void check_page_table(TensorChecker& c, const kl_tensor& page_table, std::int64_t b,
                      const char* batch_source);
// cu_seqlens_q of a varlen q: int32 (b+1,) with b >= 0.
void check_cu_seqlens_q(TensorChecker& c, const kl_tensor& cu_seqlens_q, std::int64_t b);
void check_max_seqlen_q(TensorChecker& c, std::int64_t max_seqlen_q, std::int64_t total_q);

// (rows, heads, dim): no batch dimension.
void set_strides3(const kl_tensor& t, std::int64_t& batch, std::int64_t& row, std::int64_t& head);
// (batch, rows, heads, dim).
void set_strides4(const kl_tensor& t, std::int64_t& batch, std::int64_t& row, std::int64_t& head);
// The paged-KV fields of the params from k (num_pages, page_size, h_k, d) and the page table.
void set_paged(const kl_tensor& k, const kl_tensor& page_table, attention::FwdParams& p);

// The start every entry point shares: params defaults, the struct-size guard (a caller built
// against another header), and the scalar arguments. False: stop, `out` holds the violation.
template <class Args>
bool begin_call(const Args& a, const char* struct_name, const char* init_function, TensorChecker& c,
                ValidatedCall& out, const DeviceProperties& device) {
  attention::FwdParams& p = out.params;
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
  check_scalars(c, ScalarArgs::of(a), device);
  return true;
}

// After a group of checks: false (and `out` holds the violation) when one failed.
inline bool passed(TensorChecker& c, ValidatedCall& out) {
  if (!c.failed()) return true;
  out.violation = c.take();
  return false;
}

}  // namespace kernels::loader
