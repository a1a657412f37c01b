// One attention call on the GPU checked against the CPU reference: random inputs in the dtype,
// laid out as the case asks (varlen or batched q; varlen, contiguous-cache or paged K/V with a
// shuffled page table), outputs poisoned with NaN before the launch.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "kernels/attention/params.h"

namespace kernels::test {

enum class KvLayout { varlen, cache, paged };

struct AttentionCase {
  attention::DType dtype = attention::DType::bf16;
  int d = 128, dv = 128;
  int h = 4, h_k = 2;
  std::vector<int> sq, sk;  // per batch; batched q needs equal sq
  bool varlen_q = true;
  KvLayout kv = KvLayout::varlen;
  int cache_extra = 0;  // cache layout: capacity = max(sk) + cache_extra (seqused_k = sk)
  bool seqused = true;  // cache layout: pass seqused_k (false: every batch sees the whole cache)
  int page_size = 16;
  bool causal = false;
  int window_left = -1, window_right = -1;
  float softcap = 0.0f;
  // Multiplies the usual 1 / sqrt(d) softmax scale: at 12, a row's max keeps growing by more
  // than 2^8 (exp2 domain) from one key block to the next, so the kernels' lazy rescale moves.
  float scale_mul = 1.0f;
  bool sinks = false;
  bool lse = true;
  int num_splits = 1;
  bool padded_strides = false;  // row/head strides larger than the packed ones
  bool graph = false;  // capture the launches in a CUDA graph and run only the graph (twice)

  std::string describe() const;
};

struct CaseResult {
  std::string error;  // non-empty: the plan or a launch failed
  int splits_used = 0;
  std::string kernel;         // the forward kernel that ran
  double err = 0;             // max |kernel - fp64 reference| over out
  double err_low = 0;         // max |low-precision reference - fp64 reference|
  double atol = 0;            // FA3's rounding term: 2 * max |(ref + 0.3 - 0.3) - ref| in the dtype
  long unwritten = 0;         // out elements still NaN (poison) or not finite
  double lse_err = 0;         // max |lse - reference| relative to 1 + |reference|
  long lse_mismatch_inf = 0;  // rows where exactly one of kernel/reference is -inf
  std::vector<uint16_t> raw_out;  // the kernel's output bytes, for bitwise comparisons

  // FA3's criterion (hopper/test_flash_attn.py): err <= 2 * err_low + atol (rtol 3 with softcap).
  bool out_ok(double rtol) const { return unwritten == 0 && err <= rtol * err_low + atol; }
};

// Draws fresh inputs from `rng`, runs the kernels and the reference.
CaseResult run_case(const AttentionCase& c, std::mt19937& rng);

}  // namespace kernels::test
