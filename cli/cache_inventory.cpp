#include "cache_inventory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "blob_lock.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/repo_id.h"
#include "kernels/lockfile/variant_files.h"

namespace kernels::cli {
namespace fs = std::filesystem;
namespace {

std::time_t last_use_of(const struct stat& st) { return std::max(st.st_atime, st.st_mtime); }

std::vector<fs::path> children(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path snapshots_root(const CacheLayout& cache, const std::string& repo_id) {
  return cache.snapshot_dir(repo_id, "0").parent_path();
}
fs::path refs_root(const CacheLayout& cache, const std::string& repo_id) {
  return cache.ref_path(repo_id, "main").parent_path();
}

// Temp files and staging directories untouched this long are debris of a killed process; younger
// ones may belong to a download or an unpack in flight.
constexpr std::time_t kDebrisAge = 3600;

bool is_temp_file(const fs::path& p) {
  std::string name = p.filename().string();
  return name.size() > 11 && name.compare(name.size() - 11, 11, ".incomplete") == 0;
}

// "<name>.<8 hex>.incomplete": the temp names of unique_temp_path (atomic.h), which every write of
// ours uses (downloads, refs, trees, snapshot links, kept locks).
bool is_our_temp_name(const std::string& name) {
  constexpr std::size_t kSuffix = 1 + 8 + 11;  // ".xxxxxxxx.incomplete"
  if (name.size() <= kSuffix || name[name.size() - kSuffix] != '.' ||
      name.compare(name.size() - 11, 11, ".incomplete") != 0) {
    return false;
  }
  for (std::size_t i = name.size() - kSuffix + 1; i < name.size() - 11; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  return true;
}

// Our downloads name a temp file <etag>.<8 hex>.incomplete (unique to one process) and hold the
// blob lock .locks/<repo>/<etag>.lock from before the file exists until after it is renamed or
// removed (installer.cpp). An interrupted download keeps its bytes as <etag>.incomplete, the
// resumable name huggingface_hub also writes under the same lock. Either file whose lock is free
// belongs to no running process: nobody is writing it, so it is debris at any age (a later
// download would only have resumed it). Where that cannot be told (no lock file, flock turned off
// or not supported, a name that is neither) the age rule decides.
bool orphaned_temp(const CacheLayout& cache, const std::string& repo_id, const fs::path& temp) {
  static const bool flock_on = [] {
    Result<BlobLockPolicy> policy = BlobLockPolicy::from_env();
    return policy && policy->enabled;
  }();
  if (!flock_on) return false;
  const std::string name = temp.filename().string();
  const std::size_t dot = name.find('.');
  if (dot == std::string::npos) return false;
  const bool resumable = name.size() == dot + 11;  // <etag>.incomplete
  if (!resumable) {
    if (name.size() != dot + 1 + 8 + 11 ||
        name.compare(dot + 9, std::string::npos, ".incomplete") != 0) {
      return false;
    }
    for (std::size_t i = dot + 1; i < dot + 9; ++i) {
      if (!std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
    }
  }
  const std::optional<RepoId> repo = RepoId::parse(repo_id);
  if (!repo) return false;
  const fs::path lock = cache.lock_path(*repo, name.substr(0, dot));
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);  // releases it
  return free;
}

// Bytes of the regular files under `dir`, symlinks not followed (`dir` itself included: a link
// there frees nothing), each inode counted once (a hard-linked copy frees nothing more). What
// removing the directory gives back.
std::uint64_t tree_bytes(const fs::path& dir) {
  std::uint64_t bytes = 0;
  struct stat top {};
  if (::lstat(dir.c_str(), &top) != 0 || !S_ISDIR(top.st_mode)) return 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (seen.emplace(st.st_dev, st.st_ino).second) bytes += static_cast<std::uint64_t>(st.st_size);
  }
  return bytes;
}

// ref name -> commit, for every file under refs/ (nested: "pr/1").
std::map<std::string, std::string> read_refs(const CacheLayout& cache, const std::string& repo_id) {
  std::map<std::string, std::string> refs;
  fs::path root = refs_root(cache, repo_id);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().lexically_relative(root).generic_string();
    Result<std::string> commit = cache.read_ref(repo_id, name);
    if (commit) refs[name] = *commit;
  }
  return refs;
}

// Blob etags the given revisions still need: symlink targets in their snapshots, and every
// file their cached trees list (copy-mode snapshots hold no links).
std::set<std::string> referenced_blobs(const CacheLayout& cache, const std::string& repo_id,
                                       const std::vector<std::string>& commits) {
  std::set<std::string> etags;
  for (const std::string& commit : commits) {
    std::error_code ec;
    fs::path snap = cache.snapshot_dir(repo_id, commit);
    for (auto it = fs::recursive_directory_iterator(snap, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_symlink(ec)) etags.insert(fs::read_symlink(it->path(), ec).filename().string());
    }
    if (Result<RepoTree> tree = cache.read_tree(repo_id, commit)) {
      for (const TreeEntry& e : *tree) {
        if (e.is_file) etags.insert(e.digest().hex);
      }
    }
  }
  return etags;
}

// `path`'s directory, opened from the cache root down without following a link; nullopt when
// it is missing (then so is `path`). A link at any level is ErrorCode::unsafe naming it.
Result<std::optional<CacheDir>> open_parent(const CacheLayout& cache, const fs::path& path) {
  Result<CacheDir> dir = CacheDir::open_below(cache.root(), path.parent_path(), false);
  if (dir) return std::optional<CacheDir>(std::move(*dir));
  // The walk's error carries no errno: a missing directory is told by looking again. Only an
  // answer of "missing" is used, and it leads to no removal.
  struct stat st {};
  if (dir.error().code == ErrorCode::io && ::lstat(path.parent_path().c_str(), &st) != 0 &&
      errno == ENOENT) {
    return std::optional<CacheDir>();
  }
  return std::move(dir).error();
}

// Whether `path` is there, looked at (and with `remove`, removed) relative to its directory's
// descriptor; a link at `path` itself is an entry like any other, removed and never followed.
Result<bool> reach(const CacheLayout& cache, const fs::path& path, bool remove) {
  const std::string name = path.filename().string();
  if (name.empty() || name == "." || name == "..") {
    return make_error(ErrorCode::internal, "not an entry of the cache", path.string(),
                      "this is a bug: please report it");
  }
  Result<std::optional<CacheDir>> dir = open_parent(cache, path);
  if (!dir) return std::move(dir).error();
  if (!*dir) return false;
  struct stat st {};
  if (::fstatat((*dir)->fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return make_error(ErrorCode::io, std::string("cannot look at: ") + std::strerror(errno),
                      path.string(), "check that the cache is readable by this user");
  }
  if (remove) {
    if (Result<void> r = (*dir)->remove_all(name); !r) return std::move(r).error();
  }
  return true;
}

bool inside_any(const fs::path& path, const std::vector<fs::path>& dirs) {
  return std::any_of(dirs.begin(), dirs.end(), [&](const fs::path& dir) {
    return std::mismatch(dir.begin(), dir.end(), path.begin(), path.end()).first == dir.end();
  });
}

// Blobs and old temp files that `remaining` commits do not need.
void collect_unreferenced_blobs(const CacheLayout& cache, const std::string& repo_id,
                                const std::vector<std::string>& remaining,
                                std::vector<PruneAction>& actions) {
  std::set<std::string> keep = referenced_blobs(cache, repo_id, remaining);
  std::time_t now = std::time(nullptr);
  for (const fs::path& blob : children(cache.blobs_dir(repo_id))) {
    struct stat st {};
    if (::lstat(blob.c_str(), &st) != 0) continue;
    std::string name = blob.filename().string();
    if (is_temp_file(blob)) {
      // An in-flight download writes its temp file continuously; an hour of silence is debris.
      if (now - st.st_mtime >= kDebrisAge || orphaned_temp(cache, repo_id, blob)) {
        actions.push_back(
            {"temp file", repo_id, blob.string(), static_cast<std::uint64_t>(st.st_size)});
      }
      continue;
    }
    if (!keep.count(name)) {
      actions.push_back({"blob", repo_id, blob.string(), static_cast<std::uint64_t>(st.st_size)});
    }
  }
}

// The newest modification time of anything under `dir` (itself included; the walk stops after
// 100000 entries); 0 when it cannot be read.
std::time_t newest_mtime(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return 0;
  std::time_t newest = st.st_mtime;
  std::error_code ec;
  std::size_t seen = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator() && ++seen < 100000; it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) == 0) newest = std::max(newest, st.st_mtime);
  }
  return newest;
}

// A download in flight writes its temp files continuously and, before the first one, has just
// written the repo's tree and refs while no snapshot exists yet. Its fetched blobs are not
// linked until the end, so "unreferenced" cannot be decided for such a repo: prune leaves it
// alone (removing it failed the download with exit 13).
bool download_in_flight(const CacheLayout& cache, const std::string& repo_id, std::time_t now) {
  for (const fs::path& blob : children(cache.blobs_dir(repo_id))) {
    struct stat st {};
    if (is_temp_file(blob) && ::lstat(blob.c_str(), &st) == 0 && now - st.st_mtime < kDebrisAge &&
        !orphaned_temp(cache, repo_id, blob)) {
      return true;
    }
  }
  return children(snapshots_root(cache, repo_id)).empty() &&
         now - newest_mtime(cache.repo_dir(repo_id)) < kDebrisAge;
}

// In a repo prune otherwise leaves alone (a download may be in flight), the temp files no running
// process owns still go: nobody writes them, and a download that takes one over (installer.h)
// holds its lock first.
void collect_orphaned_temp_files(const CacheLayout& cache, const std::string& repo_id,
                                 std::vector<PruneAction>& actions) {
  for (const fs::path& blob : children(cache.blobs_dir(repo_id))) {
    struct stat st {};
    if (is_temp_file(blob) && ::lstat(blob.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        orphaned_temp(cache, repo_id, blob)) {
      actions.push_back(
          {"temp file", repo_id, blob.string(), static_cast<std::uint64_t>(st.st_size)});
    }
  }
}

void collect_revision_removal(const CacheLayout& cache, const std::string& repo_id,
                              const std::string& commit,
                              const std::map<std::string, std::string>& refs,
                              std::vector<PruneAction>& actions) {
  // Snapshot symlinks free nothing (their blobs are counted when removed); copies made with
  // HF_HUB_DISABLE_SYMLINKS do.
  actions.push_back({"revision", repo_id, cache.snapshot_dir(repo_id, commit).string(),
                     tree_bytes(cache.snapshot_dir(repo_id, commit))});
  std::error_code ec;
  if (fs::exists(cache.tree_path(repo_id, commit), ec)) {
    const auto size = fs::file_size(cache.tree_path(repo_id, commit), ec);
    actions.push_back({"tree", repo_id, cache.tree_path(repo_id, commit).string(),
                       ec ? 0 : static_cast<std::uint64_t>(size)});
  }
  for (const auto& [name, target] : refs) {
    if (target == commit)
      actions.push_back({"ref", repo_id, cache.ref_path(repo_id, name).string(), 0});
  }
}

}  // namespace

bool RevisionInfo::complete() const {
  if (!tree_cached) return false;
  for (const auto& v : variants) {
    if (!v.complete()) return false;
  }
  return true;
}

RepoInfo scan_repo(const CacheLayout& cache, const std::string& repo_id) {
  RepoInfo info;
  info.repo_id = repo_id;
  for (const fs::path& blob : children(cache.blobs_dir(repo_id))) {
    struct stat st {};
    if (::lstat(blob.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (is_temp_file(blob)) {
      ++info.temp_files;
      continue;
    }
    ++info.blobs;
    info.blob_bytes += static_cast<std::uint64_t>(st.st_size);
    info.last_used = std::max(info.last_used, last_use_of(st));
  }
  std::map<std::string, std::string> refs = read_refs(cache, repo_id);
  for (const fs::path& snap : children(snapshots_root(cache, repo_id))) {
    RevisionInfo rev;
    rev.commit = snap.filename().string();
    for (const auto& [name, commit] : refs) {
      if (commit == rev.commit) rev.refs.push_back(name);
    }
    Result<RepoTree> tree = cache.read_tree(repo_id, rev.commit);
    rev.tree_cached = tree.ok();
    std::set<std::string> seen_targets;
    std::map<std::string, VariantPresence> variants;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(snap, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st {};
      if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      std::string rel = it->path().lexically_relative(snap).generic_string();
      std::string target = it->is_symlink(ec) ? fs::read_symlink(it->path(), ec).string() : rel;
      if (seen_targets.insert(target).second) rev.bytes += static_cast<std::uint64_t>(st.st_size);
      rev.last_used = std::max(rev.last_used, last_use_of(st));
      if (rel.rfind("build/", 0) == 0 && rel.find('/', 6) != std::string::npos) {
        std::string v = rel.substr(6, rel.find('/', 6) - 6);
        auto& p = variants[v];
        p.variant = v;
        ++p.files_present;
        p.bytes += static_cast<std::uint64_t>(st.st_size);
      } else {
        ++rev.other_files;
      }
    }
    if (tree) {
      for (auto& [name, presence] : variants) {
        presence.files_expected = variant_files(*tree, name).size();
      }
    }
    for (auto& [name, presence] : variants) rev.variants.push_back(presence);
    info.last_used = std::max(info.last_used, rev.last_used);
    info.revisions.push_back(std::move(rev));
  }
  return info;
}

std::vector<fs::path> unpack_staging_dirs(const CacheLayout& cache) {
  std::vector<fs::path> out;
  for (const fs::path& p : children(cache.root())) {
    const std::string name = p.filename().string();
    if (name.rfind(".kernels-unpack.", 0) == 0 && is_temp_file(p)) out.push_back(p);
  }
  return out;
}

std::vector<RepoInfo> scan_cache(const CacheLayout& cache) {
  std::vector<RepoInfo> repos;
  std::vector<std::string> ids = cache.list_repos();
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) repos.push_back(scan_repo(cache, id));
  return repos;
}

// Temp files of atomic writes (refs, trees, snapshot links and copies, the kept locks) that a
// killed process left: untouched for an hour, they are debris. blobs/ (the lock rule above) and
// unpack staging directories (removed whole) are handled on their own; links are not followed.
void collect_stale_write_temps(const CacheLayout& cache, std::time_t now,
                               std::vector<PruneAction>& actions) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(cache.root(), fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (name == "blobs" || name == ".locks" || name.rfind(".kernels-unpack.", 0) == 0) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (is_our_temp_name(name) && now - st.st_mtime >= kDebrisAge) {
      actions.push_back(
          {"temp file", "", it->path().string(), static_cast<std::uint64_t>(st.st_size)});
    }
  }
}

Result<std::vector<PruneAction>> prune_cache(const CacheLayout& cache, const LockedRevisions& keep,
                                             bool dry_run) {
  std::vector<PruneAction> actions;
  const std::time_t now = std::time(nullptr);
  collect_stale_write_temps(cache, now, actions);
  for (const fs::path& staging : unpack_staging_dirs(cache)) {
    if (now - newest_mtime(staging) >= kDebrisAge) {
      actions.push_back({"unpack staging directory", "", staging.string(), 0});
    }
  }
  std::vector<std::string> ids = cache.list_repos();
  std::sort(ids.begin(), ids.end());
  for (const std::string& repo_id : ids) {
    if (download_in_flight(cache, repo_id, now)) {
      collect_orphaned_temp_files(cache, repo_id, actions);
      continue;
    }
    std::map<std::string, std::string> refs = read_refs(cache, repo_id);
    std::vector<std::string> remaining;
    for (const fs::path& snap : children(snapshots_root(cache, repo_id))) {
      std::string commit = snap.filename().string();
      if (keep.count({repo_id, commit})) {
        remaining.push_back(commit);
      } else {
        collect_revision_removal(cache, repo_id, commit, refs, actions);
      }
    }
    if (remaining.empty()) {
      // Nothing of this repo is referenced: the whole folder goes (its .locks/ files stay).
      actions.push_back({"repo", repo_id, cache.repo_dir(repo_id).string(), 0});
      for (const fs::path& blob : children(cache.blobs_dir(repo_id))) {
        std::error_code ec;
        auto size = fs::file_size(blob, ec);
        actions.push_back({is_temp_file(blob) ? "temp file" : "blob", repo_id, blob.string(),
                           ec ? 0 : static_cast<std::uint64_t>(size)});
      }
      continue;
    }
    collect_unreferenced_blobs(cache, repo_id, remaining, actions);
  }
  return remove_listed(cache, actions, dry_run);
}

Result<std::vector<PruneAction>> remove_from_cache(const CacheLayout& cache,
                                                   const std::string& repo_id,
                                                   const std::string& commit) {
  std::vector<PruneAction> actions;
  std::error_code ec;
  if (!fs::exists(cache.repo_dir(repo_id), ec)) {
    return make_error(ErrorCode::usage, "not in the cache", repo_id,
                      "`kernels cache ls` lists what the cache holds");
  }
  if (commit.empty()) {
    actions.push_back(
        {"repo", repo_id, cache.repo_dir(repo_id).string(), tree_bytes(cache.repo_dir(repo_id))});
    return remove_listed(cache, actions, false);
  }
  std::map<std::string, std::string> refs = read_refs(cache, repo_id);
  std::string resolved = commit;
  if (auto it = refs.find(commit); it != refs.end()) resolved = it->second;
  if (!fs::exists(cache.snapshot_dir(repo_id, resolved), ec)) {
    return make_error(ErrorCode::usage, "no such revision in the cache", repo_id + "@" + commit,
                      "`kernels cache show " + repo_id + "` lists its revisions");
  }
  collect_revision_removal(cache, repo_id, resolved, refs, actions);
  std::vector<std::string> remaining;
  for (const fs::path& snap : children(snapshots_root(cache, repo_id))) {
    if (snap.filename().string() != resolved) remaining.push_back(snap.filename().string());
  }
  collect_unreferenced_blobs(cache, repo_id, remaining, actions);
  return remove_listed(cache, actions, false);
}

Result<std::vector<PruneAction>> remove_listed(const CacheLayout& cache,
                                               const std::vector<PruneAction>& actions,
                                               bool dry_run) {
  std::vector<PruneAction> present;
  for (const PruneAction& a : actions) {
    Result<bool> there = reach(cache, a.path, false);
    if (!there) return std::move(there).error();
    if (*there) present.push_back(a);
  }
  if (dry_run) return present;
  std::vector<PruneAction> removed;
  std::vector<fs::path> removed_entries;
  for (const PruneAction& a : present) {
    if (inside_any(a.path, removed_entries)) {  // a blob of a repo folder removed whole
      removed.push_back(a);
      continue;
    }
    Result<bool> gone = reach(cache, a.path, true);
    if (!gone) return std::move(gone).error();
    if (*gone) {
      removed.push_back(a);
      removed_entries.emplace_back(a.path);
    }
  }
  return removed;
}

Result<bool> remove_in_cache(const CacheLayout& cache, const fs::path& path) {
  return reach(cache, path, true);
}

std::string format_time(std::time_t t) {
  if (t == 0) return "-";
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M", &tm);
  return buffer;
}

}  // namespace kernels::cli
