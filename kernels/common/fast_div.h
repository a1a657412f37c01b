// Division by a divisor fixed for a whole launch, as a multiply-high and a shift instead of the
// ~20-instruction sequence (with conversions and a reciprocal on the special-function unit) a
// run-time `/` compiles to. For numerators in [0, 2^31) and divisors in [1, 2^31): with
// l = ceil(log2 d) and m = ceil(2^(31+l) / d) < 2^32, floor(n * m / 2^(31+l)) = floor(n / d),
// since m * d - 2^(31+l) < d makes the product exceed n / d by less than 1 / d. A divisor of 0
// (a launch with no tiles) divides like 1 rather than trapping.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace kernels::device {

struct FastDiv {
  uint32_t d;
  uint32_t mul;    // m (0 for d = 1)
  uint32_t shift;  // l - 1 (0 for d = 1)

  KERNELS_HOST_DEVICE explicit FastDiv(int divisor) : d(static_cast<uint32_t>(divisor)) {
    uint32_t l = 0;
    while ((uint64_t{1} << l) < d) ++l;
    mul = d <= 1 ? 0u : static_cast<uint32_t>(((uint64_t{1} << (31 + l)) + d - 1) / d);
    shift = d <= 1 ? 0u : l - 1;
  }

  KERNELS_HOST_DEVICE int div(int n) const {
    const uint32_t u = static_cast<uint32_t>(n);
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(u, mul);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(u) * mul) >> 32);
#endif
    return static_cast<int>(d <= 1 ? u : hi >> shift);
  }
};

// The plain `/` behind the same interface, for kernels whose registers cannot also hold
// FastDiv's multipliers.
struct PlainDiv {
  int d;
  KERNELS_HOST_DEVICE explicit PlainDiv(int divisor) : d(divisor) {}
  KERNELS_HOST_DEVICE int div(int n) const { return n / d; }
};

}  // namespace kernels::device
