#include "kernels/lockfile/cache_safety.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

namespace kernels {
namespace {

namespace fs = std::filesystem;

std::string user_name(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) return pw.pw_name;
  return "uid " + std::to_string(uid);
}

// A group named like the user that owns the file and holding no one else: writable by the
// group means writable by that user only (the user-private-group scheme, umask 002).
bool is_private_group(gid_t gid, uid_t owner) {
  std::vector<char> buf(65536);
  group gr{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) != 0 || !found) return false;
  const std::string owner_name = user_name(owner);
  if (owner_name != gr.gr_name) return false;
  for (char** member = gr.gr_mem; member && *member; ++member) {
    if (owner_name != *member) return false;
  }
  return true;
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

Error unsafe_dir(const fs::path& path, const std::string& why, const std::string& fix) {
  return make_error(ErrorCode::unsafe, "unsafe cache permissions: " + why, path.string(),
                    fix +
                        "; or, if this cache is shared on purpose and every user who can write "
                        "it is trusted, set KERNELS_ALLOW_SHARED_CACHE=1");
}

// `follow`: the cache root may itself be a symlink the user made (~/.cache -> /data/cache);
// below it, a symlink in place of one of our directories was planted.
Result<void> check_dir(const fs::path& path, bool follow) {
  struct stat st {};
  if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return ok();
  if (S_ISLNK(st.st_mode)) {
    return unsafe_dir(path, "a symbolic link where the cache has a directory",
                      "remove it (`rm '" + path.string() + "'`); the next download recreates it");
  }
  if (!S_ISDIR(st.st_mode)) {
    return unsafe_dir(path, "not a directory", "remove it; the next download recreates it");
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0) {
    return unsafe_dir(path,
                      "owned by " + user_name(st.st_uid) + ", not by " + user_name(me) + " or root",
                      "use a cache of your own (KERNELS_CACHE or --cache-dir), or have its owner "
                      "remove it");
  }
  const bool world = (st.st_mode & S_IWOTH) != 0;
  const bool group = (st.st_mode & S_IWGRP) != 0 && !is_private_group(st.st_gid, st.st_uid);
  if (world || group) {
    return unsafe_dir(path,
                      std::string("writable by ") + (world ? "every user" : "its group") +
                          " (mode " + octal_mode(st.st_mode) + ")",
                      "run `chmod go-w '" + path.string() + "'`");
  }
  return ok();
}

std::vector<fs::path> subdirectories(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    out.push_back(it->path());
  }
  return out;
}

}  // namespace

Result<void> check_cache_permissions(const CacheLayout& cache, const EnvLookup& env) {
  if (env_truthy(env, "KERNELS_ALLOW_SHARED_CACHE")) return ok();
  const fs::path& root = cache.root();
  if (auto r = check_dir(root, true); !r) return r;
  const fs::path locks = root / ".locks";
  if (auto r = check_dir(locks, false); !r) return r;
  for (const fs::path& d : subdirectories(locks)) {
    if (auto r = check_dir(d, false); !r) return r;
  }
  // Each project's kept lock: the loader reads these too (cache.h).
  const fs::path projects = root / ".kernels-projects";
  if (auto r = check_dir(projects, false); !r) return r;
  for (const fs::path& d : subdirectories(projects)) {
    if (auto r = check_dir(d, false); !r) return r;
  }
  for (const std::string& repo_id : cache.list_repos()) {
    const fs::path repo = cache.repo_dir(repo_id);
    if (auto r = check_dir(repo, false); !r) return r;
    for (const char* part : {"blobs", "snapshots", "refs", "trees"}) {
      if (auto r = check_dir(repo / part, false); !r) return r;
    }
    for (const fs::path& snapshot : subdirectories(repo / "snapshots")) {
      if (auto r = check_dir(snapshot, false); !r) return r;
    }
  }
  return ok();
}

}  // namespace kernels
