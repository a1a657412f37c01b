// kernels.lock: read and write, byte-compatible with the Python `kernels` package.
//
// Written form (what `kernels lock` writes, Python json.dump(indent=2), no trailing newline):
//   [ { "repo_id": "org/name", "sha": "<40 hex>",
//       "variants": { "<variant>": { "hash": "sha256-<64 hex>", "hash_type": "git_lfs_concat" } } } ]
// Also read: the kernels-data list form
//   [ { "dependency": { "repo-id": "org/name", "version": 1 }, "lock": { "commit": "<40 hex>" } } ]
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/repo_id.h"

namespace kernels {

inline constexpr std::string_view kHashTypeGitLfsConcat = "git_lfs_concat";
// read_lockfile refuses larger files (a real lock with 100 kernels is well under 1 MiB).
inline constexpr std::size_t kMaxLockfileBytes = std::size_t{16} << 20;

struct VariantLock {
  std::string hash;  // "sha256-" + 64 lowercase hex
  std::string hash_type = std::string(kHashTypeGitLfsConcat);
  bool operator==(const VariantLock&) const = default;
};

struct KernelLock {
  std::string repo_id;  // "org/name"
  std::string sha;      // 40 lowercase hex commit
  // std::map<std::string> orders keys bytewise, which is the order Python writes.
  std::map<std::string, VariantLock> variants;
  std::optional<int> version;  // only in the list form (dependency.version)
  bool operator==(const KernelLock&) const = default;
};

struct Lockfile {
  enum class Form { repo_array, dependency_list };
  Form form = Form::repo_array;
  std::vector<KernelLock> kernels;  // file order

  // First entry with this repo id (Python's rule), or nullptr.
  const KernelLock* find(std::string_view repo_id) const;
};

// Strict: errors carry "<source>:<line>:<column>" in Error::object and ErrorCode::lockfile_invalid,
// and say what was expected. Rejected: anything but one UTF-8 JSON document (BOM, UTF-16, NUL,
// trailing garbage, trailing commas), duplicate keys at any level, nesting deeper than 64 levels,
// wrong types, a sha that is not 40 lowercase hex, a hash that is not "sha256-" + 64 lowercase hex,
// a hash_type other than git_lfs_concat, unknown keys in a variant object (Python's @strict
// VariantLock), a variant name that is not one directory name, two entries for one repo, and in
// the list form any unknown key (kernels-data's deny_unknown_fields). Unknown keys of a
// repo_array entry are ignored, as Python's KernelLock.from_json ignores them. A missing
// hash_type means git_lfs_concat (the dataclass default). Column numbers count code points.
// Never throws.
Result<Lockfile> parse_lockfile(std::string_view text, std::string_view source = "kernels.lock");
// Reads the whole file once (regular files only, size-capped) and parses that buffer.
// A missing file gives ErrorCode::lockfile_missing.
Result<Lockfile> read_lockfile(const std::filesystem::path& path);

// The exact bytes Python's `kernels lock` writes for this lock (repo_array form, whatever
// lock.form says; a dependency_list lock is written with its commits and no variants).
std::string serialize_lockfile(const Lockfile& lock);
// serialize_lockfile + write_atomic.
Result<void> write_lockfile(const std::filesystem::path& path, const Lockfile& lock);

// Validators shared by every reader.
bool is_commit_sha(std::string_view s);    // 40 lowercase hex
bool is_variant_hash(std::string_view s);  // "sha256-" + 64 lowercase hex
// is_repo_id: repo_id.h

}  // namespace kernels
