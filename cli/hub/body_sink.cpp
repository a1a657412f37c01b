#include "body_sink.h"
#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>
#include <vector>

namespace kernels::cli::hub {
namespace {

// A directory FileSink opened itself (no DownloadRequest::temp_dir) is held only for one call:
// a batch's sinks all live until its end, and one descriptor each would run into `ulimit -n`.
struct ReleaseOwnDir {
  std::optional<CacheDir>& dir;
  ~ReleaseOwnDir() { dir.reset(); }
};

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

struct ContentRange {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::optional<std::uint64_t> total;
};

// "bytes 100-999/1000" or "bytes 100-999/*".
std::optional<ContentRange> parse_content_range(std::string_view v) {
  if (v.substr(0, 6) != "bytes ") return std::nullopt;
  v.remove_prefix(6);
  auto dash = v.find('-');
  auto slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash)
    return std::nullopt;
  ContentRange r;
  if (!parse_u64(v.substr(0, dash), r.start) ||
      !parse_u64(v.substr(dash + 1, slash - dash - 1), r.end) || r.end < r.start)
    return std::nullopt;
  auto total = v.substr(slash + 1);
  if (total != "*") {
    std::uint64_t t = 0;
    if (!parse_u64(total, t)) return std::nullopt;
    r.total = t;
  }
  return r;
}

Result<void> refuse_content_encoding(const Headers& headers, const std::string& object) {
  auto encoding = header(headers, "content-encoding");
  if (!encoding) return ok();
  const std::string e = ascii_lower(*encoding);
  if (e.empty() || e == "identity") return ok();
  return make_error(ErrorCode::http_permanent,
                    "the server sent Content-Encoding: " + *encoding +
                        "; the bytes on the wire would not be the file's bytes",
                    object,
                    "serve files as-is, without compression (check the mirror's web server and "
                    "any proxy in between)");
}

}  // namespace

Result<std::uint64_t> MemorySink::begin_attempt() {
  body_.clear();
  return std::uint64_t{0};
}

Result<void> MemorySink::on_response(long, const Headers& headers) {
  body_.clear();
  if (auto refused = refuse_content_encoding(headers, object_); !refused) return refused;
  return ok();
}

Result<void> MemorySink::write(std::span<const std::uint8_t> bytes) {
  if (body_.size() + bytes.size() > max_bytes_) {
    return make_error(too_big_, "answer larger than " + std::to_string(max_bytes_) + " bytes",
                      object_, "check HF_ENDPOINT: the server sent far more than a Hub would");
  }
  body_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return ok();
}

FileSink::FileSink(const DownloadRequest& request, std::string object)
    : request_(request),
      object_(std::move(object)),
      name_(request.temp_path.filename().string()),
      etag_("\"" + request.digest.hex + "\"") {}

FileSink::~FileSink() { close_file(); }

void FileSink::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Error FileSink::io_error(std::string what, int err) {
  // The hint follows the cause: "Too many open files" is about `ulimit -n`, not the disk.
  const char* hint = err == EMFILE || err == ENFILE
                         ? "too many open files: raise `ulimit -n` or lower --jobs / KERNELS_JOBS"
                         : "check that the cache directory is writable and the disk is not full";
  return make_error(ErrorCode::io, what + ": " + std::strerror(err), request_.temp_path.string(),
                    hint);
}

void FileSink::discard() {
  ReleaseOwnDir release{own_dir_};
  close_file();
  if (auto dir = directory()) (*dir)->remove(name_);
  held_ = 0;
}

Result<const CacheDir*> FileSink::directory() {
  if (request_.temp_dir) return request_.temp_dir;
  if (!own_dir_) {
    const auto parent = request_.temp_path.has_parent_path() ? request_.temp_path.parent_path()
                                                             : std::filesystem::path(".");
    auto opened = CacheDir::open(parent, {}, true);
    if (!opened) return std::move(opened).error();
    own_dir_.emplace(std::move(*opened));
  }
  return &*own_dir_;
}

Result<void> FileSink::open_temp() {
  auto dir = directory();
  if (!dir) return std::move(dir).error();
  auto fd = (*dir)->open_regular(name_, O_RDWR | O_CREAT);
  if (!fd) return std::move(fd).error();
  fd_ = *fd;
  return ok();
}

Result<std::uint64_t> FileSink::hash_back(std::uint64_t size) {
  hasher_ = std::make_unique<ContentDigest>(request_.digest.kind, request_.size);
  std::vector<std::uint8_t> buffer(1 << 20);
  std::uint64_t done = 0;
  while (done < size) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - done));
    auto got = ::pread(fd_, buffer.data(), want, static_cast<off_t>(done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read back the partial download", errno);
    }
    if (got == 0) break;
    hasher_->update({buffer.data(), static_cast<std::size_t>(got)});
    done += static_cast<std::uint64_t>(got);
  }
  return done;
}

Error FileSink::integrity_error(std::string what) {
  discard();
  return make_error(ErrorCode::integrity_mismatch, std::move(what), object_,
                    "the server or mirror sent other bytes than the Hub listed; nothing was "
                    "stored. If it persists, the mirror is out of date or tampered with");
}

Result<void> FileSink::restart_from_zero() {
  if (::ftruncate(fd_, 0) != 0) return io_error("cannot truncate", errno);
  if (::lseek(fd_, 0, SEEK_SET) != 0) return io_error("cannot seek", errno);
  held_ = 0;
  hasher_ = std::make_unique<ContentDigest>(request_.digest.kind, request_.size);
  return ok();
}

Result<bool> FileSink::already_complete() {
  ReleaseOwnDir release{own_dir_};
  auto dir = directory();
  if (!dir) return std::move(dir).error();
  struct stat st {};
  if (::fstatat((*dir)->fd(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) != request_.size) return false;
  // Read through the directory fd, never a link: a link to a file holding the right bytes would
  // otherwise be renamed into blobs/ as the blob.
  close_file();
  if (auto r = open_temp(); !r) return std::move(r).error();
  auto done = hash_back(request_.size);
  auto actual = done ? hasher_->finish_hex() : Result<std::string>(std::move(done).error());
  close_file();
  hasher_.reset();
  if (actual && *actual == request_.digest.hex) {
    held_ = request_.size;
    return true;
  }
  (*dir)->remove(name_);
  return false;
}

Result<std::uint64_t> FileSink::begin_attempt() {
  // A redirect hop (or a retry that received nothing) continues with the open file and hasher,
  // instead of hashing the prefix again.
  if (fd_ >= 0 && hasher_) {
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && static_cast<std::uint64_t>(st.st_size) == held_ &&
        held_ < request_.size) {
      requested_offset_ = held_;
      return held_.load();
    }
  }
  close_file();
  ReleaseOwnDir release{own_dir_};
  if (auto r = open_temp(); !r) return std::move(r).error();
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return io_error("cannot stat", errno);
  auto existing = static_cast<std::uint64_t>(st.st_size);
  // Reserve the whole file's blocks at once (the size stays what was received, so resuming
  // still reads it): a full disk is found before the transfer; a filesystem without fallocate
  // just allocates as the bytes arrive.
  if (existing < request_.size &&
      ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(request_.size)) != 0 &&
      errno == ENOSPC) {
    int err = errno;
    close_file();
    return io_error("no space for " + std::to_string(request_.size) + " bytes", err);
  }
  if (existing >= request_.size) {
    // Never ask for an empty range: a full-size (or larger) partial file starts over.
    if (auto r = restart_from_zero(); !r) return std::move(r).error();
    requested_offset_ = 0;
    return std::uint64_t{0};
  }
  // The digest covers the whole file, so the prefix we keep is read back into the hasher.
  auto read_back = hash_back(existing);
  if (!read_back) return std::move(read_back).error();
  const std::uint64_t done = *read_back;
  if (::lseek(fd_, static_cast<off_t>(done), SEEK_SET) < 0) return io_error("cannot seek", errno);
  held_ = done;
  requested_offset_ = done;
  return done;
}

Result<void> FileSink::on_response(long status, const Headers& headers) {
  if (auto refused = refuse_content_encoding(headers, object_); !refused) return refused;
  if (auto etag = header(headers, "etag")) etag_ = *etag;
  std::uint64_t start = 0;
  if (status == 206) {
    auto range = header(headers, "content-range");
    auto parsed = range ? parse_content_range(*range) : std::nullopt;
    if (requested_offset_ == 0 || !parsed || parsed->start != requested_offset_ ||
        (parsed->total && *parsed->total != request_.size)) {
      // Never splice: drop what we hold, and let the retry fetch the whole file.
      auto asked = requested_offset_;
      if (auto r = restart_from_zero(); !r) return r;
      requested_offset_ = 0;
      return make_error(ErrorCode::network,
                        "asked for bytes " + std::to_string(asked) +
                            "- but the server answered Content-Range: " + range.value_or("(none)"),
                        object_, "the server's Range support is broken; retrying from zero");
    }
    start = parsed->start;
  } else if (held_ != 0) {
    // 200 to a Range request (or an If-Range mismatch): the whole body follows.
    if (auto r = restart_from_zero(); !r) return r;
  }
  if (auto length = header(headers, "content-length")) {
    std::uint64_t n = 0;
    if (parse_u64(*length, n) && start + n > request_.size) {
      return integrity_error("the server announces " + std::to_string(start + n) +
                             " bytes, the Hub listed " + std::to_string(request_.size));
    }
  }
  return ok();
}

Result<void> FileSink::write(std::span<const std::uint8_t> bytes) {
  if (held_ + bytes.size() > request_.size) {
    return integrity_error("received more than the " + std::to_string(request_.size) +
                           " bytes the Hub listed");
  }
  if (const int err = write_all(fd_, bytes.data(), bytes.size()); err != 0)
    return io_error("cannot write the download", err);
  hasher_->update(bytes);
  held_ += bytes.size();
  return ok();
}

Result<void> FileSink::finish() {
  if (held_ < request_.size) {
    return make_error(ErrorCode::network,
                      "the connection ended after " + std::to_string(held_) + " of " +
                          std::to_string(request_.size) + " bytes",
                      object_, "the transfer was cut short; it resumes on retry");
  }
  auto actual = hasher_->finish_hex();
  if (!actual) return integrity_error(actual.error().what);
  if (*actual != request_.digest.hex) {
    return integrity_error(
        std::string("digest mismatch: expected ") +
        (request_.digest.kind == FileDigest::Kind::sha256 ? "sha256 " : "git-sha1 ") +
        request_.digest.hex + ", got " + *actual);
  }
  // No fsync here: it would stall every parallel transfer on this thread. Whether the bytes are
  // made durable before they become visible is the caller's choice (installer.cpp:
  // KERNELS_FSYNC=1); they are verified either way.
  close_file();
  return ok();
}

}  // namespace kernels::cli::hub
