// Reading packs. The archive is hostile until proven otherwise: only tar (pax/ustar) with zstd or
// no compression is read; only regular files and directories with safe relative paths are
// extracted, into a staging directory inside the destination; every file is verified against the
// caller's lockfile; only then is anything moved to where a reader would look. The staging
// directory is made and used only through directory fds (cache_dir.h): every staged file and
// directory is created, read, verified, published and removed relative to the fd of the
// directory above it, never by path, so a link or FIFO planted there is refused (exit 11), never
// followed or waited on.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "hub_protocol.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/repo_tree.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "pack/pack.h"
#include "pack/pack_paths.h"

namespace kernels::cli {

namespace fs = std::filesystem;

namespace {

Error refused(const fs::path& archive_path, std::string what) {
  return make_error(ErrorCode::unsafe, std::move(what), archive_path.string(),
                    "the archive was refused and nothing was unpacked; make it again with "
                    "`kernels pack` from a trusted cache or mirror");
}

Error mismatch(std::string what, std::string object) {
  return make_error(ErrorCode::integrity_mismatch, std::move(what), std::move(object),
                    "the archive does not match this project's kernels.lock; nothing was "
                    "unpacked");
}

// A filesystem failure while unpacking, with its cause and what to do: a full disk is the usual.
Error staging_error(const std::string& what, const fs::path& path, int err) {
  std::string hint = "check the destination directory";
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    hint =
        "free disk space (the archive's content needs room in the destination), or unpack "
        "with --to onto another filesystem";
  } else if (err == EACCES || err == EPERM || err == EROFS) {
    hint = "check that the destination is writable by this user";
  }
  return make_error(ErrorCode::io, what + ": " + std::strerror(err), path.string(), hint);
}

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

// Deletes the staging directory `name` of `destination` on every path out of unpack(), relative
// to the destination's fd and never following a link (CacheDir::remove_all).
struct StagingRemover {
  const CacheDir& destination;
  std::string name;
  ~StagingRemover() { (void)destination.remove_all(name); }
};

// A staged file: the staging directory holding it, walked from the staging fd without following
// links (made when `create`), and its name there.
struct Staged {
  CacheDir dir;
  std::string name;
};

Result<Staged> staged(const CacheDir& staging, const std::string& name, bool create) {
  const fs::path p(name);
  auto dir = staging.subdir(p.parent_path(), create);
  if (!dir) return std::move(dir).error();
  return Staged{std::move(*dir), p.filename().string()};
}

// A name that could mean something else on another OS (drive letters) is refused everywhere.
bool is_portable_entry_name(std::string_view name) {
  return is_safe_repo_path(name) && !(name.size() >= 2 && name[1] == ':');
}

bool is_short_name_alias(std::string_view part) {  // "KERNEL~1.CUB", "PROGRA~1"
  const auto dot = part.find('.');
  const std::string_view base = part.substr(0, dot);
  const std::string_view ext = dot == std::string_view::npos ? "" : part.substr(dot + 1);
  const auto tilde = base.find('~');
  if (tilde == std::string_view::npos || tilde == 0 || tilde > 6 || ext.size() > 3 ||
      ext.find('.') != std::string_view::npos) {
    return false;
  }
  const std::string_view digits = base.substr(tilde + 1);
  return !digits.empty() && digits.size() <= 6 && digits.front() != '0' &&
         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Two names that are different files here can be one file on macOS or Windows (case, Unicode
// normalisation, ignorable code points, trailing dots and spaces, 8.3 short names); there the
// second would silently replace the first. Such archives are refused on every OS, like drive
// letters. Returns the folded key of each path prefix ("A", "A/b.cubin"), or why the name is
// not portable.
Result<std::vector<std::string>> portable_keys(std::string_view name,
                                               const fs::path& archive_path) {
  std::vector<std::string> keys;
  std::string key;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view part = name.substr(start, end - start);
    if (!part.empty() && (part.back() == '.' || part.back() == ' ')) {
      return refused(archive_path, "entry \"" + std::string(name) +
                                       "\" has a name ending in a dot or a space (the same "
                                       "file as the name without it on Windows)");
    }
    if (is_short_name_alias(part)) {
      return refused(archive_path, "entry \"" + std::string(name) +
                                       "\" looks like a Windows 8.3 short name, an alias of "
                                       "another file there");
    }
    utf8proc_uint8_t* folded = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(part.data()),
                                static_cast<utf8proc_ssize_t>(part.size()), &folded,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                                               UTF8PROC_CASEFOLD |
                                                               UTF8PROC_IGNORE));
    if (n < 0) {
      std::free(folded);
      return refused(archive_path,
                     "entry \"" + std::string(name.substr(0, 200)) + "\" is not valid UTF-8");
    }
    if (!key.empty()) key += '/';
    key.append(reinterpret_cast<const char*>(folded), static_cast<std::size_t>(n));
    std::free(folded);
    keys.push_back(key);
    start = end + 1;
  }
  return keys;
}

struct Extracted {
  std::map<std::string, std::uint64_t> files;  // relative path -> size
};

Result<Extracted> extract_to_staging(const fs::path& archive_path, const CacheDir& staging,
                                     const PackLimits& limits) {
  std::unique_ptr<archive, ReadDeleter> a(archive_read_new());
  if (!a) return make_error(ErrorCode::internal, "out of memory", archive_path.string());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_zstd(a.get());
  if (archive_read_open_filename(a.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    const char* msg = archive_error_string(a.get());
    return refused(archive_path,
                   std::string("not a tar or tar.zst archive: ") + (msg ? msg : "unreadable"));
  }
  Extracted out;
  std::set<std::string> seen;
  std::set<std::string> dirs;  // every directory the entries so far made or implied
  std::map<std::string, std::string> portable;  // folded key -> the path (prefix) that took it
  std::uint64_t total = 0, entries = 0;
  archive_entry* e = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      const char* msg = archive_error_string(a.get());
      return refused(archive_path, std::string("malformed archive: ") + (msg ? msg : "bad header"));
    }
    if (++entries > limits.max_entries) {
      return refused(archive_path, "more than " + std::to_string(limits.max_entries) + " entries");
    }
    const char* raw = archive_entry_pathname(e);
    std::string name = raw ? raw : "";
    const auto type = archive_entry_filetype(e);
    if (type == AE_IFDIR && !name.empty() && name.back() == '/') name.pop_back();
    if (name.size() > limits.max_path_bytes || !is_portable_entry_name(name)) {
      return refused(archive_path, "unsafe entry name \"" + name.substr(0, 200) +
                                       "\": only relative paths without \"..\", \".\", "
                                       "backslashes, drive letters or control characters");
    }
    if (archive_entry_hardlink(e) != nullptr) {
      return refused(archive_path, "entry \"" + name + "\" is a hard link; links are not allowed");
    }
    if (type != AE_IFREG && type != AE_IFDIR) {
      const char* kind = type == AE_IFLNK                       ? "a symbolic link"
                         : type == AE_IFCHR || type == AE_IFBLK ? "a device file"
                         : type == AE_IFIFO                     ? "a FIFO"
                         : type == AE_IFSOCK                    ? "a socket"
                                                                : "not a regular file";
      return refused(archive_path, "entry \"" + name + "\" is " + kind +
                                       "; only regular files and directories are allowed");
    }
    if (archive_entry_sparse_count(e) > 0) {
      return refused(archive_path,
                     "entry \"" + name + "\" is a sparse file; sparse entries are not allowed");
    }
    if (!seen.insert(name).second) {
      return refused(archive_path, "entry \"" + name + "\" appears twice");
    }
    Result<std::vector<std::string>> keys = portable_keys(name, archive_path);
    if (!keys) return std::move(keys).error();
    for (std::size_t i = 0, slash = 0; i < keys->size(); ++i) {
      slash = name.find('/', i == 0 ? 0 : slash + 1);
      const std::string prefix = name.substr(0, slash);
      auto [it, fresh] = portable.emplace((*keys)[i], prefix);
      if (!fresh && it->second != prefix) {
        return refused(archive_path, "\"" + it->second + "\" and \"" + prefix +
                                         "\" are one name on case-insensitive or "
                                         "Unicode-normalising filesystems (macOS, Windows)");
      }
    }
    // A name that is a file and a directory ("a" and "a/b", either order) is refused here, so
    // that whatever the staging walk below meets in its way was planted, not sent.
    for (std::size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      const std::string parent = name.substr(0, slash);
      if (out.files.count(parent)) {
        return refused(archive_path,
                       "entry \"" + name + "\" is inside \"" + parent + "\", which is a file");
      }
      dirs.insert(parent);
    }
    if (type == AE_IFDIR) {  // (a file of the same name already "appears twice")
      dirs.insert(name);
      auto made = staging.subdir(name, true);
      if (!made) return std::move(made).error();
      continue;
    }
    if (dirs.count(name)) {
      return refused(archive_path, "entry \"" + name + "\" is a file and a directory");
    }
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
      return refused(archive_path, "entry \"" + name + "\" has no valid size");
    }
    const auto declared = static_cast<std::uint64_t>(archive_entry_size(e));
    if (declared > limits.max_total_bytes - std::min(total, limits.max_total_bytes)) {
      return refused(archive_path, "content exceeds the limit of " +
                                       std::to_string(limits.max_total_bytes) + " bytes");
    }
    auto at = staged(staging, name, true);
    if (!at) return std::move(at).error();
    const fs::path target = at->dir.path() / at->name;
    auto opened = at->dir.open_regular(at->name, O_WRONLY | O_CREAT | O_EXCL);
    if (!opened) return std::move(opened).error();
    const int fd = *opened;
    std::uint64_t written = 0;
    Result<void> r = ok();
    for (;;) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      const int d = archive_read_data_block(a.get(), &buf, &size, &offset);
      if (d == ARCHIVE_EOF) break;
      if (d != ARCHIVE_OK) {
        const char* msg = archive_error_string(a.get());
        r = refused(archive_path,
                    "truncated or corrupt data in \"" + name + "\": " + (msg ? msg : "read error"));
        break;
      }
      if (static_cast<std::uint64_t>(offset) != written || written + size > declared) {
        r = refused(archive_path, "entry \"" + name +
                                      "\" holds more data than its header says "
                                      "(or sparse data)");
        break;
      }
      if (const int err = write_all(fd, buf, size); err != 0) {
        r = staging_error("cannot write to the staging directory", target, err);
        break;
      }
      written += size;
    }
    ::close(fd);
    if (!r) return r.error();
    if (written != declared) {
      return refused(archive_path, "entry \"" + name + "\" is truncated");
    }
    total += written;
    out.files.emplace(name, written);
  }
  return out;
}

// What verification allows to become visible, relative path -> what kind of file it is.
struct Verified {
  std::set<std::string> files;
  struct Link {
    std::string repo, commit, path, etag;
  };
  std::vector<Link> links;  // cache kind: snapshot links to create after publishing
};

// Opens a staged file for reading through the staging fd: a link, FIFO or device planted in its
// place is exit 11, never followed or waited on. The fd is the caller's to close.
Result<int> open_staged(const CacheDir& staging, const std::string& name) {
  auto at = staged(staging, name, false);
  if (!at) return std::move(at).error();
  return at->dir.open_regular(at->name, O_RDONLY);
}

Result<std::string> read_staged(const CacheDir& staging, const std::string& name) {
  auto fd = open_staged(staging, name);
  if (!fd) return std::move(fd).error();
  FdCloser closer{*fd};
  std::string s;
  if (const int err = read_to_end(*fd, s, s.max_size()); err != 0)
    return staging_error("cannot read staged file", staging.path() / name, err);
  return s;
}

Result<void> check_staged(const CacheDir& staging, const std::string& name,
                          const FileDigest& digest) {
  auto fd = open_staged(staging, name);
  if (!fd) return std::move(fd).error();
  FdCloser closer{*fd};
  return check_fd(*fd, digest, staging.path() / name);
}

// Verifies the files of every locked variant that the pack holds; each repo must bring at least
// one complete variant. `file_for(entry)` names the staged file holding an entry's content.
template <class FileFor>
Result<void> verify_variants(const KernelLock& k, const RepoTree& tree, const CacheDir& staging,
                             const Extracted& x, const fs::path& archive_path, Verified& v,
                             FileFor&& file_for, bool link) {
  const auto hashes = compute_variant_hashes(tree);
  int complete = 0;
  for (const auto& [variant, locked] : k.variants) {
    const std::vector<TreeEntry> files = variant_files(tree, variant);
    std::size_t present = 0;
    for (const TreeEntry& e : files) present += x.files.count(file_for(e));
    if (present == 0) continue;
    if (present != files.size()) {
      return mismatch("variant " + variant + " is incomplete in the archive (" +
                          std::to_string(present) + " of " + std::to_string(files.size()) +
                          " files)",
                      archive_path.string());
    }
    auto h = hashes.find(variant);
    if (h == hashes.end() || h->second.hash != locked.hash) {
      return mismatch("variant " + variant + " of " + k.repo_id + " hashes to " +
                          (h == hashes.end() ? std::string("nothing") : h->second.hash) +
                          ", the lock says " + locked.hash,
                      archive_path.string());
    }
    for (const TreeEntry& e : files) {
      const std::string name = file_for(e);
      if (auto r = check_staged(staging, name, e.digest()); !r) {
        if (r.error().code != ErrorCode::integrity_mismatch) return r;
        return mismatch("file " + e.path + " of " + k.repo_id + ": " + r.error().what,
                        archive_path.string());
      }
      v.files.insert(name);
      if (link) v.links.push_back({k.repo_id, k.sha, e.path, e.digest().hex});
    }
    ++complete;
  }
  if (complete == 0) {
    return mismatch("the archive holds no complete locked variant of " + k.repo_id + "@" + k.sha,
                    archive_path.string());
  }
  return ok();
}

Result<void> verify_cache_pack(const Lockfile& lock, const CacheDir& staging, const Extracted& x,
                               const fs::path& archive_path, Verified& v) {
  for (const auto& k : lock.kernels) {
    const std::string folder = repo_folder_name(k.repo_id);
    const std::string tree_name = folder + "/trees/" + k.sha + ".json";
    if (!x.files.count(tree_name)) {
      return mismatch("the archive has no tree for " + k.repo_id + "@" + k.sha,
                      archive_path.string());
    }
    auto text = read_staged(staging, tree_name);
    if (!text) return text.error();
    auto tree = parse_tree_cache(*text, archive_path.string() + ":" + tree_name);
    if (!tree) return tree.error();
    v.files.insert(tree_name);
    auto r = verify_variants(
        k, *tree, staging, x, archive_path, v,
        [&](const TreeEntry& e) { return folder + "/blobs/" + e.digest().hex; }, true);
    if (!r) return r;
    for (const auto& [name, size] : x.files) {
      if (name.rfind(folder + "/refs/", 0) != 0) continue;
      auto ref = read_staged(staging, name);
      if (!ref) return ref.error();
      if (*ref != k.sha) {
        return mismatch("ref " + name + " does not point at the locked commit " + k.sha,
                        archive_path.string());
      }
      v.files.insert(name);
    }
  }
  return ok();
}

Result<void> verify_mirror_pack(const Lockfile& lock, const CacheDir& staging, const Extracted& x,
                                const fs::path& archive_path, Verified& v) {
  std::set<std::string> locked_shas;
  for (const auto& k : lock.kernels) locked_shas.insert(k.sha);
  for (const auto& k : lock.kernels) {
    const MirrorPaths paths(k.repo_id);
    if (!x.files.count(paths.tree(k.sha))) {
      return mismatch("the archive has no tree listing for " + k.repo_id + "@" + k.sha,
                      archive_path.string());
    }
    auto text = read_staged(staging, paths.tree(k.sha));
    if (!text) return text.error();
    auto tree = parse_tree_listing(*text, archive_path.string() + ":" + paths.tree(k.sha));
    if (!tree) return tree.error();
    v.files.insert(paths.tree(k.sha));
    auto r = verify_variants(
        k, *tree, staging, x, archive_path, v,
        [&](const TreeEntry& e) { return paths.resolve(k.sha, e.path); }, false);
    if (!r) return r;
    if (x.files.count(paths.refs())) {
      auto refs = read_staged(staging, paths.refs());
      if (!refs) return refs.error();
      auto doc = refs ? nlohmann::json::parse(*refs, nullptr, false) : nlohmann::json();
      if (!doc.is_object() || !doc.contains("branches") || !doc["branches"].is_array()) {
        return mismatch("refs of " + k.repo_id + " is not a refs listing", archive_path.string());
      }
      v.files.insert(paths.refs());
    }
    for (const auto& [name, size] : x.files) {
      if (name.rfind(paths.revision_dir() + "/", 0) != 0) continue;
      auto rev = read_staged(staging, name);
      if (!rev) return rev.error();
      auto doc = rev ? nlohmann::json::parse(*rev, nullptr, false) : nlohmann::json();
      if (!doc.is_object() || !doc.contains("sha") || !doc["sha"].is_string() ||
          !locked_shas.count(doc["sha"].get<std::string>())) {
        return mismatch("revision file " + name + " does not name a locked commit",
                        archive_path.string());
      }
      v.files.insert(name);
    }
  }
  // An organisation overview of a locked repo's organisation: a JSON object, as the Hub answers
  // (what it says is read by `kernels lock`'s trusted-publisher check, not here).
  for (const auto& k : lock.kernels) {
    const std::string name = hub::organization_overview_path(
        k.repo_id.substr(0, k.repo_id.find('/')));
    if (!x.files.count(name) || v.files.count(name)) continue;
    auto text = read_staged(staging, name);
    if (!text) return text.error();
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_object()) {
      return mismatch(name + " is not an organisation overview (a JSON object)",
                      archive_path.string());
    }
    v.files.insert(name);
  }
  return ok();
}

Result<PackKind> parse_pack_manifest(const std::string& text, const fs::path& archive_path) {
  const auto manifest = nlohmann::json::parse(text, nullptr, false);
  if (!manifest.is_object() || manifest.value("format_version", 0) != kPackFormatVersion ||
      !manifest.contains("kind") || !manifest["kind"].is_string()) {
    return make_error(ErrorCode::lockfile_invalid,
                      "kernels-pack.json must be {\"format_version\": 1, \"kind\": ...}",
                      archive_path.string(), "this archive was made by another version of kernels");
  }
  const std::string kind = manifest["kind"];
  if (kind == "cache") return PackKind::cache;
  if (kind == "mirror") return PackKind::mirror;
  return make_error(ErrorCode::lockfile_invalid, "unknown pack kind \"" + kind + "\"",
                    archive_path.string());
}

}  // namespace

Result<PackKind> read_pack_kind(const fs::path& archive_path) {
  std::unique_ptr<archive, ReadDeleter> a(archive_read_new());
  if (!a) return make_error(ErrorCode::internal, "out of memory", archive_path.string());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_entry* e = nullptr;
  if (archive_read_open_filename(a.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK ||
      archive_read_next_header(a.get(), &e) != ARCHIVE_OK) {
    return refused(archive_path, "not a tar or tar.zst archive");
  }
  const char* name = archive_entry_pathname(e);
  if (!name || kPackManifestName != name || archive_entry_filetype(e) != AE_IFREG ||
      archive_entry_size(e) <= 0 || archive_entry_size(e) > 4096) {
    return refused(archive_path,
                   "no kernels-pack.json first: not an archive made by `kernels pack`");
  }
  std::string text(static_cast<std::size_t>(archive_entry_size(e)), '\0');
  if (archive_read_data(a.get(), text.data(), text.size()) !=
      static_cast<la_ssize_t>(text.size())) {
    return refused(archive_path, "truncated kernels-pack.json");
  }
  return parse_pack_manifest(text, archive_path);
}

Result<PackSummary> unpack(const fs::path& archive_path, const fs::path& destination,
                           const Lockfile& lock, const PackLimits& limits,
                           const UnpackProbe& probe) {
  std::error_code ec;
  if (!fs::is_regular_file(archive_path, ec)) {
    return make_error(ErrorCode::usage, "not a regular file", archive_path.string(),
                      "give the path of an archive made by `kernels pack`");
  }
  fs::create_directories(destination, ec);
  if (ec) {
    return make_error(ErrorCode::io, "cannot create destination: " + ec.message(),
                      destination.string());
  }
  // The destination itself may be a link the user made, as a cache root may (cache_safety.h);
  // everything below it is reached from this fd.
  auto dest = CacheDir::open(destination, {}, false);
  if (!dest) return std::move(dest).error();
  const std::string staging_name = unique_temp_path(".kernels-unpack").string();
  if (::mkdirat(dest->fd(), staging_name.c_str(), 0700) != 0) {
    return staging_error("cannot create the staging directory", destination / staging_name, errno);
  }
  const StagingRemover remover{*dest, staging_name};
  auto staging = dest->subdir(staging_name, false);
  if (!staging) return std::move(staging).error();
  if (probe) probe(UnpackStage::staging_created, staging->path());

  auto extracted = extract_to_staging(archive_path, *staging, limits);
  if (!extracted) return extracted.error();
  if (probe) probe(UnpackStage::extracted, staging->path());

  if (!extracted->files.count(std::string(kPackManifestName))) {
    return refused(archive_path, "no kernels-pack.json: not an archive made by `kernels pack`");
  }
  auto manifest_text = read_staged(*staging, std::string(kPackManifestName));
  if (!manifest_text) return manifest_text.error();
  auto kind_result = parse_pack_manifest(*manifest_text, archive_path);
  if (!kind_result) return kind_result.error();
  const PackKind kind = *kind_result;

  Verified verified;
  verified.files.insert(std::string(kPackManifestName));
  auto v = kind == PackKind::cache
               ? verify_cache_pack(lock, *staging, *extracted, archive_path, verified)
               : verify_mirror_pack(lock, *staging, *extracted, archive_path, verified);
  if (!v) return v.error();
  for (const auto& [name, size] : extracted->files) {
    if (!verified.files.count(name)) {
      return refused(archive_path, "entry \"" + name + "\" is not referenced by kernels.lock");
    }
  }

  // Publish: content-addressed blobs and file bytes first, listings and refs last, so a reader
  // that sees a ref or a tree finds everything it points at.
  PackSummary summary{kind, 0, 0};
  std::vector<std::pair<int, std::string>> order;
  for (const auto& [name, size] : extracted->files) {
    if (name == kPackManifestName) continue;
    const bool listing = name.find("/refs") != std::string::npos ||
                         name.find("/trees/") != std::string::npos ||
                         name.find("/tree/") != std::string::npos ||
                         name.find("/revision/") != std::string::npos;
    order.emplace_back(listing ? 1 : 0, name);
    summary.bytes += size;
  }
  std::sort(order.begin(), order.end());
  for (const auto& [_, name] : order) {
    // From the staged file's directory into the destination's, both walked from their fds
    // without following links: a link planted in the cache or mirror is refused (exit 11),
    // never written through.
    auto from = staged(*staging, name, false);
    if (!from) return std::move(from).error();
    auto dir = dest->subdir(fs::path(name).parent_path(), true);
    if (!dir) return std::move(dir).error();
    if (auto r = dir->publish_from(from->dir, from->name, from->name); !r) return r.error();
    ++summary.files;
  }
  if (kind == PackKind::cache) {
    const CacheLayout cache(destination);
    for (const auto& l : verified.links) {
      if (auto r = cache.link_snapshot_file(l.repo, l.commit, l.path, l.etag); !r) return r.error();
    }
  }
  return summary;
}

}  // namespace kernels::cli
