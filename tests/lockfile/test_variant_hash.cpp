// git_lfs_concat variant hashes (hf-kernels.md §2.2) against the synthetic vectors, the files
// they cover (variant_files: bytecode excluded), and re-verification of a real snapshot on disk
// in symlink and copy mode.
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "support.h"
#include "vectors.h"

using namespace kernels;
using kernels::test::hash_vectors;

namespace {

RepoTree vector_tree() {
  auto tree = parse_tree_listing(hash_vectors()["hub_tree_listing_recursive"].dump(), "vectors");
  REQUIRE(tree.ok());
  return std::move(*tree);
}

std::map<std::string, VariantLock> expected_variants(const char* key) {
  std::map<std::string, VariantLock> out;
  for (const auto& [name, v] : hash_vectors()[key]["variants"].items()) {
    out[name] = VariantLock{v["hash"].get<std::string>(), v["hash_type"].get<std::string>()};
  }
  return out;
}

const std::string kVariant = "torch29-cxx11-cu128-x86_64-linux";

// Builds snapshots/<commit>/ for every file of the vectors through CacheLayout, with blobs named
// by each file's etag (tree digest), in symlink or copy mode.
std::filesystem::path build_snapshot(const std::filesystem::path& root, bool copy_mode) {
  EnvLookup env = [copy_mode](std::string_view name) -> std::optional<std::string> {
    if (name == "HF_HUB_DISABLE_SYMLINKS" && copy_mode) return "1";
    return std::nullopt;
  };
  CacheLayout cache(root, env);
  const std::string repo = "example-org/fake";
  const std::string commit = hash_vectors()["commit"];
  const auto files = kernels::test::vector_files();
  for (const TreeEntry& e : vector_tree()) {
    if (!e.is_file) continue;
    const std::string etag = e.digest().hex;
    kernels::test::spit(cache.blob_path(repo, etag), files.at(e.path));
    auto linked = cache.link_snapshot_file(repo, commit, e.path, etag);
    INFO(e.path << ": " << (linked ? std::string() : linked.error().message()));
    REQUIRE(linked.ok());
  }
  return cache.snapshot_dir(repo, commit);
}

}  // namespace

TEST_CASE("variant hashes of the synthetic tree match kernels >= 0.16 byte for byte",
          "[variant_hash]") {
  const auto got = compute_variant_hashes(vector_tree(), HashRules::current);
  CHECK(got == expected_variants("expected_lock_entry_kernels_ge_0_16"));
}

TEST_CASE("legacy rules (kernels < 0.16) include bytecode and match byte for byte",
          "[variant_hash]") {
  const auto got = compute_variant_hashes(vector_tree(), HashRules::legacy);
  CHECK(got == expected_variants("expected_lock_entry_kernels_lt_0_16_bytecode_included"));
  CHECK(got.at(kVariant).hash != compute_variant_hashes(vector_tree()).at(kVariant).hash);
}

TEST_CASE("the ordered hash inputs of the vectors concatenate to the expected hashes",
          "[variant_hash]") {
  const auto expected = expected_variants("expected_lock_entry_kernels_ge_0_16");
  for (const auto& [variant, inputs] : hash_vectors()["ordered_hash_inputs_ge_0_16"].items()) {
    INFO(variant);
    Sha256 h;
    std::string previous;
    for (const auto& in : inputs) {
      const std::string name = in["filename"];
      CHECK(previous < name);  // bytewise order of the file names
      previous = name;
      auto raw = hex_to_bytes(in["hash_hex"].get<std::string>());
      REQUIRE(raw.ok());
      CHECK(raw->size() == in["hash_bytes_len"].get<std::size_t>());
      h.update(name);
      h.update(*raw);
    }
    CHECK("sha256-" + h.finish_hex() == expected.at(variant).hash);
  }
}

TEST_CASE("an empty variant hashes to sha256 of nothing", "[variant_hash]") {
  Sha256 h;
  CHECK("sha256-" + h.finish_hex() == hash_vectors()["empty_variant_lock_hash"].get<std::string>());
}

TEST_CASE("only build/torch* and build/cubin-* variants are hashed", "[variant_hash]") {
  CHECK(is_hashed_variant("torch-cuda"));
  CHECK(is_hashed_variant("torch210-cxx11-cu128-x86_64-linux"));
  CHECK(is_hashed_variant("cubin-cu130-sm90a"));
  CHECK_FALSE(is_hashed_variant("tvm-ffi01-cu128-x86_64-linux"));
  CHECK_FALSE(is_hashed_variant("cubin"));
  const std::string oid(40, 'a');
  RepoTree tree = {
      {"build/tvm-ffi01-cu128-x86_64-linux/x.so", true, oid, 1, std::nullopt, {}},
      {"README.md", true, oid, 1, std::nullopt, {}},
      {"build/cubin-cu130-sm90a/attention.cubin", true, oid, 1, std::nullopt, {}},
      {"build/torchfoo", true, oid, 1, std::nullopt, {}},  // degenerate: file name "."
      {"build/cubin-cu130-sm90a", false, oid, 0, std::nullopt, {}},
  };
  const auto got = compute_variant_hashes(tree);
  REQUIRE(got.size() == 2);
  Sha256 cubin;
  cubin.update(std::string("attention.cubin"));
  cubin.update(*hex_to_bytes(oid));
  CHECK(got.at("cubin-cu130-sm90a").hash == "sha256-" + cubin.finish_hex());
  Sha256 dot;
  dot.update(std::string("."));
  dot.update(*hex_to_bytes(oid));
  CHECK(got.at("torchfoo").hash == "sha256-" + dot.finish_hex());
}

TEST_CASE("a symlinked snapshot re-verifies against the lock", "[variant_hash]") {
  kernels::test::ScratchDir dir;
  const auto snap = build_snapshot(dir.path(), false);
  REQUIRE(std::filesystem::is_symlink(snap / "build" / kVariant / "_ops.py"));
  const auto expected = expected_variants("expected_lock_entry_kernels_ge_0_16");
  for (const auto& [variant, lock] : expected) {
    INFO(variant);
    const auto check = check_variant_on_disk(snap, variant, vector_tree(), lock);
    CHECK(check.problems.empty());
    CHECK(check.hash_matches);
    CHECK(check.ok());
  }
  const auto legacy = expected_variants("expected_lock_entry_kernels_lt_0_16_bytecode_included");
  const auto check = check_variant_on_disk(snap, kVariant, vector_tree(), legacy.at(kVariant),
                                           HashRules::legacy);
  CHECK(check.ok());
}

TEST_CASE("a copy-mode snapshot (regular files) re-verifies too", "[variant_hash]") {
  kernels::test::ScratchDir dir;
  const auto snap = build_snapshot(dir.path(), true);
  const auto ops = snap / "build" / kVariant / "_ops.py";
  REQUIRE(std::filesystem::is_regular_file(std::filesystem::symlink_status(ops)));
  const auto expected = expected_variants("expected_lock_entry_kernels_ge_0_16");
  const auto check = check_variant_on_disk(snap, kVariant, vector_tree(), expected.at(kVariant));
  CHECK(check.problems.empty());
  CHECK(check.ok());
}

TEST_CASE("a flipped byte and a missing file are each named", "[variant_hash]") {
  kernels::test::ScratchDir dir;
  const auto snap = build_snapshot(dir.path(), true);
  const auto so = snap / "build" / kVariant / "_fake_cuda_abc1234.abi3.so";  // LFS: sha256
  std::string bytes = kernels::test::slurp(so);
  bytes[3] ^= 0x01;
  kernels::test::spit(so, bytes);
  std::filesystem::remove(snap / "build" / kVariant / "a" / "b");  // git sha1 file
  const auto expected = expected_variants("expected_lock_entry_kernels_ge_0_16");
  const auto check = check_variant_on_disk(snap, kVariant, vector_tree(), expected.at(kVariant));
  CHECK_FALSE(check.ok());
  CHECK_FALSE(check.hash_matches);
  REQUIRE(check.problems.size() == 2);
  const FileProblem* mismatch = nullptr;
  const FileProblem* missing = nullptr;
  for (const auto& p : check.problems) {
    if (p.kind == FileProblem::Kind::mismatch) mismatch = &p;
    if (p.kind == FileProblem::Kind::missing) missing = &p;
  }
  REQUIRE(mismatch != nullptr);
  CHECK(mismatch->path == "build/" + kVariant + "/_fake_cuda_abc1234.abi3.so");
  CHECK(mismatch->expected == "6e978773f708a80a0a214f05c66098977e02b29fb23d3599d2323b6f15580412");
  CHECK(mismatch->actual.size() == 64);
  CHECK(mismatch->actual != mismatch->expected);
  REQUIRE(missing != nullptr);
  CHECK(missing->path == "build/" + kVariant + "/a/b");
}

TEST_CASE("a flipped byte in a symlinked blob is caught through the link", "[variant_hash]") {
  kernels::test::ScratchDir dir;
  const auto snap = build_snapshot(dir.path(), false);
  const auto init = snap / "build" / kVariant / "__init__.py";
  const auto blob = std::filesystem::canonical(init);
  std::string bytes = kernels::test::slurp(blob);
  bytes[0] ^= 0x20;
  kernels::test::spit(blob, bytes);
  const auto expected = expected_variants("expected_lock_entry_kernels_ge_0_16");
  const auto check = check_variant_on_disk(snap, kVariant, vector_tree(), expected.at(kVariant));
  REQUIRE(check.problems.size() == 1);
  CHECK(check.problems[0].kind == FileProblem::Kind::mismatch);
  CHECK(check.problems[0].path == "build/" + kVariant + "/__init__.py");
}

TEST_CASE("a variant the tree does not list, or an unsafe name, is a problem", "[variant_hash]") {
  kernels::test::ScratchDir dir;
  const VariantLock lock{"sha256-" + std::string(64, '0')};
  const auto absent = check_variant_on_disk(dir.path(), "torch-rocm", vector_tree(), lock);
  REQUIRE(absent.problems.size() == 1);
  CHECK(absent.problems[0].path == "build/torch-rocm/");
  const auto unsafe = check_variant_on_disk(dir.path(), "../torch", vector_tree(), lock);
  CHECK_FALSE(unsafe.ok());
  CHECK(unsafe.problems.size() == 1);
}

TEST_CASE("bytecode is a .pyc file or anything under __pycache__", "[variant_files]") {
  CHECK(is_bytecode_path("build/v/stray.pyc"));
  CHECK(is_bytecode_path("build/v/__pycache__/_ops.cpython-311.pyc"));
  CHECK(is_bytecode_path("__pycache__/notes.txt"));
  CHECK(is_bytecode_path("a/__pycache__"));
  CHECK_FALSE(is_bytecode_path("build/v/_ops.py"));
  CHECK_FALSE(is_bytecode_path("build/v/x.pyc.txt"));
  CHECK_FALSE(is_bytecode_path("build/v/my__pycache__/x.py"));
  CHECK_FALSE(is_bytecode_path("build/v/__pycache__x/y.py"));
}

TEST_CASE("variant_files lists one variant's files without bytecode or directories",
          "[variant_files]") {
  const RepoTree tree = vector_tree();
  std::set<std::string> got;
  for (const TreeEntry& e : variant_files(tree, kVariant)) got.insert(e.path);
  const std::string p = "build/" + kVariant + "/";
  CHECK(got == std::set<std::string>{p + "README.md", p + "__init__.py",
                                     p + "_fake_cuda_abc1234.abi3.so", p + "_ops.py", p + "a.b",
                                     p + "a/b", p + "fake/__init__.py", p + "metadata.json"});
  // A prefix of another variant's name is not that variant.
  CHECK(variant_files(tree, "torch").empty());
  CHECK(variant_files(tree, "no-such-variant").empty());
}

TEST_CASE("the concat hash over the vectors' ordered inputs is the locked hash", "[variant_hash]") {
  const auto& inputs = hash_vectors()["ordered_hash_inputs_ge_0_16"];
  const auto& locked = hash_vectors()["expected_lock_entry_kernels_ge_0_16"]["variants"];
  for (const auto& [variant, files] : inputs.items()) {
    INFO(variant);
    std::vector<VariantFileDigest> digests;
    for (const auto& f : files) {
      digests.push_back({f["filename"].get<std::string>(), f["hash_hex"].get<std::string>()});
    }
    // Order of the input does not matter: the hash sorts by path.
    std::reverse(digests.begin(), digests.end());
    CHECK(git_lfs_concat_hash(digests) == locked[variant]["hash"].get<std::string>());
  }
  CHECK(git_lfs_concat_hash({}) == hash_vectors()["empty_variant_lock_hash"].get<std::string>());
}
