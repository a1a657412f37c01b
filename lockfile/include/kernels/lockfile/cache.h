// The cache, laid out exactly as huggingface_hub lays out a hub cache, so Python tools and ours
// share one directory:
//
//   <root>/                                 $KERNELS_CACHE | $HF_HUB_CACHE | $HF_HOME/hub |
//                                           ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub
//     kernels.lock                          the lock a server's loader reads by default: the
//                                           project downloaded last
//     .kernels-projects/<key>/kernels.lock  every project's lock, kept by `kernels download`
//     .kernels-projects/<key>/project       that project's directory (key: its path's sha256)
//     .locks/kernels--<org>--<name>/<etag>.lock
//     kernels--<org>--<name>/
//       refs/<ref>                          40-hex commit, no trailing newline
//       blobs/<etag>                        etag = git sha1 (40 hex) or sha256 (64 hex)
//       snapshots/<commit>/<path>           relative symlink to ../../blobs/<etag> (or a copy)
//       trees/<commit>.json                 the tree at that commit (repo_tree.h)
//       .no_exist/<commit>/<path>           empty marker: the Hub said this file does not exist
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/env.h"
#include "kernels/lockfile/error.h"
#include "kernels/lockfile/repo_id.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels {

// The cache root the environment selects (see the table above; HUGGINGFACE_HUB_CACHE is read
// after HF_HUB_CACHE, empty values count as unset). "~" and $VAR / ${VAR} are expanded as
// huggingface_hub does (expanduser, then expandvars).
std::filesystem::path resolve_cache_root(const EnvLookup& env = process_env());

// Lockfile the loader reads: $KERNELS_LOCKFILE, else <cache root>/kernels.lock.
std::filesystem::path resolve_lockfile_path(const EnvLookup& env = process_env());

// "kernels--org--name"
std::string repo_folder_name(std::string_view repo_id);

// Ids and names are validated before any path join: a repo id is a RepoId (checked once, where it
// entered; every member also takes the id as text, checked on that call), an etag is 40 or 64
// lowercase hex, a ref and a repo path pass is_safe_repo_path. Writers (write_ref, write_tree,
// link_snapshot_file) require a commit of 40 lowercase hex; the path accessors accept any single
// safe path component as the revision directory, so a cache listing can name what is on disk.
// The accessors cannot fail, so for invalid input they return a path under /dev/null, which can
// never be created or opened (nothing under it is reachable); the Result-returning members and
// check_names() say what is wrong.
class CacheLayout {
 public:
  explicit CacheLayout(std::filesystem::path root);
  // `env` decides copy mode (HF_HUB_DISABLE_SYMLINKS); tests inject it.
  CacheLayout(std::filesystem::path root, EnvLookup env);

  // ErrorCode::unsafe naming the first invalid argument; empty views are not checked.
  static Result<void> check_names(std::string_view repo_id, std::string_view commit = {},
                                  std::string_view repo_path = {}, std::string_view etag = {},
                                  std::string_view ref = {});

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path lockfile_path() const;  // <root>/kernels.lock
  // Where `kernels download` keeps the lock of the project in `project_dir`, so several projects
  // share one cache: prune keeps what any of them references, and the loader finds a family's
  // bundle through them when <root>/kernels.lock (the last project downloaded) lacks it.
  std::filesystem::path project_lock_path(const std::filesystem::path& project_dir) const;
  // Every project lock kept so far, sorted.
  std::vector<std::filesystem::path> project_lockfiles() const;
  std::filesystem::path repo_dir(const RepoId& repo) const;
  std::filesystem::path blobs_dir(const RepoId& repo) const;
  std::filesystem::path blob_path(const RepoId& repo, std::string_view etag) const;
  std::filesystem::path snapshots_dir(const RepoId& repo) const;  // .../snapshots
  std::filesystem::path refs_dir(const RepoId& repo) const;       // .../refs
  std::filesystem::path trees_dir(const RepoId& repo) const;      // .../trees
  std::filesystem::path snapshot_dir(const RepoId& repo, std::string_view commit) const;
  std::filesystem::path snapshot_file(const RepoId& repo, std::string_view commit,
                                      std::string_view repo_path) const;
  std::filesystem::path ref_path(const RepoId& repo, std::string_view ref) const;
  std::filesystem::path tree_path(const RepoId& repo, std::string_view commit) const;
  std::filesystem::path lock_path(const RepoId& repo, std::string_view etag) const;
  std::filesystem::path no_exist_path(const RepoId& repo, std::string_view commit,
                                      std::string_view repo_path) const;

  // refs: written atomically, no trailing newline; read with surrounding whitespace stripped.
  Result<void> write_ref(const RepoId& repo, std::string_view ref, std::string_view commit) const;
  Result<std::string> read_ref(const RepoId& repo, std::string_view ref) const;

  Result<void> write_tree(const RepoId& repo, std::string_view commit, const RepoTree& tree) const;
  Result<RepoTree> read_tree(const RepoId& repo, std::string_view commit) const;

  // Creates snapshots/<commit>/<repo_path> pointing at blobs/<etag>: a relative symlink, or in
  // copy mode (symlinks unsupported, or HF_HUB_DISABLE_SYMLINKS=1) a copy published atomically
  // (the blob stays in blobs/, unlike huggingface_hub, which moves new blobs in copy mode; in
  // copy mode an existing snapshot file is re-hashed and replaced when it does not match).
  // An existing correct link is left alone, so a read-only cache with everything present works.
  Result<void> link_snapshot_file(const RepoId& repo, std::string_view commit,
                                  std::string_view repo_path, std::string_view etag) const;

  // The same members for a repo id given as text: it is checked first (an invalid one gives the
  // invalid path, or check_names()'s ErrorCode::unsafe), then the RepoId member runs.
  std::filesystem::path repo_dir(std::string_view repo_id) const;
  std::filesystem::path blobs_dir(std::string_view repo_id) const;
  std::filesystem::path blob_path(std::string_view repo_id, std::string_view etag) const;
  std::filesystem::path snapshots_dir(std::string_view repo_id) const;
  std::filesystem::path refs_dir(std::string_view repo_id) const;
  std::filesystem::path trees_dir(std::string_view repo_id) const;
  std::filesystem::path snapshot_dir(std::string_view repo_id, std::string_view commit) const;
  std::filesystem::path snapshot_file(std::string_view repo_id, std::string_view commit,
                                      std::string_view repo_path) const;
  std::filesystem::path ref_path(std::string_view repo_id, std::string_view ref) const;
  std::filesystem::path tree_path(std::string_view repo_id, std::string_view commit) const;
  // What `download --require-signatures` found for one variant (docs/SIGNATURES.md):
  // <repo>/signatures/<commit>/<variant>.json.
  std::filesystem::path signature_record_path(std::string_view repo_id, std::string_view commit,
                                              std::string_view variant) const;
  std::filesystem::path lock_path(std::string_view repo_id, std::string_view etag) const;
  std::filesystem::path no_exist_path(std::string_view repo_id, std::string_view commit,
                                      std::string_view repo_path) const;
  Result<void> write_ref(std::string_view repo_id, std::string_view ref,
                         std::string_view commit) const;
  Result<std::string> read_ref(std::string_view repo_id, std::string_view ref) const;
  Result<void> write_tree(std::string_view repo_id, std::string_view commit,
                          const RepoTree& tree) const;
  Result<RepoTree> read_tree(std::string_view repo_id, std::string_view commit) const;
  Result<void> link_snapshot_file(std::string_view repo_id, std::string_view commit,
                                  std::string_view repo_path, std::string_view etag) const;

  // Repos present (folder names decoded back to "org/name"), sorted.
  std::vector<std::string> list_repos() const;

 private:
  std::filesystem::path root_;
  EnvLookup env_;
};

// The relative symlink target for snapshots/<commit>/<repo_path>: "../../blobs/<etag>" plus one
// "../" per directory level of repo_path.
std::string snapshot_link_target(std::string_view repo_path, std::string_view etag);

// Probed once per directory: can we create a relative symlink there?
bool symlinks_supported(const std::filesystem::path& dir, const EnvLookup& env = process_env());

}  // namespace kernels
