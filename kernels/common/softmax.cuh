// Online-softmax steps for mma.sync accumulators: a row of a 16x8 C fragment is spread over the
// four lanes of a quad (lane = 4*g + t), so row reductions are two xor-shuffles.
#pragma once

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
