// Hostile and concurrent use of the on-disk contract: random bytes into every parser, deep
// TOML nesting, numeric edge cases, and many processes publishing the same files at once.
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/pyproject.h"
#include "kernels/lockfile/repo_tree.h"
#include "support.h"
#include "vectors.h"

using namespace kernels;

namespace {

const std::string kOid = "dc08351d4dc0732d9c8af04070ced089b201ce2f";

// Runs `n` children that each call `body(i)` and exit with its status; returns the statuses.
template <class F>
std::vector<int> in_children(int n, F&& body) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body(i));
    pids.push_back(pid);
  }
  std::vector<int> codes;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return codes;
}

}  // namespace

TEST_CASE("random mutations of a tree listing and a pyproject never escape as exceptions",
          "[robustness]") {
  const std::string tree = kernels::test::hash_vectors()["hub_tree_listing_recursive"].dump();
  const std::string toml = kernels::test::slurp(
      kernels::test::hf_fixtures() /
      "kernels@8ac69fc5/kernels/tests/kernel_locking/pyproject.toml");
  REQUIRE(parse_tree_listing(tree, "t").ok());
  REQUIRE(parse_pyproject(toml).ok());
  std::mt19937 rng(777);
  for (int i = 0; i < 3000; ++i) {
    std::string t = tree, p = toml;
    for (int k = 0; k < 3; ++k) {
      t[rng() % t.size()] = static_cast<char>(rng() & 0xFF);
      p[rng() % p.size()] = static_cast<char>(rng() & 0xFF);
    }
    auto rt = parse_tree_listing(t, "t");
    auto rc = parse_tree_cache(t, "t");
    auto rp = parse_pyproject(p);
    if (!rt.ok()) REQUIRE(rt.error().code == ErrorCode::lockfile_invalid);
    REQUIRE_FALSE(rc.ok());  // a listing is never a tree cache
    if (!rp.ok()) REQUIRE(rp.error().code != ErrorCode::internal);
  }
}

TEST_CASE("deeply nested TOML is an error, not a stack overflow", "[robustness]") {
  const std::string deep = "[tool.kernels.dependencies]\n\"a/b\" = 1\nx = " +
                           std::string(100000, '[') + std::string(100000, ']') + "\n";
  auto r = parse_pyproject(deep, "pyproject.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::lockfile_invalid);
  CHECK(r.error().object.rfind("pyproject.toml:3:", 0) == 0);
}

TEST_CASE("tree sizes: -1, 1e3, 1.5, \"123\", 2^64 and 1e400 are all rejected", "[robustness]") {
  for (const char* size :
       {"-1", "1e3", "1.5", "\"123\"", "18446744073709551616", "1e400", "null", "true"}) {
    INFO("size " << size);
    const std::string json = std::string(R"([{"type":"file","oid":")") + kOid + R"(","size":)" +
                             size + R"(,"path":"a"}])";
    auto r = parse_tree_listing(json, "t");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.find("non-negative integer") != std::string::npos);
  }
  const std::string max = std::string(R"([{"type":"file","oid":")") + kOid +
                          R"(","size":18446744073709551615,"path":"a"}])";
  auto ok = parse_tree_listing(max, "t");
  REQUIRE(ok.ok());
  CHECK((*ok)[0].size == 18446744073709551615ull);
}

TEST_CASE("eight processes rewriting one lockfile leave one complete version and no temp",
          "[robustness]") {
  kernels::test::ScratchDir dir;
  const auto p = dir / "kernels.lock";
  auto codes = in_children(8, [&](int i) {
    // Different sizes, so a torn write would be visible as a mix of two versions.
    const std::string body(1000 * (i + 1), static_cast<char>('a' + i));
    for (int k = 0; k < 20; ++k) {
      if (!write_atomic(p, body).ok()) return 1;
    }
    return 0;
  });
  for (int c : codes) CHECK(c == 0);
  const std::string final_bytes = kernels::test::slurp(p);
  REQUIRE_FALSE(final_bytes.empty());
  CHECK(final_bytes.size() % 1000 == 0);
  CHECK(final_bytes == std::string(final_bytes.size(), final_bytes[0]));
  CHECK(final_bytes.size() == 1000u * static_cast<unsigned>(final_bytes[0] - 'a' + 1));
  CHECK(kernels::test::count_files_containing(dir.path(), ".incomplete") == 0);
}

TEST_CASE("eight processes linking the same snapshot files all succeed", "[robustness]") {
  kernels::test::ScratchDir dir;
  const std::string repo = "org/name", commit(40, 'c');
  const std::string etag = "95d09f2b10159347eece71399a7e2e907ea3df4f";
  for (bool copy_mode : {false, true}) {
    INFO("copy mode " << copy_mode);
    const auto root = dir / (copy_mode ? "copy" : "link");
    EnvLookup env = [copy_mode](std::string_view n) -> std::optional<std::string> {
      if (copy_mode && n == "HF_HUB_DISABLE_SYMLINKS") return "1";
      return std::nullopt;
    };
    CacheLayout cache(root, env);
    kernels::test::spit(cache.blob_path(repo, etag), "hello world");
    auto codes = in_children(8, [&](int) {
      for (const char* path : {"a.txt", "build/torch-cuda/x.py", "build/torch-cuda/y/z.py"}) {
        if (!cache.link_snapshot_file(repo, commit, path, etag).ok()) return 1;
      }
      return 0;
    });
    for (int c : codes) CHECK(c == 0);
    for (const char* path : {"a.txt", "build/torch-cuda/x.py", "build/torch-cuda/y/z.py"}) {
      CHECK(kernels::test::slurp(cache.snapshot_file(repo, commit, path)) == "hello world");
      CHECK(kernels::test::count_files_containing(
                cache.snapshot_file(repo, commit, path).parent_path(), ".incomplete") == 0);
    }
  }
}

TEST_CASE("a lockfile rewritten while it is read is always seen whole", "[robustness]") {
  kernels::test::ScratchDir dir;
  const auto p = dir / "kernels.lock";
  const auto lock_a = read_lockfile(kernels::test::hf_fixtures() /
                                    "kernels@8ac69fc5/kernels/tests/kernel_locking/kernels.lock");
  const auto lock_b = read_lockfile(kernels::test::hf_fixtures() /
                                    "kernels@8ac69fc5/kernels/tests/layer_locking/kernels.lock");
  REQUIRE(lock_a.ok());
  REQUIRE(lock_b.ok());
  REQUIRE(write_lockfile(p, *lock_a).ok());
  const pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    for (int i = 0; i < 300; ++i) {
      if (!write_lockfile(p, i % 2 ? *lock_a : *lock_b).ok()) ::_exit(1);
    }
    ::_exit(0);
  }
  int reads = 0, bad = 0;
  for (int i = 0; i < 300; ++i) {
    auto r = read_lockfile(p);
    ++reads;
    if (!r.ok() || (r->kernels != lock_a->kernels && r->kernels != lock_b->kernels)) ++bad;
  }
  int status = 0;
  REQUIRE(::waitpid(writer, &status, 0) == writer);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(reads == 300);
  CHECK(bad == 0);
}

TEST_CASE("a valid but non-canonical lock parses and re-serializes canonically", "[robustness]") {
  // Unsorted variant keys, other whitespace, hash_type first: what a hand edit produces.
  const std::string sha = "d649efb56fb249ac8f7a57fa1866728ad0c60e52";
  const std::string hash = "sha256-" + std::string(64, 'a');
  const std::string messy =
      "[{\"variants\":{\"torch-xpu\":{\"hash_type\":\"git_lfs_concat\",\"hash\":\"" + hash +
      "\"},\"torch-cpu\":{\"hash\":\"" + hash + "\"}},\"sha\":\"" + sha +
      "\",\"repo_id\":\"org/name\"}]\n";
  auto lock = parse_lockfile(messy);
  REQUIRE(lock.ok());
  const std::string canonical = serialize_lockfile(*lock);
  CHECK(canonical != messy);
  CHECK(canonical.find("torch-cpu") < canonical.find("torch-xpu"));
  auto again = parse_lockfile(canonical);
  REQUIRE(again.ok());
  CHECK(serialize_lockfile(*again) == canonical);  // a fixed point: `--locked` can compare bytes
}
