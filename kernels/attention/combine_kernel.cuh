// Split-KV combine: out = sum_s exp(lse_s - lse) * out_s with lse = logsumexp(lse_s, sink).
// One warp per (query row, head); the splits' LSEs are reduced across the warp, then each lane
// owns 4 consecutive v columns. Deterministic: the order of the sums does not depend on timing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "kernels/attention/params.h"
#include "kernels/attention/row_finish.h"
#include "kernels/common/mma.cuh"

namespace kernels::attention {

template <int DV, class T>
__device__ __forceinline__ void attention_combine(const CombineParams& p) {
  using Mma = device::MmaOp<T>;
  constexpr int kRowsPerBlock = 4;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kRowsPerBlock + warp;
  const int head = blockIdx.y;
  if (row >= p.total_q || warp >= kRowsPerBlock) return;

  const int64_t stride_split = static_cast<int64_t>(p.h) * p.total_q;
  const int64_t base = static_cast<int64_t>(head) * p.total_q + row;

  float mx = -INFINITY;
  for (int s = lane; s < p.num_splits; s += 32)
    mx = fmaxf(mx, p.lse_accum[s * stride_split + base]);
  const float sink = p.sinks != nullptr ? p.sinks[head] : -INFINITY;
  mx = fmaxf(mx, sink);
#pragma unroll
  for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.0f;
  if (mx != -INFINITY) {
    for (int s = lane; s < p.num_splits; s += 32)
      sum += exp2f((p.lse_accum[s * stride_split + base] - mx) * kLog2e);
  }
#pragma unroll
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (mx != -INFINITY && sink != -INFINITY) sum += exp2f((sink - mx) * kLog2e);
  const bool empty = !(sum > 0.0f);
  const float lse = empty ? -INFINITY : mx + logf(sum);

  int bi = 0;
  int i = row;
  if (p.cu_seqlens_q == nullptr) {
    bi = row / p.seqlen_q;
    i = row - bi * p.seqlen_q;
  }
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(head) * p.out_head_stride +
           (p.cu_seqlens_q != nullptr ? static_cast<int64_t>(row) * p.out_row_stride
                                      : static_cast<int64_t>(bi) * p.out_batch_stride +
                                            static_cast<int64_t>(i) * p.out_row_stride);
  for (int col = lane * 4; col < p.dv; col += 128) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (!empty) {
      for (int s = 0; s < p.num_splits; ++s) {
        const float w = exp2f((p.lse_accum[s * stride_split + base] - lse) * kLog2e);
        if (w == 0.0f) continue;  // an empty split (lse -inf) adds nothing
        const float* src = p.out_accum + (s * stride_split + base) * p.dv + col;
        if (col + 4 <= p.dv) {
          const float4 x = *reinterpret_cast<const float4*>(src);
          acc[0] += w * x.x;
          acc[1] += w * x.y;
          acc[2] += w * x.z;
          acc[3] += w * x.w;
        } else {
          for (int e = 0; e < p.dv - col; ++e) acc[e] += w * src[e];
        }
      }
    }
    if (col + 4 <= p.dv) {
      // out rows are only 4-byte aligned (even strides), so two pair stores.
      *reinterpret_cast<uint32_t*>(out + col) = Mma::pack(acc[0], acc[1]);
      *reinterpret_cast<uint32_t*>(out + col + 2) = Mma::pack(acc[2], acc[3]);
    } else {
      for (int e = 0; e < p.dv - col; e += 2)
        *reinterpret_cast<uint32_t*>(out + col + e) = Mma::pack(acc[e], acc[e + 1]);
    }
  }
  if (p.lse != nullptr && lane == 0) {
    const int64_t idx = p.lse_layout == LseLayout::head_total_q
                            ? static_cast<int64_t>(head) * p.total_q + row
                            : (static_cast<int64_t>(bi) * p.h + head) * p.seqlen_q + i;
    p.lse[idx] = lse;
  }
}

}  // namespace kernels::attention
