// The built-in forward kernel's epilogue: each warp's accumulator rows normalised (with the sink
// when unsplit; the combine adds it once otherwise) and written out with their LSE, either to
// out / lse or, with splits, to the fp32 split accumulators.
#pragma once

#include <cstdint>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/params.h"
#include "kernels/attention/row_finish.h"
#include "kernels/common/mma.cuh"
#include "kernels/common/softmax.cuh"

namespace kernels::attention {

// acc, row_max (raw scores), row_sum (this lane's partial sums) of the MT x OT fragments of the
// warp's packed rows from row0 (row row0 + mt*16 + lane/4 + r*8 is position row / group, head
// hk * group + row % group).
template <class T, int MT, int OT>
__device__ __forceinline__ void write_rows(const FwdParams& p, const detail::BatchInfo& b,
                                           float (&acc)[MT][OT][4], const float (&row_max)[MT][2],
                                           const float (&row_sum)[MT][2], float scale_log2,
                                           int row0, int group, int hk, int split, int num_splits,
                                           int lane) {
  const bool split_mode = num_splits > 1;
  using Mma = device::MmaOp<T>;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int mm = row0 + mt * 16 + lane / 4 + r * 8;
      const int i = mm / group;
      const int head = hk * group + (mm - i * group);
      float sum = device::quad_sum(row_sum[mt][r]);
      float mx = row_max[mt][r] * scale_log2;  // log2 domain from here on
      if (!split_mode && p.sinks != nullptr && i < b.sq) {
        const float corr = fold_sink(sum, mx, p.sinks[head] * kLog2e);
#pragma unroll
        for (int ot = 0; ot < OT; ++ot) {
          acc[mt][ot][2 * r] *= corr;
          acc[mt][ot][2 * r + 1] *= corr;
        }
      }
      const RowNorm f = normalise_row(sum, mx);
      if (i >= b.sq) continue;
      if (split_mode) {
        const int64_t acc_row = (static_cast<int64_t>(split) * p.h + head) * p.total_q +
                                b.acc_row0 + i;
        float* dst = p.out_accum + acc_row * p.dv;
#pragma unroll
        for (int ot = 0; ot < OT; ++ot) {
          const int col = ot * 8 + (lane % 4) * 2;
          if (col < p.dv)
            *reinterpret_cast<float2*>(dst + col) = make_float2(acc[mt][ot][2 * r] * f.inv,
                                                                acc[mt][ot][2 * r + 1] * f.inv);
        }
        if (lane % 4 == 0) p.lse_accum[acc_row] = f.lse;
      } else {
        T* dst = static_cast<T*>(p.out) + b.o_row0 + static_cast<int64_t>(i) * p.out_row_stride +
                 static_cast<int64_t>(head) * p.out_head_stride;
#pragma unroll
        for (int ot = 0; ot < OT; ++ot) {
          const int col = ot * 8 + (lane % 4) * 2;
          if (col < p.dv)
            *reinterpret_cast<uint32_t*>(dst + col) = Mma::pack(acc[mt][ot][2 * r] * f.inv,
                                                                acc[mt][ot][2 * r + 1] * f.inv);
        }
        if (p.lse != nullptr && lane % 4 == 0) {
          const int64_t idx = p.lse_layout == LseLayout::head_total_q
                                  ? static_cast<int64_t>(head) * p.total_q + b.acc_row0 + i
                                  : (static_cast<int64_t>(b.bi) * p.h + head) * p.seqlen_q + i;
          p.lse[idx] = f.lse;
        }
      }
    }
}

}  // namespace kernels::attention
