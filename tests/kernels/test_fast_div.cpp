// kernels/common/fast_div.h on the CPU (the same host and device function the sm90 kernels'
// tile decode runs): the multiply-shift quotient against `/` for the divisors a launch can
// have, at the numerators where a wrong multiplier would first show (multiples of the divisor
// and one below them, the top of the 31-bit range).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/common/fast_div.h"

using kernels::device::FastDiv;

TEST_CASE("FastDiv gives n / d for every 31-bit numerator class and divisor", "[fast_div]") {
  std::vector<int> divisors;
  for (int d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (int k = 1; k < 31; ++k)
    for (int delta : {-1, 0, 1}) divisors.push_back((1 << k) + delta);
  divisors.push_back(0x7fffffff);
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> any(0, 0x7fffffff);
  for (int i = 0; i < 2000; ++i) divisors.push_back(std::max(1, any(rng)));
  int64_t checked = 0;
  for (int d : divisors) {
    const FastDiv f(d);
    std::vector<int> ns = {0, 1, d - 1, d, 0x7fffffff, 0x7ffffffe};
    for (int64_t k = 2; k < 64; ++k)
      if (k * d <= 0x7fffffff) {
        ns.push_back(static_cast<int>(k * d));
        ns.push_back(static_cast<int>(k * d - 1));
      }
    for (int i = 0; i < 64; ++i) ns.push_back(any(rng));
    for (int n : ns) {
      if (n < 0) continue;
      if (f.div(n) != n / d) FAIL("FastDiv(" << d << ").div(" << n << ") = " << f.div(n));
      ++checked;
    }
  }
  CHECK(checked > 100000);
}

TEST_CASE("FastDiv of 0 divides like 1 (a launch with no tiles) instead of trapping",
          "[fast_div]") {
  const FastDiv f(0);
  CHECK(f.div(0) == 0);
  CHECK(f.div(17) == 17);
}
