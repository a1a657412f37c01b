// The CPU reference itself, on cases small enough to compute by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "reference.h"

using kernels::test::attention_reference;
using kernels::test::DType;
using kernels::test::from_bits;
using kernels::test::Precision;
using kernels::test::RefProblem;
using kernels::test::to_bits;

namespace {

// One batch, one head, d = dv = 1: q = 1, keys k_j, values v_j; score_j = scale * k_j.
RefProblem scalar_problem(int sq, std::vector<float> keys, std::vector<float> values) {
  RefProblem p;
  p.b = 1;
  p.h = p.h_k = 1;
  p.d = p.dv = 1;
  p.sq = {sq};
  p.sk = {static_cast<int>(keys.size())};
  p.softmax_scale = 1.0f;
  p.q = {std::vector<float>(sq, 1.0f)};
  p.k = {keys};
  p.v = {values};
  return p;
}

double lse_of(std::initializer_list<double> xs) {
  double s = 0;
  for (double x : xs) s += std::exp(x);
  return std::log(s);
}

}  // namespace

TEST_CASE("16-bit conversions round to nearest even", "[reference]") {
  CHECK(to_bits(1.0f, DType::bf16) == 0x3f80);
  CHECK(to_bits(1.0f, DType::fp16) == 0x3c00);
  CHECK(to_bits(65504.0f, DType::fp16) == 0x7bff);
  CHECK(to_bits(1e6f, DType::fp16) == 0x7c00);
  CHECK(to_bits(std::ldexp(1.0f, -24), DType::fp16) == 0x0001);
  CHECK(to_bits(std::ldexp(1.0f, -25), DType::fp16) == 0x0000);  // tie to even (zero)
  CHECK(to_bits(0.1f, DType::fp16) == 0x2e66);
  CHECK(to_bits(-2.5f, DType::bf16) == 0xc020);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to the even mantissa (1.0).
  CHECK(to_bits(1.0f + std::ldexp(1.0f, -8), DType::bf16) == 0x3f80);
  for (float x : {0.3f, -7.25f, 1e-3f, 3.0e4f})
    for (DType t : {DType::bf16, DType::fp16}) {
      const float r = from_bits(to_bits(x, t), t);
      CHECK(std::abs(r - x) <= std::abs(x) * (t == DType::bf16 ? 1.0 / 256 : 1.0 / 2048));
    }
}

TEST_CASE("reference: softmax-weighted average and natural-log LSE", "[reference]") {
  RefProblem p = scalar_problem(1, {0.0f, std::log(3.0f)}, {2.0f, 6.0f});
  const auto r = attention_reference(p, Precision::high, DType::bf16);
  // weights 1/4 and 3/4
  CHECK(r.out[0][0] == Approx(0.25 * 2 + 0.75 * 6).epsilon(1e-6));  // log(3) is a float
  CHECK(r.lse[0][0] == Approx(std::log(4.0)).epsilon(1e-6));
}

TEST_CASE("reference: causal mask is bottom-right aligned", "[reference]") {
  // sq = 2, sk = 3: row 0 sees keys 0..1, row 1 sees keys 0..2.
  RefProblem p = scalar_problem(2, {0.0f, 0.0f, 0.0f}, {3.0f, 6.0f, 30.0f});
  p.causal = true;
  const auto r = attention_reference(p, Precision::high, DType::bf16);
  CHECK(r.out[0][0] == Approx(4.5));
  CHECK(r.out[0][1] == Approx(13.0));
  // sq = 3 > sk = 2: row 0 sees no key at all (j <= 0 + 2 - 3 = -1): out 0, lse -inf.
  RefProblem q = scalar_problem(3, {0.0f, 0.0f}, {3.0f, 6.0f});
  q.causal = true;
  const auto s = attention_reference(q, Precision::high, DType::bf16);
  CHECK(s.out[0][0] == 0.0);
  CHECK(s.lse[0][0] == -std::numeric_limits<double>::infinity());
  CHECK(s.out[0][1] == Approx(3.0));
  CHECK(s.out[0][2] == Approx(4.5));
}

TEST_CASE("reference: sliding window (left, right)", "[reference]") {
  // sq = sk = 4, window (1, 0): row i sees keys i-1..i.
  RefProblem p = scalar_problem(4, {0, 0, 0, 0}, {1, 2, 4, 8});
  p.window_left = 1;
  p.window_right = 0;
  const auto r = attention_reference(p, Precision::high, DType::bf16);
  CHECK(r.out[0][0] == Approx(1.0));
  CHECK(r.out[0][1] == Approx(1.5));
  CHECK(r.out[0][3] == Approx(6.0));
  CHECK(r.lse[0][2] == Approx(std::log(2.0)));
  // window (0, 1) without causal: row i sees keys i..i+1.
  p.window_left = 0;
  p.window_right = 1;
  const auto s = attention_reference(p, Precision::high, DType::bf16);
  CHECK(s.out[0][0] == Approx(1.5));
  CHECK(s.out[0][3] == Approx(8.0));
}

TEST_CASE("reference: softcap, sinks and empty sequences", "[reference]") {
  RefProblem p = scalar_problem(1, {2.0f, -1.0f}, {1.0f, -1.0f});
  p.softcap = 1.5f;
  const double s0 = 1.5 * std::tanh(2.0 / 1.5), s1 = 1.5 * std::tanh(-1.0 / 1.5);
  auto r = attention_reference(p, Precision::high, DType::bf16);
  CHECK(r.lse[0][0] == Approx(lse_of({s0, s1})));
  CHECK(r.out[0][0] == Approx((std::exp(s0) - std::exp(s1)) / (std::exp(s0) + std::exp(s1))));

  RefProblem q = scalar_problem(1, {0.0f}, {5.0f});
  q.sinks = {0.0f};  // sink weight e^0 = key weight e^0: out halves, lse = log 2
  r = attention_reference(q, Precision::high, DType::bf16);
  CHECK(r.out[0][0] == Approx(2.5));
  CHECK(r.lse[0][0] == Approx(std::log(2.0)));

  RefProblem e = scalar_problem(2, {}, {});
  r = attention_reference(e, Precision::high, DType::bf16);
  CHECK(r.out[0][0] == 0.0);
  CHECK(r.lse[0][1] == -std::numeric_limits<double>::infinity());
  e.sinks = {1.5f};  // only the sink: out 0, lse = sink
  r = attention_reference(e, Precision::high, DType::bf16);
  CHECK(r.out[0][0] == 0.0);
  CHECK(r.lse[0][0] == Approx(1.5));
}

TEST_CASE("reference: GQA maps query head i to kv head i / (h / h_k)", "[reference]") {
  RefProblem p;
  p.b = 1;
  p.h = 4;
  p.h_k = 2;
  p.d = p.dv = 1;
  p.sq = {1};
  p.sk = {1};
  p.softmax_scale = 1.0f;
  p.q = {{1, 1, 1, 1}};
  p.k = {{0, 0}};
  p.v = {{10, 20}};  // kv head 0 -> 10, kv head 1 -> 20
  const auto r = attention_reference(p, Precision::high, DType::bf16);
  CHECK(r.out[0][0] == 10.0);
  CHECK(r.out[0][1] == 10.0);
  CHECK(r.out[0][2] == 20.0);
  CHECK(r.out[0][3] == 20.0);
}

TEST_CASE("reference: low precision differs from high by 16-bit rounding only", "[reference]") {
  RefProblem p = scalar_problem(1, {0.1234f, 0.5f, -0.75f}, {0.3f, 0.7f, 1.1f});
  const auto hi = attention_reference(p, Precision::high, DType::bf16);
  const auto lo = attention_reference(p, Precision::low, DType::bf16);
  const double diff = std::abs(hi.out[0][0] - lo.out[0][0]);
  CHECK(diff > 0.0);
  CHECK(diff < 0.02);  // a few bf16 ulps of values near 0.7
}
