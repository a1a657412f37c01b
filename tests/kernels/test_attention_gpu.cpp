// The built-in attention kernels against the CPU reference, on the GPU. Fresh random inputs
// every run; outputs poisoned with NaN before each launch.
//
// Pass rule (FA3, hopper/test_flash_attn.py): max|out - ref_fp64| <= rtol * max|ref_lowp -
// ref_fp64|
// + atol, with rtol = 2 (3 with softcap) and atol = 2 * max|(ref + 0.3 - 0.3) - ref| evaluated in
// the dtype (the rounding noise of the dtype near 0.3). LSE: relative error below 1e-3 of
// (1 + |lse|), and -inf exactly where the reference has -inf.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "attention_case.h"
#include "gpu_harness.h"
#include "support/skip.h"

using kernels::attention::DType;
using kernels::test::AttentionCase;
using kernels::test::CaseResult;
using kernels::test::KvLayout;

namespace {

constexpr double kLseTol = 1e-3;

std::mt19937& rng() {
  static std::mt19937 gen(std::random_device{}());
  return gen;
}

#define KERNELS_REQUIRE_GPU()                                         \
  do {                                                                \
    if (!kernels::test::gpu().available)                              \
      KERNELS_SKIP("no CUDA device: " + kernels::test::gpu().reason); \
  } while (0)

// The sm90a bundle's TMA kernels, loaded in place of the built-in image, on an sm_90 GPU.
#define KERNELS_REQUIRE_SM90_BUNDLE()                                                        \
  do {                                                                                       \
    KERNELS_REQUIRE_GPU();                                                                   \
    if (!kernels::test::bundle_mode())                                                       \
      KERNELS_SKIP("KERNELS_ATTENTION_IMAGE is not set: only the built-in image is loaded"); \
    const auto& facts_ = kernels::test::gpu().facts;                                         \
    if (facts_.cc_major != 9 || facts_.cc_minor != 0)                                        \
      KERNELS_SKIP("the TMA kernels need an sm_90 GPU");                                     \
  } while (0)

CaseResult check(const AttentionCase& c) {
  INFO(c.describe());
  CaseResult r = kernels::test::run_case(c, rng());
  INFO("splits=" << r.splits_used << " err=" << r.err << " err_low=" << r.err_low
                 << " atol=" << r.atol << " unwritten=" << r.unwritten << " lse_err=" << r.lse_err
                 << " lse_inf_mismatch=" << r.lse_mismatch_inf);
  REQUIRE(r.error.empty());
  const double rtol = c.softcap > 0 ? 3.0 : 2.0;
  CHECK(r.unwritten == 0);
  CHECK(r.err <= rtol * r.err_low + r.atol);
  if (c.lse) {
    CHECK(r.lse_mismatch_inf == 0);
    CHECK(r.lse_err <= kLseTol);
  }
  return r;
}

// check(), and the call must have run on a TMA kernel of the bundle.
void check_on_tma(const AttentionCase& c) {
  const CaseResult r = check(c);
  INFO(c.describe());
  CHECK(r.kernel.find("_sm90_") != std::string::npos);
}

struct HeadDims {
  int d, dv;
};
constexpr HeadDims kHeadDims[] = {{64, 64},   {96, 96},   {128, 128},
                                  {192, 192}, {192, 128}, {256, 256}};

// A case of 4 query heads over 2 KV heads (GQA) in dtype t and head dims hd.
AttentionCase gqa_case(DType t, HeadDims hd) {
  AttentionCase c;
  c.dtype = t;
  c.d = hd.d;
  c.dv = hd.dv;
  c.h = 4;
  c.h_k = 2;
  return c;
}

}  // namespace

TEST_CASE("varlen: every head dim and dtype, ragged batch with an empty sequence", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (DType t : {DType::bf16, DType::fp16})
    for (HeadDims hd : kHeadDims)
      for (bool causal : {false, true}) {
        AttentionCase c = gqa_case(t, hd);
        c.sq = {113, 0, 257, 1};
        c.sk = {203, 0, 257, 77};
        c.causal = causal;
        check(c);
      }
}

TEST_CASE("varlen: head dims below the template (d=80, d=40) and MQA", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (int d : {40, 80, 136}) {
    AttentionCase c;
    c.d = c.dv = d;
    c.h = 6;
    c.h_k = 1;
    c.sq = {64, 130};
    c.sk = {200, 129};
    c.causal = d == 80;
    check(c);
  }
}

TEST_CASE("seqlen_q > seqlen_k: causal rows that see nothing give 0 and -inf", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (bool varlen : {true, false}) {
    AttentionCase c;
    c.varlen_q = varlen;
    c.kv = varlen ? KvLayout::varlen : KvLayout::cache;
    c.sq = {239, 239};
    c.sk = {1, 150};
    c.causal = true;
    check(c);
    c.causal = false;
    c.sq = {799, 799};
    c.sk = {3, 0};
    check(c);
  }
}

TEST_CASE("paged KV: page sizes 1, 16, 64, 256 with shuffled page tables", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (int page : {1, 16, 64, 256})
    for (bool causal : {false, true}) {
      AttentionCase c;
      c.kv = KvLayout::paged;
      c.page_size = page;
      c.h = 8;
      c.h_k = 2;
      c.sq = {1, 7, 0, 33};
      c.sk = {339, 64, 17, 1000};
      c.causal = causal;
      c.num_splits = 0;
      check(c);
    }
}

TEST_CASE("kvcache: batched q over a contiguous cache with cache_seqlens", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (HeadDims hd : kHeadDims) {
    AttentionCase c;
    c.d = hd.d;
    c.dv = hd.dv;
    c.varlen_q = false;
    c.kv = KvLayout::cache;
    c.cache_extra = 37;
    c.h = 6;
    c.h_k = 3;
    c.sq = {3, 3, 3};
    c.sk = {799, 0, 128};
    c.causal = true;
    c.num_splits = 0;
    check(c);
  }
}

TEST_CASE("each feature alone: window, softcap, sinks, lse off, strides", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  AttentionCase base;
  base.sq = {200, 64};
  base.sk = {300, 64};
  base.h = 4;
  base.h_k = 4;
  {
    AttentionCase c = base;
    c.window_left = 37;
    c.window_right = 5;
    check(c);
  }
  {
    AttentionCase c = base;
    c.window_left = 64;
    c.causal = true;
    check(c);
  }
  {
    AttentionCase c = base;
    c.window_left = 0;
    c.window_right = 0;  // diagonal only
    check(c);
  }
  {
    AttentionCase c = base;
    c.softcap = 15.0f;
    check(c);
  }
  {
    AttentionCase c = base;
    c.sinks = true;
    check(c);
  }
  {
    AttentionCase c = base;
    c.lse = false;
    check(c);
  }
  {
    AttentionCase c = base;
    c.padded_strides = true;
    c.kv = KvLayout::paged;
    c.page_size = 16;
    check(c);
  }
}

TEST_CASE("features combined, with split-KV (num_splits 0, 1, 3)", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (DType t : {DType::bf16, DType::fp16})
    for (int splits : {0, 1, 3})
      for (KvLayout kv : {KvLayout::paged, KvLayout::varlen}) {
        AttentionCase c;
        c.dtype = t;
        c.kv = kv;
        c.page_size = 64;
        c.h = 8;
        c.h_k = 2;
        c.sq = {1, 5, 130};
        c.sk = {2000, 700, 900};
        c.causal = true;
        c.window_left = 300;
        c.softcap = 30.0f;
        c.sinks = true;
        c.num_splits = splits;
        check(c);
      }
}

TEST_CASE("split-KV decode over long contexts, every head dim", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (HeadDims hd : kHeadDims) {
    AttentionCase c;
    c.d = hd.d;
    c.dv = hd.dv;
    c.kv = KvLayout::paged;
    c.page_size = 16;
    c.h = 8;
    c.h_k = 1;
    c.sq = {1, 1};
    c.sk = {4000, 1500};
    c.num_splits = 0;
    c.sinks = hd.d == 64;
    const CaseResult r = check(c);
    CHECK(r.splits_used > 1);  // the heuristic splits a 2-sequence decode
  }
}

TEST_CASE("a call captured in a CUDA graph replays correctly (split-KV + combine)", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  for (int splits : {0, 1}) {
    AttentionCase c;
    c.kv = KvLayout::paged;
    c.page_size = 16;
    c.h = 8;
    c.h_k = 2;
    c.sq = {1, 3};
    c.sk = {3000, 1200};
    c.causal = true;
    c.sinks = true;
    c.num_splits = splits;
    c.graph = true;
    const CaseResult r = check(c);
    if (splits == 0) CHECK(r.splits_used > 1);  // the combine launch is in the graph too
  }
}

TEST_CASE("num_splits = 1 is bitwise deterministic", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  AttentionCase c;
  c.kv = KvLayout::paged;
  c.page_size = 16;
  c.sq = {17, 1};
  c.sk = {1500, 900};
  c.causal = true;
  c.num_splits = 1;
  std::mt19937 a(1234), b(1234);
  const CaseResult r1 = kernels::test::run_case(c, a);
  const CaseResult r2 = kernels::test::run_case(c, b);
  REQUIRE(r1.error.empty());
  REQUIRE(r2.error.empty());
  CHECK(r1.raw_out == r2.raw_out);
}

// Small enough for compute-sanitizer (memcheck, racecheck): every code path once, on tiny
// shapes: varlen and batched q; varlen, cache and paged K/V (page 1 and 16); masks; sinks;
// split-KV with the combine kernel.
TEST_CASE("sanitizer subset", "[gpu][sanitize]") {
  KERNELS_REQUIRE_GPU();
  for (HeadDims hd : {HeadDims{64, 64}, HeadDims{96, 96}, HeadDims{192, 128}}) {
    AttentionCase c;
    c.d = hd.d;
    c.dv = hd.dv;
    c.h = 4;
    c.h_k = 2;
    c.sq = {70, 0, 3};
    c.sk = {130, 5, 0};
    c.causal = true;
    c.window_left = 40;
    c.sinks = true;
    check(c);
    c.kv = KvLayout::paged;
    c.page_size = hd.d == 64 ? 1 : 16;
    c.num_splits = 3;
    c.sq = {1, 2, 1};
    c.sk = {300, 17, 0};
    check(c);
    c.varlen_q = false;
    c.kv = KvLayout::cache;
    c.cache_extra = 3;
    c.sq = {5, 5};
    c.sk = {100, 1};
    c.num_splits = 0;
    c.softcap = 20.0f;
    check(c);
  }
}

TEST_CASE("sm90a bundle: the TMA kernels serve prefill, every head dim, dtype and feature",
          "[gpu]") {
  KERNELS_REQUIRE_SM90_BUNDLE();
  for (DType t : {DType::bf16, DType::fp16})
    for (int d : {64, 96, 128, 192, 256})
      for (bool causal : {false, true}) {
        AttentionCase c;
        c.dtype = t;
        c.d = c.dv = d;
        c.h = 6;
        c.h_k = 2;
        c.sq = {300, 0, 700, 1000, 64};
        c.sk = {300, 5, 129, 1000, 0};  // seqlen_q > seqlen_k and an empty key set too
        c.causal = causal;
        const CaseResult r = check(c);
        INFO(c.describe());
        // d = 64, 192 and 256 masked with at most 1024 query rows: their smaller tiles.
        const char* want = !causal    ? "_sm90_"
                           : d == 64  ? "_sm90_hd64_m128n128_"
                           : d == 192 ? "_sm90_hd192_m128n64_"
                           : d == 256 ? "_sm90_hd256_m128n64_"
                                      : "_sm90_";
        CHECK(r.kernel.find(want) != std::string::npos);
      }
  for (bool causal : {false, true}) {  // q/k 192 with v 128 (MLA-style prefill)
    AttentionCase c;
    c.d = 192;
    c.dv = 128;
    c.h = 4;
    c.h_k = 2;
    c.sq = {300, 0, 700, 64};
    c.sk = {300, 5, 1000, 0};
    c.causal = causal;
    const CaseResult r = check(c);
    INFO(c.describe());
    CHECK(r.kernel.find("_sm90_hd192x128_") != std::string::npos);
    c.kv = KvLayout::paged;  // and over a paged cache
    c.page_size = 64;
    c.sk = {333, 5, 1000, 64};
    check_on_tma(c);
  }
  // More than 4096 keys (one block per tile): d128's 176-key tile, unmasked with softcap and
  // causal with sinks.
  for (bool causal : {false, true}) {
    AttentionCase c;
    c.d = c.dv = 128;
    c.h = 4;
    c.h_k = 2;
    c.sq = {1100, 64};
    c.sk = {5000, 4400};
    c.causal = causal;
    c.softcap = causal ? 0.0f : 15.0f;
    c.sinks = causal;
    const CaseResult r = check(c);
    INFO(c.describe());
    CHECK(r.kernel.find("_sm90_hd128_m128n176_") != std::string::npos);
  }
  AttentionCase base;
  base.d = base.dv = 128;
  base.h = 8;
  base.h_k = 1;  // MQA
  base.sq = {513, 200};
  base.sk = {513, 900};
  AttentionCase c = base;
  c.window_left = 100;
  c.window_right = 20;
  check_on_tma(c);
  c = base;
  c.causal = true;
  c.window_left = 64;
  check_on_tma(c);
  c = base;
  c.softcap = 15.0f;
  check_on_tma(c);
  c = base;  // the 128-row d64 tile under a sliding window, GQA
  c.d = c.dv = 64;
  c.h_k = 2;
  c.window_left = 100;
  check_on_tma(c);
  c = base;
  c.sinks = true;
  c.causal = true;
  check_on_tma(c);
  c = base;
  c.lse = false;
  c.padded_strides = true;
  check_on_tma(c);
  // Batched q over a cache every batch sees whole (no seqused_k).
  c = base;
  c.varlen_q = false;
  c.kv = KvLayout::cache;
  c.seqused = false;
  c.sq = {300, 300, 300};
  c.sk = {777, 777, 777};
  c.causal = true;
  check_on_tma(c);
}

TEST_CASE("sm90a bundle: rows whose max keeps growing across key blocks (lazy offsets)", "[gpu]") {
  KERNELS_REQUIRE_SM90_BUNDLE();
  // Scores 12x the usual scale: each row's max grows past the kernels' 2^8 threshold after its
  // first key block, so the offsets move in some blocks and not in others: d >= 192 rescale
  // lazily, d <= 128 check their offsets through the row sums (kCheckedOffset) and take the
  // row max only when those exceed the bound. Unmasked and causal (with sinks) on both tiles of
  // each head dim (more than 4096 keys: d128's 128x176).
  struct Shape {
    bool causal;
    std::vector<int> sq, sk;
  };
  const Shape shapes[] = {{false, {1100, 300}, {1500, 700}},
                          {true, {1000, 300}, {1500, 700}},  // masked, at most 1024 rows
                          {true, {1100, 300}, {1500, 700}},  // masked, the larger tile
                          {false, {200}, {4500}}};           // d128's 128x176 only
  for (DType t : {DType::bf16, DType::fp16})
    for (HeadDims hd : kHeadDims)
      for (const Shape& sh : shapes) {
        if (sh.sk[0] > 4096 && hd.d != 128) continue;  // the same tiles as above, slower reference
        AttentionCase c = gqa_case(t, hd);
        c.sq = sh.sq;
        c.sk = sh.sk;
        c.causal = sh.causal;
        c.sinks = sh.causal;
        c.scale_mul = 12.0f;
        check_on_tma(c);
      }
}

TEST_CASE("sm90a bundle: chunked prefill over a paged cache, and a cache with seqused_k", "[gpu]") {
  KERNELS_REQUIRE_SM90_BUNDLE();
  // Unused cache rows and the tails of last pages hold NaN (the harness poisons them), page
  // table entries past a sequence's pages point outside the pool: the kernel must read neither
  // into the output.
  // Pages of 1, 8 and 24 rows: not whole TMA copies; the producer gathers them with cp.async.
  for (int page : {1, 8, 16, 24, 64, 128, 256})
    for (int d : {64, 96, 128, 192, 256})
      for (bool causal : {false, true}) {
        AttentionCase c;
        c.dtype = d == 192 ? DType::fp16 : DType::bf16;
        c.d = c.dv = d;
        c.h = 4;
        c.h_k = 2;
        c.kv = KvLayout::paged;
        c.page_size = page;
        c.sq = {300, 0, 130, 64};
        c.sk = {1000, 5, 700, 64};
        c.causal = causal;
        c.window_left = causal && page == 64 ? 200 : -1;
        // TMA pages under 64 rows at d <= 128 and gathered pages below d = 256: the built-in
        // kernels, faster there (launch_plan.cpp).
        const bool gathered = page % 16 != 0;
        if (gathered ? d == 256 : page >= 64 || d >= 192) {
          check_on_tma(c);
        } else {
          const CaseResult r = check(c);
          INFO(c.describe());
          CHECK(r.kernel.find("_sm90_") == std::string::npos);
        }
      }
  for (int d : {64, 96, 128, 192, 256}) {
    AttentionCase c;
    c.d = c.dv = d;
    c.h = 6;
    c.h_k = 3;
    c.varlen_q = false;
    c.kv = KvLayout::cache;
    c.cache_extra = 37;
    c.sq = {300, 300, 300};
    c.sk = {777, 500, 300};
    for (bool causal : {false, true}) {
      c.causal = causal;
      check_on_tma(c);
    }
  }
}

TEST_CASE("sm90a bundle: paged and seqused_k calls under the sanitizers", "[gpu][sanitize]") {
  KERNELS_REQUIRE_SM90_BUNDLE();
  AttentionCase c;
  c.h = 2;
  c.h_k = 1;
  c.kv = KvLayout::paged;
  c.page_size = 64;
  c.sq = {130, 64};
  c.sk = {333, 70};
  c.causal = true;
  CHECK(check(c).kernel.find("_sm90_") != std::string::npos);
  c.d = c.dv = 256;
  c.page_size = 1;  // gathered by the producer warpgroup's cp.async
  CHECK(check(c).kernel.find("_sm90_") != std::string::npos);
  c.d = c.dv = 64;
  c.varlen_q = false;
  c.kv = KvLayout::cache;
  c.cache_extra = 9;
  c.sq = {100, 100};
  c.sk = {250, 130};
  CHECK(check(c).kernel.find("_sm90_") != std::string::npos);
}

TEST_CASE("sm90a bundle: a TMA kernel is bitwise deterministic", "[gpu]") {
  KERNELS_REQUIRE_GPU();
  if (!kernels::test::bundle_mode())
    KERNELS_SKIP("KERNELS_ATTENTION_IMAGE is not set: only the built-in image is loaded");
  AttentionCase c;
  c.sq = {1000, 333};
  c.sk = {1000, 999};
  c.causal = true;
  std::mt19937 a(7), b(7);
  const CaseResult r1 = kernels::test::run_case(c, a);
  const CaseResult r2 = kernels::test::run_case(c, b);
  REQUIRE(r1.error.empty());
  REQUIRE(r2.error.empty());
  CHECK(r1.kernel.find("_sm90_") != std::string::npos);
  CHECK(r1.raw_out == r2.raw_out);
}
