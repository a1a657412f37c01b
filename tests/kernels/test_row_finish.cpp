// kernels/attention/row_finish.h on the CPU (host and device functions): the sink folded into a
// row's running max and sum, and the normaliser and LSE, including the rows that saw nothing.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "kernels/attention/row_finish.h"

using kernels::attention::fold_sink;
using kernels::attention::normalise_row;
using kernels::attention::RowNorm;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_CASE("normalise_row: 1/sum and the natural-log LSE, empty and NaN rows give 0 and -inf",
          "[row_finish]") {
  const RowNorm n = normalise_row(4.0f, 3.0f);  // log2 domain: lse = (3 + log2 4) * ln 2
  CHECK(n.inv == 0.25f);
  CHECK(n.lse == Approx(5.0 * std::log(2.0)).epsilon(1e-6));
  for (float sum : {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN()}) {
    const RowNorm e = normalise_row(sum, -kInf);
    CHECK(e.inv == 0.0f);
    CHECK(e.lse == -kInf);
  }
}

TEST_CASE("fold_sink: the sink joins the max and the sum", "[row_finish]") {
  SECTION("a row with keys: rescaled to the larger max") {
    float sum = 3.0f, mx = 1.0f;
    const float corr = fold_sink(sum, mx, 2.0f);  // sink above the max: new max 2
    CHECK(mx == 2.0f);
    CHECK(corr == Approx(0.5f));
    CHECK(sum == Approx(3.0f * 0.5f + 1.0f));
    // The LSE is that of the keys and the sink together: log(3 * 2^1 + 2^2) in natural log.
    CHECK(normalise_row(sum, mx).lse == Approx(std::log(3.0 * 2.0 + 4.0)).epsilon(1e-6));
  }
  SECTION("a sink below the max leaves the max") {
    float sum = 2.0f, mx = 5.0f;
    const float corr = fold_sink(sum, mx, 1.0f);
    CHECK(mx == 5.0f);
    CHECK(corr == 1.0f);
    CHECK(sum == Approx(2.0f + 1.0f / 16.0f));
  }
  SECTION("a row that saw no key: only the sink, and the accumulators are zeroed, not NaN") {
    float sum = 0.0f, mx = -kInf;
    const float corr = fold_sink(sum, mx, 1.5f);
    CHECK(corr == 0.0f);
    CHECK(mx == 1.5f);
    CHECK(sum == 1.0f);
    const RowNorm n = normalise_row(sum, mx);
    CHECK(n.inv == 1.0f);
    CHECK(n.lse == Approx(1.5 * std::log(2.0)).epsilon(1e-6));
  }
}
