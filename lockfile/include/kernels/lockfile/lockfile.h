// kernels.lock: read and write, byte-compatible with the Python `kernels` package.
//
// Format 1 (kernels <= 0.16, Python json.dump(indent=2), no trailing newline, pyproject order):
//   [ { "repo_id": "org/name", "sha": "<40 hex>",
//       "variants": { "<variant>": { "hash": "sha256-<64 hex>",
//                                    "hash_type": "git_lfs_concat" } } } ]
// Format 2 (kernels 0.17, serde_json pretty, no trailing newline, sorted by dependency):
//   [ { "dependency": { "repo-id": "org/name", "version": 1 | "revision": "<oid>" },
//       "lock": { "commit": "<40 hex>" } } ]
// Format 2 carries no variant hashes; `kernels lock` records ours in a sidecar (lock_hashes.h),
// which read_lockfile merges back in, so every reader keeps its tamper check.
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
  // Format 2's dependency key: exactly one of the two is set there (format 1 has neither). The
  // revision is kept as written; `sha` is the commit it locks.
  std::optional<int> version;
  std::optional<std::string> revision;
  bool operator==(const KernelLock&) const = default;
};

// Format 2's order: repo id bytewise, then every version (numerically) before every revision
// (bytewise) -- the derived order of kernels-common's KernelDependency.
bool dependency_less(const KernelLock& a, const KernelLock& b);
// "org/name v1" / "org/name@<revision>" / "org/name", for messages.
std::string dependency_name(const KernelLock& k);

struct Lockfile {
  // repo_array is format 1, dependency_list is format 2.
  enum class Form { repo_array = 1, dependency_list = 2 };
  Form form = Form::repo_array;
  std::vector<KernelLock> kernels;  // file order

  // First entry with this repo id, or nullptr. Format 2 entries are kept sorted (parse and
  // serialize sort them), so this is 0.17's rule too: the lowest version wins.
  const KernelLock* find(std::string_view repo_id) const;
};

// 1 or 2.
constexpr int format_number(Lockfile::Form form) { return static_cast<int>(form); }

// Strict: errors carry "<source>:<line>:<column>" in Error::object and ErrorCode::lockfile_invalid,
// and say what was expected. Rejected: anything but one UTF-8 JSON document (BOM, UTF-16, NUL,
// trailing garbage, trailing commas), duplicate keys at any level, nesting deeper than 64 levels,
// wrong types, a sha that is not 40 lowercase hex, a hash that is not "sha256-" + 64 lowercase hex,
// a hash_type other than git_lfs_concat, unknown keys in a variant object (Python's @strict
// VariantLock), a variant name that is not one directory name, two entries for one repo, and in
// the list form any unknown key (kernels-data's deny_unknown_fields). Unknown keys of a
// repo_array entry are ignored, as Python's KernelLock.from_json ignores them. A missing
// hash_type means git_lfs_concat (the dataclass default). Format 2 follows kernels 0.17's
// KernelLocks.from_json: exactly one of version / revision ("revision": null counts as absent),
// an upper-case commit is lowered, two entries with one dependency key are an error (one repo
// may appear with several versions), entries are re-sorted; a 64-hex (SHA-256) commit is
// refused, since the cache layout holds 40-hex commits only. Column numbers count code points.
// Never throws.
Result<Lockfile> parse_lockfile(std::string_view text, std::string_view source = "kernels.lock");
// Reads the whole file once (regular files only, size-capped) and parses that buffer; for a
// format 2 lock, also its sidecar (lock_hashes.h), whose hashes fill KernelLock::variants of the
// entries whose commit it names. A missing file gives ErrorCode::lockfile_missing; a malformed
// sidecar is an error like a malformed lock.
Result<Lockfile> read_lockfile(const std::filesystem::path& path);

// The exact bytes the Python `kernels lock` writes for this lock in its form: 0.16's for format 1
// (an entry without variants is written with "variants": {}), 0.17.2's for format 2 (sorted with
// dependency_less, whatever order lock.kernels has; variants are not part of format 2).
std::string serialize_lockfile(const Lockfile& lock);
// serialize_lockfile + write_atomic (the lock only; lock_hashes.h writes the sidecar).
Result<void> write_lockfile(const std::filesystem::path& path, const Lockfile& lock);

// Validators shared by every reader.
bool is_commit_sha(std::string_view s);    // 40 lowercase hex
bool is_variant_hash(std::string_view s);  // "sha256-" + 64 lowercase hex
// is_repo_id: repo_id.h

}  // namespace kernels
