// kernels/attention/block_range.cuh on the CPU (its functions are host and device): which query
// positions a block of packed rows holds, which key blocks it reads, which of those need a mask,
// and the per-row key bounds the mask applies, all checked against the CPU reference's
// visibility rule (key_visible) over every small shape.
#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <type_traits>

#include "kernels/attention/block_range.cuh"
#include "reference.h"

using kernels::attention::FwdParams;
using namespace kernels::attention::detail;
using kernels::test::key_visible;
using kernels::test::RefProblem;

namespace {

struct Case {
  int sq, sk, group, block_m, block_n, num_splits;
  bool causal;
  int window_left, window_right;

  std::string str() const {
    std::ostringstream o;
    o << "sq=" << sq << " sk=" << sk << " group=" << group << " block_m=" << block_m
      << " block_n=" << block_n << " splits=" << num_splits << " causal=" << causal << " window=("
      << window_left << ", " << window_right << ")";
    return o.str();
  }
};

FwdParams params_of(const Case& c) {
  FwdParams p{};
  p.seqlen_q = c.sq;
  p.seqlen_k = c.sk;
  p.is_causal = c.causal ? 1 : 0;
  p.window_left = c.window_left;
  p.window_right = c.window_right;
  return p;
}

RefProblem problem_of(const Case& c) {
  RefProblem r;
  r.causal = c.causal;
  r.window_left = c.window_left;
  r.window_right = c.window_right;
  return r;
}

// Every small shape and mask; calls f(case) for each, stopping at the first non-empty message.
template <class F>
std::string for_each_case(F f) {
  for (int sq = 1; sq <= 9; ++sq)
    for (int sk = 0; sk <= 17; ++sk)
      for (int causal = 0; causal <= 1; ++causal)
        for (int wl : {-1, 0, 1, 4})
          for (int wr : {-1, 0, 2})
            for (int group : {1, 3})
              for (int block_m : {4, 16})
                for (int block_n : {2, 8})
                  for (int splits : {1, 2, 3}) {
                    const Case c{sq, sk, group, block_m, block_n, splits, causal != 0, wl, wr};
                    std::string msg = f(c);
                    if (!msg.empty()) return c.str() + ": " + msg;
                  }
  return "";
}

}  // namespace

TEST_CASE("query_rows: the positions of a block of packed rows", "[block_range]") {
  const std::string failure = for_each_case([](const Case& c) -> std::string {
    if (c.num_splits != 1 || c.block_n != 2) return "";  // independent of those
    for (int m0 = 0; m0 < c.sq * c.group; m0 += c.block_m) {
      const int last = std::min(m0 + c.block_m, c.sq * c.group) - 1;
      const QueryRows rows = query_rows(m0, c.block_m, c.group, c.sq);
      if (rows.i_min != m0 / c.group || rows.i_max != last / c.group)
        return "m0=" + std::to_string(m0) + ": got [" + std::to_string(rows.i_min) + ", " +
               std::to_string(rows.i_max) + "]";
    }
    return "";
  });
  INFO(failure);
  CHECK(failure.empty());
}

TEST_CASE("KeyBounds: the keys row i sees are exactly lo(i) to hi(i)", "[block_range]") {
  // The mask (mask_scores) hides key j of row i when j > hi(i) or j < lo(i); keys past sk are
  // zero-filled rows that must be hidden too.
  const std::string failure = for_each_case([](const Case& c) -> std::string {
    if (c.num_splits != 1 || c.block_n != 2 || c.group != 1 || c.block_m != 4) return "";
    const FwdParams p = params_of(c);
    const RefProblem ref = problem_of(c);
    const BatchInfo b = batch_info(p, 0);
    const KeyBounds kb(p, b);
    for (int i = 0; i < c.sq; ++i)
      for (int j = 0; j < c.sk + 8; ++j) {
        const bool want = j < c.sk && key_visible(ref, i, j, c.sq, c.sk);
        const bool got = !(j > kb.hi(i, c.sk) || j < kb.lo(i));
        if (want != got)
          return "i=" + std::to_string(i) + " j=" + std::to_string(j) +
                 (want ? " visible but masked" : " hidden but not masked");
      }
    return "";
  });
  INFO(failure);
  CHECK(failure.empty());
}

TEST_CASE("lane_visible_bits: bit k says whether the lane's k-th key is visible", "[block_range]") {
  // A lane's keys of a row: first + 8 * (k / 2) + k % 2 for k < 2 * NT (16, 32 and 44 bits: the
  // 64-, 128- and 176-key blocks), from every column offset and block position, so the run of
  // bits starts and ends inside and outside the lane's keys.
  auto check_nt = [](auto nt) -> std::string {
    constexpr int NT = decltype(nt)::value;
    return for_each_case([](const Case& c) -> std::string {
      if (c.num_splits != 1 || c.block_n != 2 || c.group != 1 || c.block_m != 4) return "";
      const FwdParams p = params_of(c);
      const KeyBounds kb(p, batch_info(p, 0));
      for (int i = 0; i < c.sq; ++i)
        for (int first = -8 * NT - 3; first <= c.sk + 3; ++first) {
          const auto bits = lane_visible_bits<NT>(kb, c.sk, i, first);
          for (int k = 0; k < 2 * NT; ++k) {
            const int j = first + 8 * (k / 2) + k % 2;
            const bool want = j >= kb.lo(i) && j <= kb.hi(i, c.sk);
            if (want != (((bits >> k) & 1) != 0))
              return "NT=" + std::to_string(NT) + " i=" + std::to_string(i) +
                     " first=" + std::to_string(first) + " k=" + std::to_string(k);
          }
        }
      return "";
    });
  };
  for (const std::string& failure :
       {check_nt(std::integral_constant<int, 8>{}), check_nt(std::integral_constant<int, 16>{}),
        check_nt(std::integral_constant<int, 22>{})}) {
    INFO(failure);
    CHECK(failure.empty());
  }
}

TEST_CASE("key_block_range covers every visible key and splits partition it", "[block_range]") {
  const std::string failure = for_each_case([](const Case& c) -> std::string {
    const FwdParams p = params_of(c);
    const RefProblem ref = problem_of(c);
    const BatchInfo b = batch_info(p, 0);
    const KeyBounds kb(p, b);
    const int blocks_in_sk = (c.sk + c.block_n - 1) / c.block_n;
    for (int m0 = 0; m0 < c.sq * c.group; m0 += c.block_m) {
      const std::string at = "m0=" + std::to_string(m0) + ": ";
      const QueryRows rows = query_rows(m0, c.block_m, c.group, c.sq);
      const KeyBlockRange all = key_block_range(kb, c.sk, rows.i_min, rows.i_max, c.block_n, 0, 1);
      if (all.nb_min < 0 || all.nb_max < all.nb_min || all.nb_max > blocks_in_sk)
        return at + "range [" + std::to_string(all.nb_min) + ", " + std::to_string(all.nb_max) +
               ") outside the " + std::to_string(blocks_in_sk) + " blocks of sk";
      for (int i = rows.i_min; i <= rows.i_max; ++i)
        for (int j = 0; j < c.sk; ++j)
          if (key_visible(ref, i, j, c.sq, c.sk) &&
              (j / c.block_n < all.nb_min || j / c.block_n >= all.nb_max))
            return at + "visible key j=" + std::to_string(j) + " of i=" + std::to_string(i) +
                   " is outside the range";
      int next = all.nb_min;  // splits: consecutive, in order, together the whole range
      for (int split = 0; split < c.num_splits; ++split) {
        const KeyBlockRange part = key_block_range(kb, c.sk, rows.i_min, rows.i_max, c.block_n,
                                                   split, c.num_splits);
        if (c.num_splits == 1 && (part.nb_min != all.nb_min || part.nb_max != all.nb_max))
          return at + "one split differs from the whole range";
        if (part.nb_max < part.nb_min || (part.nb_max > part.nb_min && part.nb_min != next))
          return at + "split " + std::to_string(split) + " is not the next piece";
        next = std::max(next, part.nb_max);
      }
      if (next != all.nb_max) return at + "the splits stop short of the range";
    }
    return "";
  });
  INFO(failure);
  CHECK(failure.empty());
}

TEST_CASE("block_needs_mask is false only where every key of the block is visible",
          "[block_range]") {
  const std::string failure = for_each_case([](const Case& c) -> std::string {
    if (c.num_splits != 1) return "";
    const FwdParams p = params_of(c);
    const RefProblem ref = problem_of(c);
    const BatchInfo b = batch_info(p, 0);
    const KeyBounds kb(p, b);
    for (int m0 = 0; m0 < c.sq * c.group; m0 += c.block_m) {
      const QueryRows rows = query_rows(m0, c.block_m, c.group, c.sq);
      const KeyBlockRange r = key_block_range(kb, c.sk, rows.i_min, rows.i_max, c.block_n, 0, 1);
      for (int nb = r.nb_min; nb < r.nb_max; ++nb) {
        const int n0 = nb * c.block_n;
        if (block_needs_mask(kb, c.sk, n0, c.block_n, rows.i_min, rows.i_max)) continue;
        for (int i = rows.i_min; i <= rows.i_max; ++i)
          for (int j = n0; j < n0 + c.block_n; ++j)
            if (j >= c.sk || !key_visible(ref, i, j, c.sq, c.sk))
              return "m0=" + std::to_string(m0) + " block " + std::to_string(nb) +
                     " runs unmasked but key " + std::to_string(j) + " is hidden from row " +
                     std::to_string(i);
      }
    }
    return "";
  });
  INFO(failure);
  CHECK(failure.empty());
}

TEST_CASE("batch_info: varlen, batched and seqused_k addressing", "[block_range]") {
  FwdParams p{};
  p.seqlen_q = 5;
  p.seqlen_k = 9;
  p.q_batch_stride = 1000;
  p.q_row_stride = 40;
  p.out_batch_stride = 2000;
  p.out_row_stride = 80;
  SECTION("batched") {
    const BatchInfo b = batch_info(p, 2);
    CHECK(b.bi == 2);
    CHECK(b.sq == 5);
    CHECK(b.sk == 9);
    CHECK(b.q_row0 == 2000);
    CHECK(b.o_row0 == 4000);
    CHECK(b.acc_row0 == 10);
  }
  SECTION("varlen q and k") {
    const int32_t cu_q[] = {0, 3, 7};
    const int32_t cu_k[] = {0, 5, 11};
    p.cu_seqlens_q = cu_q;
    p.cu_seqlens_k = cu_k;
    const BatchInfo b = batch_info(p, 1);
    CHECK(b.sq == 4);
    CHECK(b.sk == 6);
    CHECK(b.q_row0 == 3 * 40);
    CHECK(b.o_row0 == 3 * 80);
    CHECK(b.acc_row0 == 3);
  }
  SECTION("seqused_k wins over cu_seqlens_k and seqlen_k") {
    const int32_t cu_k[] = {0, 5, 11};
    const int32_t used[] = {2, 4};
    p.cu_seqlens_k = cu_k;
    p.seqused_k = used;
    CHECK(batch_info(p, 1).sk == 4);
  }
}
