// Streaming digests on OpenSSL EVP: SHA-256 and the git blob SHA-1 that the Hub reports as a
// regular file's oid (sha1("blob <size>\0" + content)), and the base64 SHA-256/512 of
// metadata.json digests.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "kernels/lockfile/error.h"

namespace kernels {

std::string to_hex(std::span<const std::uint8_t> bytes);  // lowercase
// Accepts lowercase or uppercase hex of any even length; fails on anything else.
Result<std::string> hex_to_bytes(std::string_view hex);
bool is_lower_hex(std::string_view s, std::size_t length);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view bytes);
  std::array<std::uint8_t, 32> finish();  // once
  std::string finish_hex();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Git blob SHA-1: the size is part of the header, so it must be known up front (the Hub tree
// gives it). finish() fails if fewer or more bytes than `size` were fed.
class GitBlobSha1 {
 public:
  explicit GitBlobSha1(std::uint64_t size);
  ~GitBlobSha1();
  GitBlobSha1(GitBlobSha1&&) noexcept;
  GitBlobSha1& operator=(GitBlobSha1&&) noexcept;
  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view bytes);
  Result<std::array<std::uint8_t, 20>> finish();
  Result<std::string> finish_hex();

 private:
  struct State;
  std::unique_ptr<State> s_;
  std::uint64_t expected_;
  std::uint64_t seen_ = 0;
};

// What a file's content must hash to: a git blob sha1 (40 hex) for regular Hub files, a sha256
// (64 hex) for LFS/Xet files. This is also the file's blob name (etag) in the cache.
struct FileDigest {
  enum class Kind { git_sha1, sha256 };
  Kind kind = Kind::sha256;
  std::string hex;  // lowercase

  // 40 hex -> git_sha1, 64 hex -> sha256, anything else -> error.
  static Result<FileDigest> from_etag(std::string_view etag);
};

// A file's digest of the kind a FileDigest names, fed chunk by chunk as the bytes stream in
// (downloads, pack, the loader's read), so that each byte is hashed once, while it is in cache.
// The git blob header carries the size, so the size is needed up front.
class ContentDigest {
 public:
  ContentDigest(FileDigest::Kind kind, std::uint64_t size);
  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view bytes);
  // Once. A git sha1 fails when fewer or more than `size` bytes were fed.
  Result<std::string> finish_hex();

  // The digest of bytes already in memory ("" only for a git sha1 whose size could not match).
  static std::string of(std::span<const std::uint8_t> bytes, FileDigest::Kind kind);

 private:
  std::variant<Sha256, GitBlobSha1> state_;
};

// Hashes `bytes` the way `digest.kind` says and compares; the error names both digests.
Result<void> check_bytes(std::span<const std::uint8_t> bytes, const FileDigest& digest,
                         std::string_view object);
// Streams the file from disk (follows symlinks).
Result<std::string> sha256_file(const std::filesystem::path& path);
Result<std::string> git_blob_sha1_file(const std::filesystem::path& path);
Result<void> check_file(const std::filesystem::path& path, const FileDigest& digest);
// check_file for a file already open (read from its offset to the end, left open; a non-regular
// file is refused, never read), e.g. one opened relative to a directory fd; `shown_as` names it.
Result<void> check_fd(int fd, const FileDigest& digest, const std::filesystem::path& shown_as);

// The per-file digests of a variant's metadata.json (variant_metadata.h): standard padded base64
// of the SHA-256 or SHA-512 of the bytes.
enum class DigestAlgorithm { sha256, sha512 };
std::string to_base64(std::span<const std::uint8_t> bytes);
std::string base64_digest(std::string_view bytes, DigestAlgorithm algorithm);
Result<std::string> base64_digest_file(const std::filesystem::path& path,
                                       DigestAlgorithm algorithm);

}  // namespace kernels
