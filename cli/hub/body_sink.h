// Where a response body goes, checked while it streams: a bounded memory buffer for API answers,
// and a file with a running digest and a hard size cap for downloads. Internal to kernels_hub.
//
// Error classes decide what the transfer does next: ErrorCode::network means "transient, retry
// (and resume what is held)"; any other code ends the transfer at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "hub_client.h"
#include "hub_protocol.h"
#include "kernels/lockfile/digest.h"

namespace kernels::cli::hub {

class BodySink {
 public:
  virtual ~BodySink() = default;
  // Before each attempt: the offset to resume from (0 = ask for the whole body).
  virtual Result<std::uint64_t> begin_attempt() = 0;
  // The final 2xx answer's status and headers, before its first body byte.
  virtual Result<void> on_response(long status, const Headers& headers) = 0;
  virtual Result<void> write(std::span<const std::uint8_t> bytes) = 0;
  // The transfer ended cleanly; checks completeness (and the digest).
  virtual Result<void> finish() = 0;
  virtual std::uint64_t bytes_held() const = 0;
};

class MemorySink final : public BodySink {
 public:
  // `too_big`: the error code when the body passes max_bytes (an oversized Hub API answer is
  // malformed JSON for us, exit 5; an oversized file is an integrity mismatch, exit 6).
  MemorySink(std::size_t max_bytes, std::string object,
             ErrorCode too_big = ErrorCode::integrity_mismatch)
      : max_bytes_(max_bytes), object_(std::move(object)), too_big_(too_big) {}
  Result<std::uint64_t> begin_attempt() override;
  Result<void> on_response(long status, const Headers& headers) override;
  Result<void> write(std::span<const std::uint8_t> bytes) override;
  Result<void> finish() override { return ok(); }
  std::uint64_t bytes_held() const override { return body_.size(); }
  std::string take() { return std::move(body_); }

 private:
  std::size_t max_bytes_;
  std::string object_;
  ErrorCode too_big_;
  std::string body_;
};

class FileSink final : public BodySink {
 public:
  FileSink(const DownloadRequest& request, std::string object);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  // The temp file already holds exactly the expected bytes (a finished earlier attempt): true,
  // and no request is needed. A full-size file with other bytes is discarded.
  Result<bool> already_complete();
  Result<std::uint64_t> begin_attempt() override;
  Result<void> on_response(long status, const Headers& headers) override;
  Result<void> write(std::span<const std::uint8_t> bytes) override;
  Result<void> finish() override;
  // May be read from another thread (progress) while the transfer runs.
  std::uint64_t bytes_held() const override { return held_.load(std::memory_order_relaxed); }
  // Drops the partial file: the next attempt starts from zero.
  void discard();
  // The last Hub ETag seen for this file (for If-Range); the expected digest until one is seen.
  const std::string& if_range_etag() const { return etag_; }

 private:
  Result<void> restart_from_zero();
  Error integrity_error(std::string what);
  Error io_error(std::string what, int err);
  void close_file();
  // The temp file's directory: request.temp_dir, else temp_path's parent opened (and made) here,
  // held until the end of the public call that opened it.
  Result<const CacheDir*> directory();
  // Opens (creating) the temp file by name in directory(): a link or non-regular file there is
  // refused (exit 11), never followed.
  Result<void> open_temp();
  // Feeds the first `size` bytes of the open file into a fresh hasher_; the bytes read.
  Result<std::uint64_t> hash_back(std::uint64_t size);

  DownloadRequest request_;
  std::string object_;
  std::string name_;  // temp_path's file name, opened relative to directory()
  std::optional<CacheDir> own_dir_;
  int fd_ = -1;
  std::atomic<std::uint64_t> held_{0};
  std::uint64_t requested_offset_ = 0;
  std::unique_ptr<ContentDigest> hasher_;
  std::string etag_;
};

}  // namespace kernels::cli::hub
