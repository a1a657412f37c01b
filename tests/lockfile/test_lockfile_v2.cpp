// kernels.lock format 2 (kernels 0.17.2) and the hashes sidecar that keeps our variant hashes
// beside it. Expected bytes are 0.17.2's observed output (hf-kernels-017.md §1.1, §1.3).
#include <catch2/catch.hpp>

#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/lockfile.h"
#include "support.h"

using namespace kernels;
using kernels::test::slurp;
using kernels::test::spit;

namespace {

const std::string kA = "824772b00be3a9901b7a30aa27da3fa1acbc0aef";
const std::string kB = "2a43ff220bdb1b8b63043885934faf26057da2db";
const std::string kHash = "sha256-d39147b57a44ceda745fb101e028e87030c33b8375a049b75ab9ec5dd606fa64";

KernelLock dep(std::string repo, std::optional<int> version, std::optional<std::string> revision,
               std::string commit) {
  KernelLock k;
  k.repo_id = std::move(repo);
  k.version = version;
  k.revision = std::move(revision);
  k.sha = std::move(commit);
  return k;
}

std::string error_of(std::string_view text) {
  auto lock = parse_lockfile(text);
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().code == ErrorCode::lockfile_invalid);
  return lock.error().message();
}

}  // namespace

TEST_CASE("format 2 is written as kernels 0.17.2 writes it: sorted, serde pretty, no newline",
          "[lockfile][v2]") {
  Lockfile lock;
  lock.form = Lockfile::Form::dependency_list;
  lock.kernels = {dep("acme/relu", 1, {}, kB),
                  dep("acme/flash-attn3", 2, {}, kA)};  // pyproject order
  const std::string expected = R"([
  {
    "dependency": {
      "repo-id": "acme/flash-attn3",
      "version": 2
    },
    "lock": {
      "commit": "824772b00be3a9901b7a30aa27da3fa1acbc0aef"
    }
  },
  {
    "dependency": {
      "repo-id": "acme/relu",
      "version": 1
    },
    "lock": {
      "commit": "2a43ff220bdb1b8b63043885934faf26057da2db"
    }
  }
])";
  CHECK(serialize_lockfile(lock) == expected);
  auto back = parse_lockfile(expected);
  REQUIRE(back.ok());
  CHECK(back->form == Lockfile::Form::dependency_list);
  CHECK(serialize_lockfile(*back) == expected);
  Lockfile empty;
  empty.form = Lockfile::Form::dependency_list;
  CHECK(serialize_lockfile(empty) == "[]");
}

TEST_CASE("format 2 order: repo bytewise, versions numerically, then revisions bytewise",
          "[lockfile][v2]") {
  Lockfile lock;
  lock.form = Lockfile::Form::dependency_list;
  lock.kernels = {dep("org/alpha", {}, kB, kB), dep("org/alpha", 10, {}, kA),
                  dep("org/alpha", 9, {}, kA), dep("Org/alpha", 1, {}, kA),
                  dep("org/alpha", {}, kA, kA)};
  const std::string text = serialize_lockfile(lock);
  auto parsed = parse_lockfile(text);
  REQUIRE(parsed.ok());
  std::vector<std::string> order;
  for (const KernelLock& k : parsed->kernels) order.push_back(dependency_name(k));
  CHECK(order == std::vector<std::string>{"Org/alpha v1", "org/alpha v9", "org/alpha v10",
                                          "org/alpha@" + kB,
                                          "org/alpha@" + kA});  // "2a43.." < "8247.."
  CHECK(text.find("\"revision\": \"" + kA + "\"\n") != std::string::npos);
  // find() takes the first in that order: the lowest version, as 0.17's lookup does.
  CHECK(parsed->find("org/alpha")->version == 9);
}

TEST_CASE("format 2 is read as strictly as kernels 0.17.2 reads it", "[lockfile][v2]") {
  auto entry = [](std::string dependency, std::string lock) {
    return "[{\"dependency\": " + dependency + ", \"lock\": " + lock + "}]";
  };
  const std::string good_lock = "{\"commit\": \"" + kA + "\"}";
  SECTION("revision: null next to a version is accepted; an upper-case commit is lowered") {
    std::string upper = kA;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto lock = parse_lockfile(entry(R"({"repo-id": "a/b", "version": 1, "revision": null})",
                                     "{\"commit\": \"" + upper + "\"}"));
    REQUIRE(lock.ok());
    CHECK(lock->kernels[0].version == 1);
    CHECK_FALSE(lock->kernels[0].revision);
    CHECK(lock->kernels[0].sha == kA);
  }
  SECTION("a revision dependency keeps its revision as written") {
    auto lock = parse_lockfile(entry(R"({"repo-id": "a/b", "revision": "v1-branch"})", good_lock));
    REQUIRE(lock.ok());
    CHECK(lock->kernels[0].revision == "v1-branch");
    CHECK_FALSE(lock->kernels[0].version);
  }
  SECTION("both, neither, unknown keys, bad types and short commits are refused") {
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b", "version": 1, "revision": "x"})", good_lock)),
               Catch::Contains("`version` and `revision` are mutually exclusive"));
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b"})", good_lock)),
               Catch::Contains("either `version` or `revision` must be specified"));
    CHECK_THAT(error_of(entry(R"({"repo_id": "a/b", "version": 1})", good_lock)),
               Catch::Contains("unknown key \"repo_id\""));
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b", "version": "1"})", good_lock)),
               Catch::Contains("expected \"version\" to be a non-negative integer"));
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b", "version": -1})", good_lock)),
               Catch::Contains("expected \"version\" to be a non-negative integer"));
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b", "version": 1})", R"({"commit": "abc1234"})")),
               Catch::Contains("full commit id"));
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b", "version": 1})",
                              "{\"commit\": \"" + kA + "\", \"hash\": \"x\"}")),
               Catch::Contains("unknown key \"hash\""));
    CHECK_THAT(error_of(entry(R"({"repo-id": "a/b", "version": 1})",
                              "{\"commit\": \"" + kA + kA.substr(0, 24) + "\"}")),
               Catch::Contains("SHA-256 commit ids"));
  }
  SECTION("one dependency key twice is refused; one repo at two versions is not") {
    const std::string two = "[" + entry(R"({"repo-id": "a/b", "version": 1})", good_lock).substr(1);
    std::string dup = two.substr(0, two.size() - 1) + ", " +
                      entry(R"({"repo-id": "a/b", "version": 1})", good_lock).substr(1);
    CHECK_THAT(error_of(dup), Catch::Contains("duplicate entry for \"a/b v1\""));
    std::string both = two.substr(0, two.size() - 1) + ", " +
                       entry(R"({"repo-id": "a/b", "version": 3})", good_lock).substr(1);
    auto lock = parse_lockfile(both);
    REQUIRE(lock.ok());
    CHECK(lock->kernels.size() == 2);
  }
}

TEST_CASE("the hashes sidecar round-trips and read_lockfile merges it into a format 2 lock",
          "[lockfile][v2]") {
  kernels::test::ScratchDir dir;
  Lockfile lock;
  lock.form = Lockfile::Form::dependency_list;
  lock.kernels = {dep("acme/relu", 1, {}, kB), dep("acme/flash-attn3", 2, {}, kA)};
  lock.kernels[0].variants["torch-cuda"] = VariantLock{kHash};
  lock.kernels[0].variants["cubin-cu130-sm90a"] = VariantLock{kHash};
  const auto path = dir / "kernels.lock";
  REQUIRE(write_lockfile(path, lock).ok());
  CHECK(lock_hashes_path(path) == dir / "kernels.lock.hashes");
  REQUIRE(write_lock_hashes(lock_hashes_path(path), lock_hashes_of(lock)).ok());
  CHECK(slurp(dir / "kernels.lock.hashes") == R"({
  "version": 1,
  "kernels": [
    {
      "repo-id": "acme/relu",
      "commit": "2a43ff220bdb1b8b63043885934faf26057da2db",
      "variants": {
        "cubin-cu130-sm90a": {"hash": "sha256-d39147b57a44ceda745fb101e028e87030c33b8375a049b75ab9ec5dd606fa64", "hash_type": "git_lfs_concat"},
        "torch-cuda": {"hash": "sha256-d39147b57a44ceda745fb101e028e87030c33b8375a049b75ab9ec5dd606fa64", "hash_type": "git_lfs_concat"}
      }
    }
  ]
}
)");
  // The lock file itself is 0.17's bytes: the hashes are not in it.
  CHECK(slurp(path).find("variants") == std::string::npos);
  auto back = read_lockfile(path);
  REQUIRE(back.ok());
  REQUIRE(back->find("acme/relu") != nullptr);
  CHECK(back->find("acme/relu")->variants == lock.kernels[0].variants);
  CHECK(back->find("acme/flash-attn3")->variants.empty());

  SECTION("hashes apply only to the commit they name") {
    Lockfile relocked = lock;
    relocked.kernels[0].sha = kA;  // e.g. re-locked by the Python package, sidecar untouched
    REQUIRE(write_lockfile(path, relocked).ok());
    auto again = read_lockfile(path);
    REQUIRE(again.ok());
    CHECK(again->find("acme/relu")->variants.empty());
  }
  SECTION("without a sidecar a format 2 lock reads with no hashes") {
    std::filesystem::remove(dir / "kernels.lock.hashes");
    auto again = read_lockfile(path);
    REQUIRE(again.ok());
    CHECK(again->find("acme/relu")->variants.empty());
  }
  SECTION("a malformed sidecar is an error naming it") {
    spit(dir / "kernels.lock.hashes", R"({"version": 2, "kernels": []})");
    auto again = read_lockfile(path);
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == ErrorCode::lockfile_invalid);
    CHECK_THAT(again.error().message(), Catch::Contains("kernels.lock.hashes:1:13") &&
                                            Catch::Contains("unknown sidecar version 2"));
    spit(dir / "kernels.lock.hashes",
         "{\"version\": 1, \"kernels\": [{\"repo-id\": \"acme/relu\", \"commit\": \"" + kB +
             "\", \"variants\": {\"torch-cuda\": {\"hash\": \"sha256-00\"}}}]}");
    auto short_hash = read_lockfile(path);
    REQUIRE_FALSE(short_hash.ok());
    CHECK_THAT(short_hash.error().message(), Catch::Contains("64 lowercase hex digits"));
  }
  SECTION("a format 1 lock never reads a sidecar") {
    Lockfile v1 = lock;
    v1.form = Lockfile::Form::repo_array;
    for (KernelLock& k : v1.kernels) k.version.reset();
    REQUIRE(write_lockfile(path, v1).ok());
    spit(dir / "kernels.lock.hashes", "not json");
    CHECK(read_lockfile(path).ok());
  }
}
