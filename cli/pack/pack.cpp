// Writing packs: tar (pax) + zstd through libarchive, regular files only, content verified as it
// is read from the cache or mirror.
#include "pack/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "hub_protocol.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/repo_tree.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "pack/pack_paths.h"

namespace kernels::cli {

namespace fs = std::filesystem;

std::string_view pack_kind_name(PackKind kind) {
  return kind == PackKind::cache ? "cache" : "mirror";
}

namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

// Opens a file of the cache or mirror for reading. O_NONBLOCK and fstat before any read: a FIFO
// planted there would otherwise block `kernels pack` forever, and a device could feed endless
// bytes.
Result<int> open_regular_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return make_error(ErrorCode::offline_not_cached, "file is missing", path.string(),
                        "run `kernels download` (or `kernels verify --repair`)");
    }
    return make_error(ErrorCode::io, std::string("cannot open: ") + std::strerror(err),
                      path.string());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::unsafe, "not a regular file", path.string(),
                      "remove it and run `kernels verify --repair`");
  }
  return fd;
}

class PackWriter {
 public:
  static Result<PackWriter> open(const fs::path& temp_path) {
    std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
    if (!a || archive_write_add_filter_zstd(a.get()) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
        archive_write_open_filename(a.get(), temp_path.c_str()) != ARCHIVE_OK) {
      return make_error(ErrorCode::io,
                        std::string("cannot create archive: ") +
                            (a ? archive_error_string(a.get()) ? archive_error_string(a.get())
                                                               : "unknown error"
                               : "out of memory"),
                        temp_path.string());
    }
    return PackWriter(std::move(a), temp_path);
  }

  Result<void> add_bytes(const std::string& name, std::string_view bytes) {
    return add(name, bytes.size(), [&](auto&& write) { return write(bytes.data(), bytes.size()); });
  }

  // Streams `source` into the archive as `name`, hashing it on the way: the archive only ever
  // holds bytes that matched `digest`.
  Result<void> add_verified_file(const std::string& name, const fs::path& source,
                                 const FileDigest& digest, std::uint64_t size) {
    // Content-addressed names repeat when two locked files share their bytes (one __init__.py in
    // two variants); unpack refuses an archive that holds a name twice, so it is written once.
    if (!written_.insert(name).second) return ok();
    auto fd = open_regular_file(source);
    if (!fd) return fd.error();
    const FdCloser closer{*fd};
    ContentDigest hasher(digest.kind, size);
    auto r = add(name, size, [&](auto&& write) -> Result<void> {
      std::vector<char> buf(1 << 20);
      std::uint64_t left = size;
      while (left > 0) {
        const ssize_t got = read_retrying(*fd, buf.data(),
                                          std::min<std::uint64_t>(left, buf.size()));
        if (got < 0) {
          return make_error(ErrorCode::io, std::string("cannot read: ") + std::strerror(errno),
                            source.string());
        }
        if (got == 0) break;
        const std::string_view chunk(buf.data(), static_cast<std::size_t>(got));
        hasher.update(chunk);
        if (auto w = write(buf.data(), chunk.size()); !w) return w;
        left -= chunk.size();
      }
      char extra = 0;
      if (left != 0 || ::read(*fd, &extra, 1) > 0) {
        return make_error(ErrorCode::integrity_mismatch,
                          "size differs from the tree (" + std::to_string(size) + " bytes)",
                          source.string(), "run `kernels verify --repair`");
      }
      return ok();
    });
    if (!r) return r;
    Result<std::string> actual = hasher.finish_hex();
    if (!actual) return actual.error();
    if (*actual != digest.hex) {
      return make_error(ErrorCode::integrity_mismatch,
                        "content hash " + *actual + " does not match " + digest.hex,
                        source.string(), "run `kernels verify --repair` before packing");
    }
    ++files_;
    bytes_ += size;
    return ok();
  }

  Result<void> close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) {
      return make_error(ErrorCode::io,
                        std::string("cannot finish archive: ") + archive_error_string(a_.get()),
                        path_.string());
    }
    return ok();
  }

  std::uint64_t files() const { return files_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  PackWriter(std::unique_ptr<archive, ArchiveDeleter> a, fs::path path)
      : a_(std::move(a)), path_(std::move(path)) {}

  template <class Body>
  Result<void> add(const std::string& name, std::uint64_t size, Body&& body) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    archive_entry_free);
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) {
      return make_error(ErrorCode::io,
                        std::string("cannot add entry: ") + archive_error_string(a_.get()), name);
    }
    auto write = [&](const void* data, std::size_t n) -> Result<void> {
      if (archive_write_data(a_.get(), data, n) != static_cast<la_ssize_t>(n)) {
        return make_error(ErrorCode::io,
                          std::string("cannot write entry data: ") + archive_error_string(a_.get()),
                          name);
      }
      return ok();
    };
    return body(write);
  }

  std::unique_ptr<archive, ArchiveDeleter> a_;
  fs::path path_;
  std::set<std::string> written_;
  std::uint64_t files_ = 0;
  std::uint64_t bytes_ = 0;
};

// Refs and listings: a few hundred bytes; more than 1 MiB is not a file `kernels` wrote.
Result<std::string> read_small_file(const fs::path& path) {
  auto fd = open_regular_file(path);
  if (!fd) return fd.error();
  const FdCloser closer{*fd};
  std::string s;
  const int err = read_to_end(*fd, s, 1u << 20);
  if (err == EFBIG) return make_error(ErrorCode::unsafe, "larger than 1 MiB", path.string());
  if (err != 0)
    return make_error(ErrorCode::io, std::string("cannot read: ") + std::strerror(err),
                      path.string());
  return s;
}

std::string pack_manifest(PackKind kind) {
  return nlohmann::json{{"format_version", kPackFormatVersion}, {"kind", pack_kind_name(kind)}}
      .dump();
}

template <class Fill>
Result<PackSummary> write_pack(PackKind kind, const fs::path& archive_path, Fill&& fill) {
  if (archive_path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(archive_path.parent_path(), ec);
  }
  const fs::path temp = unique_temp_path(archive_path);
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove(temp, ec);
  };
  auto writer = PackWriter::open(temp);
  if (!writer) return writer.error();
  Result<void> r = writer->add_bytes(std::string(kPackManifestName), pack_manifest(kind));
  if (r) r = fill(*writer);
  if (r) r = writer->close();
  if (r) r = publish_file(temp, archive_path);
  if (!r) {
    cleanup();
    return r.error();
  }
  return PackSummary{kind, writer->files(), writer->bytes()};
}

}  // namespace

Result<PackSummary> pack_cache(const fs::path& cache_root, const Lockfile& lock,
                               const fs::path& archive_path) {
  const CacheLayout cache(cache_root);
  return write_pack(PackKind::cache, archive_path, [&](PackWriter& w) -> Result<void> {
    for (const auto& k : lock.kernels) {
      auto tree = cache.read_tree(k.repo_id, k.sha);
      if (!tree) {
        return make_error(ErrorCode::offline_not_cached,
                          "not in the cache: " + k.repo_id + "@" + k.sha,
                          cache.tree_path(k.repo_id, k.sha).string(),
                          "run `kernels download` for this project first");
      }
      const std::string folder = repo_folder_name(k.repo_id);
      if (auto r = w.add_bytes(folder + "/trees/" + k.sha + ".json", serialize_tree_cache(*tree));
          !r) {
        return r;
      }
      std::error_code ec;
      for (const auto& ref :
           fs::recursive_directory_iterator(cache.repo_dir(k.repo_id) / "refs", ec)) {
        if (!ref.is_regular_file()) continue;
        auto text = read_small_file(ref.path());
        if (text && *text == k.sha) {
          const auto rel = fs::relative(ref.path(), cache.repo_dir(k.repo_id)).generic_string();
          if (auto r = w.add_bytes(folder + "/" + rel, *text); !r) return r;
        }
      }
      int packed_variants = 0;
      for (const auto& [variant, _] : k.variants) {
        const auto files = variant_files(*tree, variant);
        bool present = !files.empty();
        for (const TreeEntry& e : files) {
          present = present && fs::exists(cache.snapshot_file(k.repo_id, k.sha, e.path), ec);
        }
        if (!present) continue;
        for (const TreeEntry& e : files) {
          const FileDigest d = e.digest();
          if (auto r = w.add_verified_file(folder + "/blobs/" + d.hex,
                                           cache.snapshot_file(k.repo_id, k.sha, e.path), d,
                                           e.content_size());
              !r) {
            return r;
          }
        }
        ++packed_variants;
      }
      if (packed_variants == 0) {
        return make_error(ErrorCode::offline_not_cached,
                          "no locked variant of " + k.repo_id + " is complete in the cache",
                          cache.snapshot_dir(k.repo_id, k.sha).string(),
                          "run `kernels download` (or `kernels download --all-variants`) first");
      }
    }
    return ok();
  });
}

Result<PackSummary> pack_mirror(const fs::path& mirror_dir, const Lockfile& lock,
                                const fs::path& archive_path) {
  return write_pack(PackKind::mirror, archive_path, [&](PackWriter& w) -> Result<void> {
    for (const auto& k : lock.kernels) {
      const MirrorPaths paths(k.repo_id);
      auto tree_text = read_small_file(mirror_dir / paths.tree(k.sha));
      if (!tree_text) {
        return make_error(ErrorCode::offline_not_cached,
                          "the mirror has no tree for " + k.repo_id + "@" + k.sha,
                          (mirror_dir / paths.tree(k.sha)).string(),
                          "run `kernels mirror --to " + mirror_dir.string() + "` first");
      }
      auto tree = parse_tree_listing(*tree_text, (mirror_dir / paths.tree(k.sha)).string());
      if (!tree) return tree.error();
      if (auto r = w.add_bytes(paths.tree(k.sha), *tree_text); !r) return r;
      std::error_code ec;
      if (auto refs = read_small_file(mirror_dir / paths.refs())) {
        if (auto r = w.add_bytes(paths.refs(), *refs); !r) return r;
      }
      for (const auto& rev : fs::directory_iterator(mirror_dir / paths.revision_dir(), ec)) {
        auto text = read_small_file(rev.path());
        if (!text) continue;
        auto doc = nlohmann::json::parse(*text, nullptr, false);
        if (doc.is_object() && doc.value("sha", "") == k.sha) {
          const std::string name = paths.revision(rev.path().filename().string());
          if (auto r = w.add_bytes(name, *text); !r) return r;
        }
      }
      int packed_variants = 0;
      for (const auto& [variant, _] : k.variants) {
        const auto files = variant_files(*tree, variant);
        bool present = !files.empty();
        for (const TreeEntry& e : files) {
          present = present && fs::exists(mirror_dir / paths.resolve(k.sha, e.path), ec);
        }
        if (!present) continue;
        for (const TreeEntry& e : files) {
          if (auto r = w.add_verified_file(paths.resolve(k.sha, e.path),
                                           mirror_dir / paths.resolve(k.sha, e.path), e.digest(),
                                           e.content_size());
              !r) {
            return r;
          }
        }
        ++packed_variants;
      }
      if (packed_variants == 0) {
        return make_error(ErrorCode::offline_not_cached,
                          "no locked variant of " + k.repo_id + " is complete in the mirror",
                          mirror_dir.string(), "run `kernels mirror` for this project first");
      }
    }
    // The organisations' overviews `kernels mirror` copied (the trusted-publisher check of a
    // `kernels lock` against the unpacked mirror reads them).
    std::set<std::string> orgs;
    for (const auto& k : lock.kernels) orgs.insert(k.repo_id.substr(0, k.repo_id.find('/')));
    for (const std::string& org : orgs) {
      const std::string name = hub::organization_overview_path(org);
      if (auto overview = read_small_file(mirror_dir / name)) {
        if (auto r = w.add_bytes(name, *overview); !r) return r;
      }
    }
    return ok();
  });
}

}  // namespace kernels::cli
