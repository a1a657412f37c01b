// The last step of the online softmax for one query row: fold in the sink (a logit with no value
// row), then the normaliser and the row's LSE. Scalar math, host and device, so tests/kernels
// checks the empty-row and sink rules on the CPU.
#pragma once

#include <cmath>

#include "kernels/common/host_device.h"

namespace kernels::attention {

// exp(x) = exp2(x * kLog2e); the kernels keep scores and maxima in the log2 domain.
inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

// sum: the row's sum of exp2(x - mx) over its visible scores x (log2 domain); mx: their max in
// the log2 domain, -inf when the row saw no key. Adds the sink logit (log2 domain) to both and
// returns what the row's accumulators must be multiplied by (0 when the row saw no key).
KERNELS_HOST_DEVICE float fold_sink(float& sum, float& mx, float sink_log2) {
  const float new_max = fmaxf(mx, sink_log2);
  const float corr = mx == -INFINITY ? 0.0f : exp2f(mx - new_max);
  sum = sum * corr + exp2f(sink_log2 - new_max);
  mx = new_max;
  return corr;
}

struct RowNorm {
  float inv;  // 1 / sum, 0 for a row with nothing to normalise
  float lse;  // natural log of the denominator, -inf for a row that saw nothing
};

KERNELS_HOST_DEVICE RowNorm normalise_row(float sum, float mx) {
  const bool empty = !(sum > 0.0f);  // also catches NaN
  return {empty ? 0.0f : 1.0f / sum, empty ? -INFINITY : (mx + log2f(sum)) * kLn2};
}

}  // namespace kernels::attention
