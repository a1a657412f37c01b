// Online-softmax steps for mma.sync accumulators: a row of a 16x8 C fragment is spread over the
// four lanes of a quad (lane = 4*g + t), so row reductions are two xor-shuffles.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/common/mma.cuh"

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

// exp2 on the FMA pipe instead of MUFU.EX2 (a warp's MUFU takes 8 issue cycles per
// instruction, FFMA one), for x given as y = (x + 127) / 254 clamped to [0, 1], which one FFMA.SAT
// from a score gives (Exp2FmaArg). 2^floor(x) comes from the exponent bits of an add rounded down,
// 2^frac(x) from a cubic (relative error below 8.6e-5, under the rounding of P to 16 bits).
// x <= -127 (a masked -inf) gives exactly 0; x >= 127 gives 2^127, so probabilities checked
// against a bound still exceed it. A NaN score gives 0, not NaN.
struct Exp2FmaArg {
  float a, b;
  __device__ __forceinline__ Exp2FmaArg(float scale_log2, float base)
      : a(scale_log2 * (1.0f / 254.0f)), b((127.0f - base) * (1.0f / 254.0f)) {}
  __device__ __forceinline__ float operator()(float s) const {
    float y;  // one FFMA.SAT (ptxas leaves __saturatef(fmaf()) as FFMA, FADD.SAT)
    asm("fma.rn.ftz.sat.f32 %0, %1, %2, %3;" : "=f"(y) : "f"(s), "f"(a), "f"(b));
    return y;
  }
};
__device__ __forceinline__ float exp2_fma(float y) {
  constexpr float kShift = 12582912.0f - 127.0f;  // 1.5 * 2^23: an add leaves an integer in the
                                                  // mantissa's low bits; -127 undoes the offset
  const float t = __fmaf_rd(y, 254.0f, kShift);   // 1.5 * 2^23 + floor(x)
  const float f = fmaf(y, 254.0f, kShift - t);    // frac(x), exact
  const float p = fmaf(fmaf(fmaf(0.0770664141f, f, 0.22764568f), f, 0.695116639f), f, 1.0f);
  return __uint_as_float(__float_as_uint(p) + (__float_as_uint(t) << 23));
}

// How exp2_pack takes a pair of exponentials: one MUFU.EX2 each in fp32, or one for the pair on
// 16-bit inputs (ex2.approx.f16x2, or .bf16x2 for bf16 P).
enum class Exp2Pair { kF32, kF16, kBF16 };

// p0 = exp2(x0), p1 = exp2(x1), returned packed to T as P V's A operand wants them (lo = p0).
// kF16 rounds x to fp16 (11 significant bits: for |x| < 16 an error of at most 2^-8 in x, so
// 0.3% in p where p >= 2^-16 and less above) and p to fp16, then, for bf16 P, to bf16; the
// floats are the 16-bit results, so a row's sum holds exactly what P V multiplies. kBF16 rounds
// x to 8 significant bits (2^-5 at |x| = 4..8: 1.1% in p) for bf16 P alone.
template <class T, Exp2Pair Kind>
__device__ __forceinline__ uint32_t exp2_pack(float x0, float x1, float& p0, float& p1) {
  if constexpr (Kind == Exp2Pair::kF32) {
    p0 = fast_exp2(x0);
    p1 = fast_exp2(x1);
    return MmaOp<T>::pack(p0, p1);
  } else if constexpr (Kind == Exp2Pair::kF16) {
    const __half2 x = __floats2half2_rn(x0, x1);
    uint32_t y;
    asm("ex2.approx.f16x2 %0, %1;" : "=r"(y) : "r"(reinterpret_cast<const uint32_t&>(x)));
    const float2 p = __half22float2(reinterpret_cast<const __half2&>(y));
    p0 = p.x;
    p1 = p.y;
    if constexpr (std::is_same_v<T, __half>) return y;
    else return MmaOp<T>::pack(p0, p1);
  } else {
    static_assert(std::is_same_v<T, __nv_bfloat16>, "bf16 exponentials give bf16 P");
    const uint32_t x = MmaOp<T>::pack(x0, x1);
    uint32_t y;
    asm("ex2.approx.ftz.bf16x2 %0, %1;" : "=r"(y) : "r"(x));
    p0 = __uint_as_float(y << 16);
    p1 = __uint_as_float(y & 0xffff0000u);
    return y;
  }
}

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
