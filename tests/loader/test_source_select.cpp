// The source-selection unit (loader/src/source_select.h) on its own: the per-(device, ver)
// decision and the per-kernel pick, over hand-made plans and function tables (no driver, no
// cache). test_decision.cpp covers the same rules end to end over the fake driver.
#include <catch2/catch.hpp>

#include <cstdint>

#include "source_select.h"  // loader/src

using namespace kernels;
using namespace kernels::loader;

namespace {

Function fn(std::uintptr_t id) { return reinterpret_cast<Function>(id); }

constexpr const char* kFwd = "kernels_attn_fwd_hd128_bf16";
constexpr const char* kCombine = "kernels_attn_combine_hd128";
constexpr const char* kTma = "kernels_attn_fwd_sm90_hd128_bf16";

// A plan of the given kernels (the pick reads only the names and the count).
attention::LaunchPlan plan_of(std::initializer_list<const char*> names) {
  attention::LaunchPlan p;
  for (const char* n : names) p.launches[p.count++].kernel_name = n;
  return p;
}

DeviceSource found(const std::string& repo = "kernels-community/attention-fa3") {
  DeviceSource s;
  s.repo_id = repo;
  s.sha = "0123456789abcdef0123456789abcdef01234567";
  s.variant = "cubin-cu130-sm90a";
  return s;
}

DeviceSource not_found(FallbackReason reason, const std::string& what) {
  DeviceSource s;
  s.reason = reason;
  s.why = make_error(ErrorCode::lockfile_missing, what, "/cache/kernels.lock");
  return s;
}

const FunctionMap kBuiltin = {{kFwd, fn(0x10)}, {kCombine, fn(0x11)}};

}  // namespace

TEST_CASE("source selection: a found bundle serves the family, said once at info level",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(1, 3, found(), {{kFwd, fn(0x20)}});
  CHECK(s.source().source == Source::bundle);
  CHECK(s.source().reason == FallbackReason::none);
  CHECK(s.level() == LogLevel::info);
  CHECK(s.message() ==
        "cuda:1 (ver=3, fa3): using kernels-community/attention-fa3@"
        "0123456789abcdef0123456789abcdef01234567 variant cubin-cu130-sm90a");
  CHECK(s.usable("flash_attn_varlen_func").ok());
  CHECK(s.offers_sm90());
}

TEST_CASE(
    "source selection: fa3 without its bundle falls back to the built-in kernels with a "
    "warning naming the reason",
    "[loader][source_select]") {
  const auto s = SourceSelection::decide(
      0, 3, not_found(FallbackReason::lockfile_missing, "no kernels.lock"), {{kFwd, fn(0x20)}});
  CHECK(s.source().source == Source::builtin);
  CHECK(s.level() == LogLevel::warning);
  CHECK(s.message().find("cuda:0 (ver=3, fa3): using the built-in attention kernels "
                         "(lockfile_missing): ") == 0);
  CHECK(s.message().find("no kernels.lock") != std::string::npos);
  CHECK(s.usable("flash_attn_varlen_func").ok());
  CHECK_FALSE(s.offers_sm90());
  // Functions handed over with a failed search are never used.
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd}), nullptr, kBuiltin, "e", notes);
  REQUIRE(p.ok());
  CHECK(p->functions[0] == fn(0x10));
  CHECK(notes.empty());
}

TEST_CASE("source selection: fa4 without its bundle is unavailable, and calls say how to fix it",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(
      2, 4, not_found(FallbackReason::repo_not_locked, "the lock has no attention-fa4"), {});
  CHECK(s.source().source == Source::unavailable);
  CHECK(s.level() == LogLevel::error);
  CHECK(s.message().find("cuda:2 (ver=4, fa4): no kernels (repo_not_locked): ") == 0);
  const auto r = s.usable("flash_attn_with_kvcache");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::no_variant);
  CHECK(r.error().object == "flash_attn_with_kvcache: ver");
  CHECK(r.error().what.find("ver=4 (fa4) has no kernels for cuda:2: repo_not_locked") == 0);
  CHECK(r.error().hint.find("KERNELS_FA4_REPO") != std::string::npos);
  // Asked for functions all the same, it picks none (never the fa3 built-ins).
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd}), nullptr, kBuiltin, "flash_attn_with_kvcache", notes);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == ErrorCode::no_variant);
}

TEST_CASE("source selection: the built-in source picks the built-in function per launch",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(
      0, 3, not_found(FallbackReason::forced_builtin, "KERNELS_USE_BUILTIN is set"), {});
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd, kCombine}), nullptr, kBuiltin, "e", notes);
  REQUIRE(p.ok());
  CHECK_FALSE(p->sm90);
  CHECK(p->functions[0] == fn(0x10));
  CHECK(p->functions[1] == fn(0x11));
  CHECK(notes.empty());
}

TEST_CASE("source selection: the bundle's TMA kernel serves a call its sm90 plan covers",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(0, 3, found(), {{kFwd, fn(0x20)}, {kTma, fn(0x21)}});
  const Result<attention::LaunchPlan> tma = plan_of({kTma});
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd}), &tma, kBuiltin, "e", notes);
  REQUIRE(p.ok());
  CHECK(p->sm90);
  CHECK(p->functions[0] == fn(0x21));
  CHECK(notes.empty());
}

TEST_CASE(
    "source selection: a call the TMA kernels do not cover runs the bundle's portable "
    "kernel, with a note saying why",
    "[loader][source_select]") {
  const auto s = SourceSelection::decide(3, 3, found(), {{kFwd, fn(0x20)}, {kTma, fn(0x21)}});
  const Result<attention::LaunchPlan> tma = make_error(ErrorCode::no_variant,
                                                       "paged K/V (page_table)");
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd}), &tma, kBuiltin, "e", notes);
  REQUIRE(p.ok());
  CHECK_FALSE(p->sm90);
  CHECK(p->functions[0] == fn(0x20));
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] ==
        "cuda:3: the sm90 TMA kernels do not cover paged K/V (page_table); such "
        "calls use the bundle's portable kernels");
}

TEST_CASE("source selection: an sm90 plan whose kernel the bundle lacks falls to the portable plan",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(0, 3, found(), {{kFwd, fn(0x20)}});
  const Result<attention::LaunchPlan> tma = plan_of({kTma});
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd}), &tma, kBuiltin, "e", notes);
  REQUIRE(p.ok());
  CHECK_FALSE(p->sm90);
  CHECK(p->functions[0] == fn(0x20));
  CHECK(notes.empty());
}

TEST_CASE("source selection: per kernel, what an fa3 bundle lacks runs built in, noted",
          "[loader][source_select]") {
  // The bundle carries the forward kernel but not the combine kernel of a split call.
  const auto s = SourceSelection::decide(0, 3, found(), {{kFwd, fn(0x20)}});
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd, kCombine}), nullptr, kBuiltin, "e", notes);
  REQUIRE(p.ok());
  CHECK(p->functions[0] == fn(0x20));
  CHECK(p->functions[1] == fn(0x11));
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] == std::string("cuda:0: bundle kernels-community/attention-fa3@"
                                "0123456789abcdef0123456789abcdef01234567 has no kernel ") +
                        kCombine + "; such calls use the built-in kernels");
}

TEST_CASE("source selection: an fa4 bundle lacking a kernel is an error, never the fa3 built-ins",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(0, 4, found("kernels-community/attention-fa4"),
                                         {{kFwd, fn(0x20)}});
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({kFwd, kCombine}), nullptr, kBuiltin, "flash_attn_varlen_func", notes);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == ErrorCode::no_variant);
  CHECK(p.error().what ==
        std::string("the FA4 bundle has no kernel ") + kCombine + " for this shape");
  CHECK(p.error().object == "flash_attn_varlen_func");
}

TEST_CASE("source selection: a plan naming a kernel the built-in image lacks is an internal error",
          "[loader][source_select]") {
  const auto s = SourceSelection::decide(
      0, 3, not_found(FallbackReason::lockfile_missing, "no kernels.lock"), {});
  std::vector<std::string> notes;
  auto p = s.pick(plan_of({"kernels_attn_fwd_hd999_bf16"}), nullptr, kBuiltin, "e", notes);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == ErrorCode::internal);
  CHECK(p.error().what.find("kernels_attn_fwd_hd999_bf16") != std::string::npos);
}
