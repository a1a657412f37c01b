// Online-softmax steps for mma.sync accumulators: a row of a 16x8 C fragment is spread over the
// four lanes of a quad (lane = 4*g + t), so row reductions are two xor-shuffles.
#pragma once

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

}  // namespace kernels::device
