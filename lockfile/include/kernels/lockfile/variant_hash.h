// The `git_lfs_concat` variant hash of the Python `kernels` package, computed without
// downloading (from a tree listing) and re-verified from files on disk.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels {

enum class HashRules {
  current,  // kernels >= 0.16: *.pyc and __pycache__ excluded
  legacy,   // kernels < 0.16: bytecode included
};

// Variants hashed: directories under build/ whose name starts with "torch" (the Python rule)
// or "cubin-" (our device-code-only variants).
bool is_hashed_variant(std::string_view variant_name);

// One file's input to a variant hash: its path inside the variant directory ("/"-separated) and
// its content digest (git sha1 or sha256, lowercase hex).
struct VariantFileDigest {
  std::string rel_path;
  std::string digest_hex;
};

// The git_lfs_concat hash of one variant, "sha256-<hex>": sha256 over each file's path bytes then
// raw digest bytes, files sorted bytewise by path as Python sorts its (path, digest) tuples. The
// caller chooses the files (HashRules); nothing is filtered here.
std::string git_lfs_concat_hash(std::vector<VariantFileDigest> files);

// All variant hashes of a tree, keyed by variant name.
std::map<std::string, VariantLock> compute_variant_hashes(const RepoTree& tree,
                                                          HashRules rules = HashRules::current);

struct FileProblem {
  enum class Kind { missing, mismatch, unreadable };
  Kind kind = Kind::missing;
  std::string path;      // repo-relative, e.g. build/cubin-cu130-sm90a/attention.cubin
  std::string expected;  // digest hex (mismatch)
  std::string actual;    // digest hex (mismatch) or the OS error (unreadable)
};

struct VariantCheck {
  std::string variant;
  std::string computed_hash;  // "sha256-..." over what is on disk (files that could be read)
  std::vector<FileProblem> problems;
  bool hash_matches = false;
  bool ok() const { return problems.empty() && hash_matches; }
};

// Re-hash build/<variant>/ files under `snapshot_dir` (regular files and symlinks are both
// followed). The tree decides per file whether its content is hashed with sha256 (LFS) or git
// sha1; every file the tree lists for the variant is checked and every bad or missing one is
// named; the combined hash is compared with `expected`.
VariantCheck check_variant_on_disk(const std::filesystem::path& snapshot_dir,
                                   const std::string& variant, const RepoTree& tree,
                                   const VariantLock& expected,
                                   HashRules rules = HashRules::current);

}  // namespace kernels
