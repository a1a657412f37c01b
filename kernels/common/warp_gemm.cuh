// Warp-tile GEMMs out of mma.sync m16n8k16 (mma.cuh) over swizzled shared-memory tiles
// (swizzle.cuh). A warp owns MT 16-row tiles of the output; `a_lane` and `b_lane` are the lane
// bases of SwizzledTile::lane_base for the fragment each ldmatrix reads:
//   A rows:        lane_base(tile, row0 + lane % 16, (lane / 16) * 8)
//   B^T rows (K):  lane_base(tile, (lane / 16) * 8 + lane % 8, ((lane / 8) % 2) * 8)
//   B rows (V):    lane_base(tile, ((lane / 8) % 2) * 8 + lane % 8, (lane / 16) * 8)
#pragma once

#include <cstdint>

#include "kernels/common/mma.cuh"
#include "kernels/common/swizzle.cuh"

namespace kernels::device {

template <int MT, int NT>
__device__ __forceinline__ void fill_fragments(float (&c)[MT][NT][4], float value) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) c[mt][nt][e] = value;
}

// C[MT*16 x NT*8] += A[MT*16 x K] * B[NT*8 x K]^T, A and B both row-major in shared memory (the
// S = Q K^T product: B's rows are keys).
template <class T, class ATile, class BTile, int K, int MT, int NT>
__device__ __forceinline__ void warp_gemm_abt(float (&c)[MT][NT][4], uint32_t a_lane,
                                              uint32_t b_lane) {
  static_assert(K % 16 == 0 && NT % 2 == 0, "whole m16n8k16 steps, B read 16 rows at a time");
#pragma unroll
  for (int ks = 0; ks < K / 16; ++ks) {
    uint32_t a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(a[mt], ATile::at(a_lane, mt * 16, ks * 16));
#pragma unroll
    for (int nt2 = 0; nt2 < NT / 2; ++nt2) {
      uint32_t b[4];
      ldmatrix_x4(b, BTile::at(b_lane, nt2 * 16, ks * 16));
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        MmaOp<T>::run(c[mt][2 * nt2], a[mt], b[0], b[1]);
        MmaOp<T>::run(c[mt][2 * nt2 + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// C[MT*16 x OT*8] += A * B[KT*8 x OT*8], A the fp32 accumulators of an earlier product
// (MT x KT fragments) rounded to T, B row-major in shared memory read transposed (the O += P V
// product: a pair of 16x8 C fragments holds exactly one 16x16 A fragment, so P never leaves the
// registers).
template <class T, class BTile, int MT, int KT, int OT>
__device__ __forceinline__ void warp_gemm_rab(float (&c)[MT][OT][4],
                                              const float (&a_acc)[MT][KT][4], uint32_t b_lane) {
  static_assert(KT % 2 == 0 && OT % 2 == 0, "whole m16n8k16 steps, B read 16 columns at a time");
#pragma unroll
  for (int ks = 0; ks < KT / 2; ++ks) {
    uint32_t a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      a[mt][0] = MmaOp<T>::pack(a_acc[mt][2 * ks][0], a_acc[mt][2 * ks][1]);
      a[mt][1] = MmaOp<T>::pack(a_acc[mt][2 * ks][2], a_acc[mt][2 * ks][3]);
      a[mt][2] = MmaOp<T>::pack(a_acc[mt][2 * ks + 1][0], a_acc[mt][2 * ks + 1][1]);
      a[mt][3] = MmaOp<T>::pack(a_acc[mt][2 * ks + 1][2], a_acc[mt][2 * ks + 1][3]);
    }
#pragma unroll
    for (int ot2 = 0; ot2 < OT / 2; ++ot2) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, BTile::at(b_lane, ks * 16, ot2 * 16));
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        MmaOp<T>::run(c[mt][2 * ot2], a[mt], b[0], b[1]);
        MmaOp<T>::run(c[mt][2 * ot2 + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

}  // namespace kernels::device
