// The one rule for which files of a tree belong to a variant (bytecode excluded), and the
// git_lfs_concat hash over (path, digest) pairs that every hasher of a variant calls.
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "vectors.h"

using namespace kernels;
using kernels::test::hash_vectors;

namespace {

RepoTree vector_tree() {
  auto tree = parse_tree_listing(hash_vectors()["hub_tree_listing_recursive"].dump(), "vectors");
  REQUIRE(tree.ok());
  return std::move(*tree);
}

const std::string kVariant = "torch29-cxx11-cu128-x86_64-linux";

}  // namespace

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

TEST_CASE("the concat hash over the vectors' ordered inputs is the locked hash",
          "[variant_hash]") {
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
