// Online-softmax steps for mma.sync accumulators: a row of a 16x8 C fragment is spread over the
// four lanes of a quad (lane = 4*g + t), so row reductions are two xor-shuffles.
#pragma once

#include <cmath>
#include <cstdint>

namespace kernels::device {

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

__device__ __forceinline__ float fast_exp2(float x) { return exp2f(x); }

// What a row's scores are offset by before exp2: its max in the log2 domain. A row with no
// visible key so far keeps max -inf; 0 then, so exp2 gives 0, not NaN.
__device__ __forceinline__ float softmax_base(float mx, float scale_log2) {
  return mx == -INFINITY ? 0.0f : mx * scale_log2;
}

// The offset a row's exponentials use after a key block whose scores reach mx (raw; the row's
// running max so far included), given the offset `used` so far: the new max only once it exceeds
// `used` by more than 2^kMaxStaleLog2 in the exp2 domain (FA4's lazy rescaling). Until then
// p = exp2(s * scale_log2 - used * scale_log2) stays at most 2^kMaxStaleLog2, which fp32 sums and
// bf16/fp16 P hold with the same relative precision, and the output accumulators need no rescale.
// The result is exact: the row's sum and output share the offset, and the LSE is taken from it.
// A row with no visible key keeps -inf (the comparison with NaN is false).
inline constexpr float kMaxStaleLog2 = 8.0f;
// The same bound on p itself.
inline constexpr float kMaxStaleP = static_cast<float>(1u << static_cast<unsigned>(kMaxStaleLog2));
__device__ __forceinline__ bool softmax_max_moves(float used, float mx, float scale_log2) {
  return (mx - used) * scale_log2 > kMaxStaleLog2;
}

// One key block of the online softmax over MT x NT score fragments (rows lane / 4 and
// lane / 4 + 8 of each 16-row tile: r = 0, 1). s holds raw scores on entry and the block's
// probabilities p = exp2(s * scale_log2 - max * scale_log2) on return (one FFMA and one MUFU
// each); row_max is the running max of the raw scores, row_sum this lane's partial sum (quad-
// reduced only at the end), and acc (MT x OT fragments of the output) is rescaled to the new max.
template <int MT, int NT, int OT>
__device__ __forceinline__ void online_softmax_step(float (&s)[MT][NT][4], float (&row_max)[MT][2],
                                                    float (&row_sum)[MT][2],
                                                    float (&acc)[MT][OT][4], float scale_log2) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[mt][r];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
      mx = quad_max(mx);
      const float base = softmax_base(mx, scale_log2);
      const float correction = fast_exp2(row_max[mt][r] * scale_log2 - base);
      row_max[mt][r] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const float p0 = fast_exp2(fmaf(s[mt][nt][2 * r], scale_log2, -base));
        const float p1 = fast_exp2(fmaf(s[mt][nt][2 * r + 1], scale_log2, -base));
        s[mt][nt][2 * r] = p0;
        s[mt][nt][2 * r + 1] = p1;
        sum += p0 + p1;
      }
      row_sum[mt][r] = row_sum[mt][r] * correction + sum;
#pragma unroll
      for (int ot = 0; ot < OT; ++ot) {
        acc[mt][ot][2 * r] *= correction;
        acc[mt][ot][2 * r + 1] *= correction;
      }
    }
}

// 4x4 transpose over the lanes of a quad: lane t's v[j] becomes lane j's old v[t]. An
// accumulator row keeps its 8-column groups as four 4-byte pieces, one per lane; after this, each
// lane holds one group whole (16 bytes, one vector store). Four shuffles.
__device__ __forceinline__ void quad_transpose(uint32_t (&v)[4]) {
  const int t = threadIdx.x % 4;
#pragma unroll
  for (int bit = 1; bit <= 2; bit <<= 1) {
    const bool upper = (t & bit) != 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (j & bit) continue;
      // Exchange (lane t, piece j | bit) of the lower lane with (lane t ^ bit, piece j).
      const uint32_t got = __shfl_xor_sync(0xffffffffu, upper ? v[j] : v[j | bit], bit);
      if (upper) v[j] = got;
      else v[j | bit] = got;
    }
  }
}

}  // namespace kernels::device
