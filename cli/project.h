// A project's inputs as the commands read them (pyproject.toml, kernels.lock), the variants a
// tree offers, and the "org/name[@rev]" argument several commands take.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::cli {

// <dir>/kernels.lock; missing -> ErrorCode::lockfile_missing with Python's wording and a hint.
Result<Lockfile> read_project_lock(const std::filesystem::path& project_dir);

// mirror, pack and unpack choose and check variants by the lock's hashes. A format 2 lock has them
// only through its kernels.lock.hashes sidecar (lock_hashes.h); an entry it does not cover is
// ErrorCode::lockfile_stale, naming the entry, with the hint to run `kernels lock`.
Result<void> require_variant_hashes(const Lockfile& lock, const std::filesystem::path& project_dir,
                                    std::string_view command);

// Versions the project asks for (repo id -> N), when <dir>/pyproject.toml exists and parses.
std::map<std::string, int> project_versions(const std::filesystem::path& project_dir);

// Variant directories under build/ in a tree, sorted bytewise.
std::vector<std::string> tree_variants(const RepoTree& tree);

// "org/name[@rev]" split.
struct RepoRef {
  std::string repo_id;
  std::string revision;  // empty when not given
};
Result<RepoRef> parse_repo_ref(const std::string& text);

}  // namespace kernels::cli
