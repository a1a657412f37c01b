#include "kernels/lockfile/cache.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "file_read.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/lockfile.h"

namespace kernels {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> nonempty(const EnvLookup& env, std::string_view name) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

std::string home_dir(const EnvLookup& env) {
  if (auto h = nonempty(env, "HOME")) return *h;
  // HOME unset (some daemons, containers): the password database still knows.
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    return pw->pw_dir;
  }
  return "/";
}

// Python's os.path.expandvars: $NAME and ${NAME} are replaced when NAME is set, left as written
// otherwise.
std::string expand_vars(const std::string& p, const EnvLookup& env) {
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::string out;
  for (std::size_t i = 0; i < p.size();) {
    if (p[i] != '$') {
      out += p[i++];
      continue;
    }
    std::size_t start = i + 1, end = start;
    const bool braced = start < p.size() && p[start] == '{';
    if (braced) {
      end = p.find('}', start + 1);
      if (end == std::string::npos) {
        out += p.substr(i);
        break;
      }
      const std::string name = p.substr(start + 1, end - start - 1);
      auto v = name.empty() ? std::nullopt : env(name);
      out += v ? *v : p.substr(i, end + 1 - i);
      i = end + 1;
      continue;
    }
    while (end < p.size() && name_char(p[end])) ++end;
    const std::string name = p.substr(start, end - start);
    auto v = name.empty() ? std::nullopt : env(name);
    out += v ? *v : p.substr(i, end - i);
    i = std::max(end, i + 1);
  }
  return out;
}

// expanduser, then expandvars, as huggingface_hub's constants.py does.
fs::path expand_user(const std::string& raw, const EnvLookup& env) {
  std::string p = raw;
  if (p == "~") p = home_dir(env);
  else if (p.rfind("~/", 0) == 0) p = home_dir(env) + p.substr(1);
  return expand_vars(p, env);
}

const fs::path& invalid_path() {
  static const fs::path p = "/dev/null/kernels-invalid-cache-path";
  return p;
}

bool is_ref_name(std::string_view ref) {
  if (!is_safe_repo_path(ref) || ref.size() > 255) return false;
  return std::all_of(ref.begin(), ref.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/' || c == '+';
  });
}

// A revision directory name: a commit normally, but any single safe path component is accepted
// by the path accessors so callers can list what is on disk; writers require a commit.
bool is_path_component(std::string_view s) {
  if (s.empty() || s.size() > 255 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '+';
  });
}

bool is_etag(std::string_view etag) { return is_lower_hex(etag, 40) || is_lower_hex(etag, 64); }

Error unsafe(std::string what, std::string_view object) {
  return make_error(ErrorCode::unsafe, std::move(what), std::string(object),
                    "names that reach the cache must be plain Hub ids, hex digests and "
                    "relative repo paths");
}

}  // namespace

fs::path resolve_cache_root(const EnvLookup& env) {
  if (auto v = nonempty(env, "KERNELS_CACHE")) return expand_user(*v, env);
  if (auto v = nonempty(env, "HF_HUB_CACHE")) return expand_user(*v, env);
  if (auto v = nonempty(env, "HUGGINGFACE_HUB_CACHE")) return expand_user(*v, env);
  if (auto v = nonempty(env, "HF_HOME")) return expand_user(*v, env) / "hub";
  fs::path xdg;
  if (auto v = nonempty(env, "XDG_CACHE_HOME")) xdg = expand_user(*v, env);
  else xdg = fs::path(home_dir(env)) / ".cache";
  return xdg / "huggingface" / "hub";
}

fs::path resolve_lockfile_path(const EnvLookup& env) {
  if (auto v = nonempty(env, "KERNELS_LOCKFILE")) return expand_user(*v, env);
  return resolve_cache_root(env) / "kernels.lock";
}

std::string repo_folder_name(std::string_view repo_id) {
  std::string out = "kernels--";
  for (char c : repo_id) {
    if (c == '/') out += "--";
    else out += c;
  }
  return out;
}

std::string snapshot_link_target(std::string_view repo_path, std::string_view etag) {
  std::string out = "../../";
  for (char c : repo_path) {
    if (c == '/') out += "../";
  }
  out += "blobs/";
  out += etag;
  return out;
}

CacheLayout::CacheLayout(fs::path root) : root_(std::move(root)), env_(process_env()) {}
CacheLayout::CacheLayout(fs::path root, EnvLookup env)
    : root_(std::move(root)), env_(std::move(env)) {}

namespace {

// check_names without the repo id (which a RepoId already passed).
Result<void> check_other_names(std::string_view commit, std::string_view repo_path,
                               std::string_view etag, std::string_view ref) {
  if (!commit.empty() && !is_commit_sha(commit)) {
    return unsafe("invalid commit: expected 40 lowercase hex digits", commit);
  }
  if (!repo_path.empty() && !is_safe_repo_path(repo_path)) {
    return unsafe("unsafe repo path: expected a relative path without \"..\" or \".\" parts",
                  repo_path);
  }
  if (!etag.empty() && !is_etag(etag)) {
    return unsafe("invalid etag: expected 40 or 64 lowercase hex digits", etag);
  }
  if (!ref.empty() && !is_ref_name(ref)) return unsafe("invalid ref name", ref);
  return ok();
}

}  // namespace

Result<void> CacheLayout::check_names(std::string_view repo_id, std::string_view commit,
                                      std::string_view repo_path, std::string_view etag,
                                      std::string_view ref) {
  if (!is_repo_id(repo_id)) return unsafe("invalid repo id: expected \"org/name\"", repo_id);
  return check_other_names(commit, repo_path, etag, ref);
}

fs::path CacheLayout::lockfile_path() const { return root_ / "kernels.lock"; }

namespace {
constexpr const char* kProjectsDir = ".kernels-projects";
}  // namespace

fs::path CacheLayout::project_lock_path(const fs::path& project_dir) const {
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::absolute(project_dir, ec), ec);
  if (ec) dir = fs::absolute(project_dir, ec).lexically_normal();
  Sha256 h;
  h.update(std::string_view(dir.string()));
  return root_ / kProjectsDir / h.finish_hex().substr(0, 16) / "kernels.lock";
}

std::vector<fs::path> CacheLayout::project_lockfiles() const {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(root_ / kProjectsDir, ec);
  if (ec) return out;
  for (const auto& entry : it) {
    std::error_code e2;
    const fs::path lock = entry.path() / "kernels.lock";
    if (fs::is_regular_file(fs::symlink_status(lock, e2))) out.push_back(lock);
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path CacheLayout::repo_dir(const RepoId& repo) const {
  return root_ / repo_folder_name(repo.str());
}

fs::path CacheLayout::blobs_dir(const RepoId& repo) const { return repo_dir(repo) / "blobs"; }

fs::path CacheLayout::blob_path(const RepoId& repo, std::string_view etag) const {
  if (etag.empty() || !is_etag(etag)) return invalid_path();
  return blobs_dir(repo) / std::string(etag);
}

fs::path CacheLayout::snapshots_dir(const RepoId& repo) const {
  return repo_dir(repo) / "snapshots";
}

fs::path CacheLayout::refs_dir(const RepoId& repo) const { return repo_dir(repo) / "refs"; }

fs::path CacheLayout::trees_dir(const RepoId& repo) const { return repo_dir(repo) / "trees"; }

fs::path CacheLayout::snapshot_dir(const RepoId& repo, std::string_view commit) const {
  if (!is_path_component(commit)) return invalid_path();
  return snapshots_dir(repo) / std::string(commit);
}

fs::path CacheLayout::snapshot_file(const RepoId& repo, std::string_view commit,
                                    std::string_view repo_path) const {
  if (!is_safe_repo_path(repo_path) || !is_path_component(commit)) return invalid_path();
  return snapshots_dir(repo) / std::string(commit) / std::string(repo_path);
}

fs::path CacheLayout::no_exist_path(const RepoId& repo, std::string_view commit,
                                    std::string_view repo_path) const {
  if (!is_path_component(commit) || !is_safe_repo_path(repo_path)) return invalid_path();
  return repo_dir(repo) / ".no_exist" / std::string(commit) / std::string(repo_path);
}

fs::path CacheLayout::ref_path(const RepoId& repo, std::string_view ref) const {
  if (ref.empty() || !is_ref_name(ref)) return invalid_path();
  return refs_dir(repo) / std::string(ref);
}

fs::path CacheLayout::tree_path(const RepoId& repo, std::string_view commit) const {
  if (!is_path_component(commit)) return invalid_path();
  return trees_dir(repo) / (std::string(commit) + ".json");
}

fs::path CacheLayout::lock_path(const RepoId& repo, std::string_view etag) const {
  if (etag.empty() || !is_etag(etag)) return invalid_path();
  return root_ / ".locks" / repo_folder_name(repo.str()) / (std::string(etag) + ".lock");
}

Result<void> CacheLayout::write_ref(const RepoId& repo, std::string_view ref,
                                    std::string_view commit) const {
  if (ref.empty()) return unsafe("empty ref name", ref);
  if (commit.empty()) return unsafe("empty commit", commit);
  if (auto c = check_other_names(commit, {}, {}, ref); !c) return c;
  const fs::path p = ref_path(repo, ref);
  auto dir = CacheDir::open_below(root_, p.parent_path(), true);
  if (!dir) return std::move(dir).error();
  // huggingface_hub reads refs without stripping: no newline.
  return dir->write_atomic(p.filename().string(), commit);
}

Result<std::string> CacheLayout::read_ref(const RepoId& repo, std::string_view ref) const {
  if (ref.empty()) return unsafe("empty ref name", ref);
  if (auto c = check_other_names({}, {}, {}, ref); !c) return std::move(c).error();
  const fs::path p = ref_path(repo, ref);
  auto text = read_small_file(p, 4096, ErrorCode::offline_not_cached,
                              "fetch the kernel once while online");
  if (!text) return std::move(text).error();
  std::string_view s = *text;
  const auto first = s.find_first_not_of(" \t\r\n");
  const auto last = s.find_last_not_of(" \t\r\n");
  s = first == std::string_view::npos ? std::string_view() : s.substr(first, last - first + 1);
  if (!is_commit_sha(s)) {
    return make_error(ErrorCode::lockfile_invalid,
                      "ref does not hold a commit id (40 lowercase hex digits)", p.string(),
                      "delete the ref file; it is rewritten on the next online fetch");
  }
  return std::string(s);
}

Result<void> CacheLayout::write_tree(const RepoId& repo, std::string_view commit,
                                     const RepoTree& tree) const {
  if (commit.empty()) return unsafe("empty commit", commit);
  if (auto c = check_other_names(commit, {}, {}, {}); !c) return c;
  for (const TreeEntry& e : tree) {
    if (!is_safe_repo_path(e.path)) return unsafe("unsafe path in tree", e.path);
  }
  const fs::path p = tree_path(repo, commit);
  auto dir = CacheDir::open_below(root_, p.parent_path(), true);
  if (!dir) return std::move(dir).error();
  return dir->write_atomic(p.filename().string(), serialize_tree_cache(tree));
}

Result<RepoTree> CacheLayout::read_tree(const RepoId& repo, std::string_view commit) const {
  if (commit.empty()) return unsafe("empty commit", commit);
  if (auto c = check_other_names(commit, {}, {}, {}); !c) return std::move(c).error();
  const fs::path p = tree_path(repo, commit);
  auto text = read_small_file(p, std::size_t{64} << 20, ErrorCode::offline_not_cached,
                              "fetch the kernel once while online");
  if (!text) return std::move(text).error();
  return parse_tree_cache(*text, p.string());
}

// The text forms: check the id once, then the RepoId member.

fs::path CacheLayout::repo_dir(std::string_view repo_id) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? repo_dir(*repo) : invalid_path();
}

fs::path CacheLayout::blobs_dir(std::string_view repo_id) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? blobs_dir(*repo) : invalid_path();
}

fs::path CacheLayout::blob_path(std::string_view repo_id, std::string_view etag) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? blob_path(*repo, etag) : invalid_path();
}

fs::path CacheLayout::snapshots_dir(std::string_view repo_id) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? snapshots_dir(*repo) : invalid_path();
}

fs::path CacheLayout::refs_dir(std::string_view repo_id) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? refs_dir(*repo) : invalid_path();
}

fs::path CacheLayout::trees_dir(std::string_view repo_id) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? trees_dir(*repo) : invalid_path();
}

fs::path CacheLayout::snapshot_dir(std::string_view repo_id, std::string_view commit) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? snapshot_dir(*repo, commit) : invalid_path();
}

fs::path CacheLayout::snapshot_file(std::string_view repo_id, std::string_view commit,
                                    std::string_view repo_path) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? snapshot_file(*repo, commit, repo_path) : invalid_path();
}

fs::path CacheLayout::no_exist_path(std::string_view repo_id, std::string_view commit,
                                    std::string_view repo_path) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? no_exist_path(*repo, commit, repo_path) : invalid_path();
}

fs::path CacheLayout::ref_path(std::string_view repo_id, std::string_view ref) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? ref_path(*repo, ref) : invalid_path();
}

fs::path CacheLayout::tree_path(std::string_view repo_id, std::string_view commit) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? tree_path(*repo, commit) : invalid_path();
}

fs::path CacheLayout::signature_record_path(std::string_view repo_id, std::string_view commit,
                                            std::string_view variant) const {
  const auto repo = RepoId::parse(repo_id);
  if (!repo || !is_path_component(commit) || !is_path_component(variant)) return invalid_path();
  return repo_dir(*repo) / "signatures" / std::string(commit) / (std::string(variant) + ".json");
}

fs::path CacheLayout::lock_path(std::string_view repo_id, std::string_view etag) const {
  const auto repo = RepoId::parse(repo_id);
  return repo ? lock_path(*repo, etag) : invalid_path();
}

Result<void> CacheLayout::write_ref(std::string_view repo_id, std::string_view ref,
                                    std::string_view commit) const {
  const auto repo = RepoId::parse(repo_id);
  if (!repo) return check_names(repo_id);
  return write_ref(*repo, ref, commit);
}

Result<std::string> CacheLayout::read_ref(std::string_view repo_id, std::string_view ref) const {
  const auto repo = RepoId::parse(repo_id);
  if (!repo) return check_names(repo_id).error();
  return read_ref(*repo, ref);
}

Result<void> CacheLayout::write_tree(std::string_view repo_id, std::string_view commit,
                                     const RepoTree& tree) const {
  const auto repo = RepoId::parse(repo_id);
  if (!repo) return check_names(repo_id);
  return write_tree(*repo, commit, tree);
}

Result<RepoTree> CacheLayout::read_tree(std::string_view repo_id, std::string_view commit) const {
  const auto repo = RepoId::parse(repo_id);
  if (!repo) return check_names(repo_id).error();
  return read_tree(*repo, commit);
}

Result<void> CacheLayout::link_snapshot_file(std::string_view repo_id, std::string_view commit,
                                             std::string_view repo_path,
                                             std::string_view etag) const {
  const auto repo = RepoId::parse(repo_id);
  if (!repo) return check_names(repo_id);
  return link_snapshot_file(*repo, commit, repo_path, etag);
}

namespace {

// Reads a symlink's target, or nullopt when `p` is not a symlink.
std::optional<std::string> read_link(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(p, ec))) return std::nullopt;
  auto t = fs::read_symlink(p, ec);
  if (ec) return std::nullopt;
  return t.string();
}

// Copy mode: the blob's bytes under a temp name in the snapshot directory, fsynced, renamed into
// place; both ends opened relative to directories reached without following links.
Result<void> copy_into_place(const CacheDir& blobs, std::string_view etag, const CacheDir& dir,
                             const std::string& name) {
  auto io = [&](const std::string& what, int err) {
    return make_error(ErrorCode::io,
                      "cannot copy blob into the snapshot: " + what + ": " + std::strerror(err),
                      (dir.path() / name).string());
  };
  const int in = blobs.open_file(etag, O_RDONLY | O_NONBLOCK);
  if (in < 0) return io("cannot open the blob", errno);
  const std::string temp = unique_temp_path(name).string();
  const int out = dir.open_file(temp, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return io("cannot create " + temp, err);
  }
  int err = 0;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    const ssize_t n = read_retrying(in, buffer.data(), buffer.size());
    if (n <= 0) {
      if (n < 0) err = errno;
      break;
    }
    err = write_all(out, buffer.data(), static_cast<std::size_t>(n));
    if (err != 0) break;
  }
  if (err == 0 && ::fsync(out) != 0) err = errno;
  ::close(in);
  if (::close(out) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlinkat(dir.fd(), temp.c_str(), 0);
    return io("cannot write " + temp, err);
  }
  if (auto r = dir.rename(temp, name); !r) {
    ::unlinkat(dir.fd(), temp.c_str(), 0);
    return r;
  }
  ::fsync(dir.fd());  // as publish_file does; a filesystem refusing it still has the rename
  return ok();
}

}  // namespace

Result<void> CacheLayout::link_snapshot_file(const RepoId& repo, std::string_view commit,
                                             std::string_view repo_path,
                                             std::string_view etag) const {
  if (commit.empty() || repo_path.empty() || etag.empty()) {
    return unsafe("empty commit, repo path or etag", repo_path);
  }
  if (auto c = check_other_names(commit, repo_path, etag, {}); !c) return c;
  const fs::path blob = blob_path(repo, etag);
  const fs::path target = snapshot_file(repo, commit, repo_path);
  const std::string link = snapshot_link_target(repo_path, etag);
  auto digest = FileDigest::from_etag(etag);
  if (!digest) return std::move(digest).error();

  std::error_code ec;
  // Already in place: do nothing at all, so a read-only cache that is complete keeps working.
  if (auto existing = read_link(target); existing && *existing == link) {
    if (fs::is_regular_file(target, ec)) return ok();
  }
  const bool copy_mode = !symlinks_supported(root_, env_);
  if (copy_mode && fs::is_regular_file(fs::symlink_status(target, ec)) &&
      check_file(target, *digest)) {
    return ok();
  }
  if (!fs::is_regular_file(blob, ec)) {
    return make_error(ErrorCode::io, "blob is not in the cache", blob.string(),
                      "download the file before linking it into a snapshot");
  }
  // Every directory from the cache root to the file's is opened without following links and the
  // missing ones are made relative to them: a link planted anywhere on the way
  // (snapshots/<sha>/build -> /etc) is refused, never followed.
  auto dir = CacheDir::open_below(root_, target.parent_path(), true);
  if (!dir) return std::move(dir).error();
  const std::string name = target.filename().string();
  if (copy_mode) {
    auto blobs = CacheDir::open_below(root_, blob.parent_path(), false);
    if (!blobs) return std::move(blobs).error();
    return copy_into_place(*blobs, etag, *dir, name);
  }

  // A new link under a temp name, then rename over whatever is there (a stale link or file).
  if (auto r = dir->replace_symlink(name, link); !r) return r;
  // No directory fsync: a link lost to a power cut only points at a verified blob, and the next
  // download (whose warm check looks for every snapshot entry) makes it again. One fsync per
  // link was a large share of a cold download's time.
  return ok();
}

std::vector<std::string> CacheLayout::list_repos() const {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(root_, ec);
  if (ec) return out;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("kernels--", 0) != 0) continue;
    const std::string rest = name.substr(9);
    const auto sep = rest.find("--");
    if (sep == std::string::npos) continue;
    std::string id = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
    std::error_code e2;
    if (is_repo_id(id) && entry.is_directory(e2)) out.push_back(std::move(id));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool symlinks_supported(const fs::path& dir, const EnvLookup& env) {
  if (env_truthy(env, "HF_HUB_DISABLE_SYMLINKS")) return false;
  static std::mutex mu;
  static std::map<std::string, bool> probed;
  std::error_code ec;
  fs::path key = fs::absolute(dir, ec);
  if (ec) key = dir;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = probed.find(key.string()); it != probed.end()) return it->second;
  fs::create_directories(key, ec);
  const fs::path probe = unique_temp_path(key / ".symlink-probe");
  std::error_code create_ec;
  fs::create_symlink("target-of-probe", probe, create_ec);
  if (!create_ec) fs::remove(probe, ec);
  // A read-only cache cannot be probed; symlinks are then assumed (the hub's own default), and
  // nothing will be written anyway.
  const bool result = !create_ec || create_ec == std::errc::read_only_file_system ||
                      create_ec == std::errc::permission_denied;
  probed.emplace(key.string(), result);
  return result;
}

}  // namespace kernels
