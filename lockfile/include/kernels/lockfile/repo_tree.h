// A repository tree at one commit: the Hub's recursive tree listing, and the cache's
// trees/<commit>.json copy of it (huggingface_hub format_version 1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/error.h"

namespace kernels {

struct LfsInfo {
  std::string sha256;  // 64 lowercase hex (JSON "oid")
  std::uint64_t size = 0;
  std::uint64_t pointer_size = 0;
  bool operator==(const LfsInfo&) const = default;
};

struct TreeEntry {
  std::string
      path;  // repo-relative POSIX path, validated: no "..", no leading "/", no "\\", no NUL
  bool is_file = true;  // "file" or "directory"
  std::string oid;      // git blob sha1 (40 hex) for files
  std::uint64_t size = 0;
  std::optional<LfsInfo> lfs;
  std::string xet_hash;  // Hub "xetHash" / cache "xet_hash"; empty when absent

  // sha256 for LFS files, git sha1 otherwise; also the blob name in the cache.
  FileDigest digest() const;
  // The size of the content a download yields (lfs.size for LFS files).
  std::uint64_t content_size() const;
  bool operator==(const TreeEntry&) const = default;
};

using RepoTree = std::vector<TreeEntry>;

// One page of GET /api/kernels/{repo}/tree/{rev}?recursive=true. Unknown keys are ignored (the Hub
// adds fields); unsafe paths and malformed oids are errors.
Result<RepoTree> parse_tree_listing(std::string_view json, std::string_view source);

// The cache's trees/<commit>.json: {"format_version":1,"files":{"<path>":{"size":N,"blob_id":"..",
// "lfs_sha256":"..","lfs_size":N,"xet_hash":".."}}}; files only, sorted by path, written exactly as
// huggingface_hub's _tree_cache.py does (json.dump(indent=1)). An unknown format_version is an
// error (a newer writer); callers treat it as a cache miss.
std::string serialize_tree_cache(const RepoTree& tree);
Result<RepoTree> parse_tree_cache(std::string_view json, std::string_view source);

// Hub-style JSON listing, as a mirror or the fake Hub serves it.
std::string serialize_tree_listing(const RepoTree& tree);

// A repo-relative path is safe to join under a directory: non-empty, relative, no "." or ".."
// components, no empty components, no backslash, no NUL or control characters.
bool is_safe_repo_path(std::string_view path);

}  // namespace kernels
