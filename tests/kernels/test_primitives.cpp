// kernels/common/*.cuh on the GPU against the CPU: mma.sync + ldmatrix (plain and transposed)
// through the swizzled tile layout, the quad reductions of the online softmax, and cp.async's
// zero fill. Exact comparisons: the products of 16-bit values with 16 terms are exact in fp32
// only up to rounding of the sum, so the tolerance is 1e-5 relative to the sum of |terms|.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "device_primitives.h"
#include "gpu_harness.h"
#include "reference.h"
#include "support/skip.h"

using kernels::test::DType;

namespace {

#define KERNELS_REQUIRE_GPU()                                         \
  do {                                                                \
    if (!kernels::test::gpu().available)                              \
      KERNELS_SKIP("no CUDA device: " + kernels::test::gpu().reason); \
  } while (0)

}  // namespace

TEST_CASE("mma.sync m16n8k16 via ldmatrix from swizzled tiles matches the CPU",
          "[gpu][primitives]") {
  KERNELS_REQUIRE_GPU();
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (DType t : {DType::bf16, DType::fp16}) {
    std::vector<uint16_t> a(256), b(256), v(256);
    std::vector<float> fa(256), fb(256), fv(256);
    for (int i = 0; i < 256; ++i) {
      a[i] = kernels::test::to_bits(normal(rng), t);
      b[i] = kernels::test::to_bits(normal(rng), t);
      v[i] = kernels::test::to_bits(normal(rng), t);
      fa[i] = kernels::test::from_bits(a[i], t);
      fb[i] = kernels::test::from_bits(b[i], t);
      fv[i] = kernels::test::from_bits(v[i], t);
    }
    std::vector<float> c, d;
    const std::string err = kernels::test::run_mma_tile(t == DType::bf16, a, b, v, c, d);
    REQUIRE(err.empty());
    double worst_c = 0, worst_d = 0;
    for (int r = 0; r < 16; ++r)
      for (int col = 0; col < 16; ++col) {
        double want_c = 0, mag_c = 0, want_d = 0, mag_d = 0;
        for (int k = 0; k < 16; ++k) {
          want_c += static_cast<double>(fa[r * 16 + k]) * fb[col * 16 + k];
          mag_c += std::abs(static_cast<double>(fa[r * 16 + k]) * fb[col * 16 + k]);
          want_d += static_cast<double>(fa[r * 16 + k]) * fv[k * 16 + col];
          mag_d += std::abs(static_cast<double>(fa[r * 16 + k]) * fv[k * 16 + col]);
        }
        worst_c = std::max(worst_c, std::abs(c[r * 16 + col] - want_c) / (mag_c + 1e-30));
        worst_d = std::max(worst_d, std::abs(d[r * 16 + col] - want_d) / (mag_d + 1e-30));
      }
    INFO((t == DType::bf16 ? "bf16" : "fp16")
         << " worst relative error C=" << worst_c << " D=" << worst_d);
    CHECK(worst_c <= 1e-5);  // A * B^T (the Q K^T path)
    CHECK(worst_d <= 1e-5);  // A * V (the P V path, ldmatrix.trans)
  }
}

TEST_CASE("quad_max and quad_sum reduce over the 4 lanes of a quad", "[gpu][primitives]") {
  KERNELS_REQUIRE_GPU();
  std::vector<float> x(32), mx, sum;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> small(-50, 50);  // integers: sums are exact
  for (auto& e : x) e = static_cast<float>(small(rng));
  x[5] = -INFINITY;  // -inf must not poison the max of its quad
  REQUIRE(kernels::test::run_quad(x, mx, sum).empty());
  for (int lane = 0; lane < 32; ++lane) {
    const int q = lane / 4 * 4;
    const float want_max = std::max({x[q], x[q + 1], x[q + 2], x[q + 3]});
    CHECK(mx[lane] == want_max);
    if (q != 4) CHECK(sum[lane] == x[q] + x[q + 1] + x[q + 2] + x[q + 3]);
  }
}

TEST_CASE("quad_transpose gives lane t of a quad piece t of every lane", "[gpu][primitives]") {
  KERNELS_REQUIRE_GPU();
  std::vector<uint32_t> in(128), out;
  for (int i = 0; i < 128; ++i) in[i] = 0x1000u * (i / 4) + i % 4;  // (lane, piece)
  REQUIRE(kernels::test::run_quad_transpose(in, out).empty());
  for (int lane = 0; lane < 32; ++lane)
    for (int j = 0; j < 4; ++j) {
      INFO("lane " << lane << " piece " << j);
      const int from = lane / 4 * 4 + j;  // lane j of the same quad
      CHECK(out[lane * 4 + j] == in[from * 4 + lane % 4]);
    }
}

TEST_CASE("cp.async copies valid chunks and zero-fills invalid ones", "[gpu][primitives]") {
  KERNELS_REQUIRE_GPU();
  std::vector<uint32_t> src(16), dst;
  for (int i = 0; i < 16; ++i) src[i] = 0x01010101u * (i + 1);
  REQUIRE(kernels::test::run_cp_async(src, dst).empty());
  for (int chunk = 0; chunk < 4; ++chunk)
    for (int w = 0; w < 4; ++w) {
      INFO("chunk " << chunk << " word " << w);
      CHECK(dst[chunk * 4 + w] == (chunk % 2 ? 0u : src[chunk * 4 + w]));
    }
}

TEST_CASE("online_softmax_step over two key blocks matches the CPU", "[gpu][primitives]") {
  KERNELS_REQUIRE_GPU();
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> s1(256), s2(256);
  for (auto& x : s1) x = normal(rng);
  for (auto& x : s2) x = normal(rng);
  for (int c = 0; c < 16; ++c) s1[c] = -INFINITY;                    // row 0 sees no key in block 1
  for (int c = 0; c < 16; ++c) s1[16 + c] = s2[16 + c] = -INFINITY;  // row 1 sees none at all
  const float scale_log2 = 0.125f * 1.4426950408889634f;
  std::vector<float> p2, mx, sum, acc;
  REQUIRE(kernels::test::run_online_softmax(s1, s2, scale_log2, p2, mx, sum, acc).empty());
  for (int r = 0; r < 16; ++r) {
    INFO("row " << r);
    double m1 = -INFINITY, m = -INFINITY;
    for (int c = 0; c < 16; ++c) {
      m1 = std::max(m1, static_cast<double>(s1[r * 16 + c]));
      m = std::max({m, static_cast<double>(s1[r * 16 + c]), static_cast<double>(s2[r * 16 + c])});
    }
    CHECK(mx[r] == static_cast<float>(m));  // the max is exact
    // With no visible key the exponent base is 0, so every p is exp2(-inf) = 0 and nothing is NaN.
    const double base = std::isinf(m) ? 0.0 : m * scale_log2;
    double want_sum = 0;
    for (int c = 0; c < 16; ++c) {
      const double p = std::exp2(s2[r * 16 + c] * static_cast<double>(scale_log2) - base);
      want_sum += p + std::exp2(s1[r * 16 + c] * static_cast<double>(scale_log2) - base);
      CHECK(p2[r * 16 + c] == Approx(p).epsilon(1e-5).margin(1e-30));
    }
    CHECK(sum[r] == Approx(want_sum).epsilon(1e-5).margin(1e-30));
    // acc: 7 scaled by 0 at block 1 (no key before it), + 1, then scaled to block 2's max.
    const double want_acc = std::isinf(m1) ? 0.0 : std::exp2((m1 - m) * scale_log2);
    for (int c = 0; c < 16; ++c)
      CHECK(acc[r * 16 + c] == Approx(want_acc).epsilon(1e-5).margin(1e-30));
  }
}
