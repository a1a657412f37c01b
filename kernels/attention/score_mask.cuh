// From raw Q K^T products to the scores the online softmax takes: the softcap, and the causal /
// window / sequence-end mask of the key blocks that need one (block_needs_mask).
#pragma once

#include <cmath>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/params.h"
#include "kernels/attention/row_finish.h"

namespace kernels::attention {

// Softcap: s = softcap * tanh(scale * qk / softcap); the softcap factor joins the exp2 scale, so
// the kernel keeps tanh(qk * cap_in) (or qk itself) as the raw score and scales by scale_log2.
struct ScoreScale {
  bool softcap_on;
  float cap_in;      // multiplies qk inside the tanh
  float scale_log2;  // raw score -> log2 domain

  KERNELS_HOST_DEVICE explicit ScoreScale(const FwdParams& p) {
    softcap_on = p.softcap > 0.0f;
    cap_in = softcap_on ? p.softmax_scale / p.softcap : 1.0f;
    scale_log2 = (softcap_on ? p.softcap : p.softmax_scale) * kLog2e;
  }
};

template <int MT, int NT>
__device__ __forceinline__ void apply_softcap(float (&s)[MT][NT][4], float cap_in) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mt][nt][e] = tanhf(s[mt][nt][e] * cap_in);
}

// Sets to -inf the scores of keys [n0, n0 + NT*8) that the warp's packed rows (from row0: row
// row0 + mt*16 + lane/4 + r*8 is position row / group) may not see. Row bounds are recomputed
// here (few blocks need masks) rather than held in registers.
template <int MT, int NT>
__device__ __forceinline__ void mask_scores(float (&s)[MT][NT][4], const detail::KeyBounds& kb,
                                            int sk, int n0, int row0, int group, int lane) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = (row0 + mt * 16 + lane / 4 + r * 8) / group;
      const int hi_j = kb.hi(i, sk);
      const int lo_j = kb.lo(i);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = n0 + nt * 8 + (lane % 4) * 2 + e;
          if (j > hi_j || j < lo_j) s[mt][nt][2 * r + e] = -INFINITY;
        }
    }
}

// mask_scores for one 16-row tile (MT = 1, group 1) through a bit per element
// (lane_visible_bits): a few integer operations a row, then one bit test per element, which ptxas
// turns into R2P and FSEL, instead of two compares per element.
template <int NT>
__device__ __forceinline__ void mask_scores_bits(float (&s)[1][NT][4], const detail::KeyBounds& kb,
                                                 int sk, int n0, int row0, int lane) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const auto visible = detail::lane_visible_bits<NT>(kb, sk, row0 + lane / 4 + r * 8,
                                                       n0 + (lane % 4) * 2);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (!((visible >> (2 * nt + e)) & 1)) s[0][nt][2 * r + e] = -INFINITY;
  }
}

}  // namespace kernels::attention
