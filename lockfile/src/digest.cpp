#include "kernels/lockfile/digest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <cerrno>
#include <cstring>
#include <optional>

#include "kernels/lockfile/fd_io.h"

namespace kernels {

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xF];
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<std::string> hex_to_bytes(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return make_error(ErrorCode::internal, "odd number of hex digits", std::string(hex));
  }
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return make_error(ErrorCode::internal, "not a hex string", std::string(hex));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

bool is_lower_hex(std::string_view s, std::size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// One EVP context per hasher. OpenSSL picks the SHA-NI / AVX2 code paths itself.
struct EvpState {
  EVP_MD_CTX* ctx = nullptr;
  explicit EvpState(const EVP_MD* md) : ctx(EVP_MD_CTX_new()) {
    if (ctx == nullptr || EVP_DigestInit_ex(ctx, md, nullptr) != 1) {
      EVP_MD_CTX_free(ctx);
      ctx = nullptr;
    }
  }
  ~EvpState() { EVP_MD_CTX_free(ctx); }
  EvpState(const EvpState&) = delete;
  EvpState& operator=(const EvpState&) = delete;
  void update(const void* p, std::size_t n) {
    if (ctx != nullptr && n > 0) EVP_DigestUpdate(ctx, p, n);
  }
  // Returns false when the context could not be created (out of memory inside OpenSSL).
  bool finish(std::uint8_t* out) {
    if (ctx == nullptr) return false;
    unsigned int len = 0;
    const bool ok = EVP_DigestFinal_ex(ctx, out, &len) == 1;
    EVP_MD_CTX_free(ctx);
    ctx = nullptr;
    return ok;
  }
};

struct Sha256::State : EvpState {
  State() : EvpState(EVP_sha256()) {}
};

Sha256::Sha256() : s_(std::make_unique<State>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::uint8_t> bytes) { s_->update(bytes.data(), bytes.size()); }
void Sha256::update(std::string_view bytes) { s_->update(bytes.data(), bytes.size()); }

std::array<std::uint8_t, 32> Sha256::finish() {
  std::array<std::uint8_t, 32> out{};
  s_->finish(out.data());
  return out;
}

std::string Sha256::finish_hex() {
  const auto d = finish();
  return to_hex(d);
}

struct GitBlobSha1::State : EvpState {
  State() : EvpState(EVP_sha1()) {}
};

GitBlobSha1::GitBlobSha1(std::uint64_t size) : s_(std::make_unique<State>()), expected_(size) {
  const std::string header = "blob " + std::to_string(size) + std::string(1, '\0');
  s_->update(header.data(), header.size());
}
GitBlobSha1::~GitBlobSha1() = default;
GitBlobSha1::GitBlobSha1(GitBlobSha1&&) noexcept = default;
GitBlobSha1& GitBlobSha1::operator=(GitBlobSha1&&) noexcept = default;

void GitBlobSha1::update(std::span<const std::uint8_t> bytes) {
  seen_ += bytes.size();
  s_->update(bytes.data(), bytes.size());
}
void GitBlobSha1::update(std::string_view bytes) {
  seen_ += bytes.size();
  s_->update(bytes.data(), bytes.size());
}

Result<std::array<std::uint8_t, 20>> GitBlobSha1::finish() {
  if (seen_ != expected_) {
    return make_error(ErrorCode::integrity_mismatch, "git blob hash fed " + std::to_string(seen_) +
                                                         " bytes, expected " +
                                                         std::to_string(expected_));
  }
  std::array<std::uint8_t, 20> out{};
  if (!s_->finish(out.data())) {
    return make_error(ErrorCode::internal, "OpenSSL SHA-1 context unavailable");
  }
  return out;
}

Result<std::string> GitBlobSha1::finish_hex() {
  auto d = finish();
  if (!d) return std::move(d).error();
  return to_hex(*d);
}

Result<FileDigest> FileDigest::from_etag(std::string_view etag) {
  if (is_lower_hex(etag, 40)) return FileDigest{Kind::git_sha1, std::string(etag)};
  if (is_lower_hex(etag, 64)) return FileDigest{Kind::sha256, std::string(etag)};
  return make_error(ErrorCode::integrity_mismatch,
                    "not a file digest: expected 40 (git sha1) or 64 (sha256) lowercase hex",
                    std::string(etag));
}

ContentDigest::ContentDigest(FileDigest::Kind kind, std::uint64_t size)
    : state_(kind == FileDigest::Kind::sha256
                 ? std::variant<Sha256, GitBlobSha1>(Sha256())
                 : std::variant<Sha256, GitBlobSha1>(GitBlobSha1(size))) {}

void ContentDigest::update(std::span<const std::uint8_t> bytes) {
  std::visit([&](auto& h) { h.update(bytes); }, state_);
}

void ContentDigest::update(std::string_view bytes) {
  std::visit([&](auto& h) { h.update(bytes); }, state_);
}

Result<std::string> ContentDigest::finish_hex() {
  if (auto* sha = std::get_if<Sha256>(&state_)) return sha->finish_hex();
  return std::get<GitBlobSha1>(state_).finish_hex();
}

std::string ContentDigest::of(std::span<const std::uint8_t> bytes, FileDigest::Kind kind) {
  ContentDigest h(kind, bytes.size());
  h.update(bytes);
  auto hex = h.finish_hex();
  return hex ? std::move(*hex) : std::string();
}

namespace {

constexpr std::size_t kChunk = 1 << 20;

// Streams an open file through `feed`, from its current offset; only a regular file is read, so
// a FIFO or a device cannot block or feed endless bytes. `fd` stays open.
template <class Feed>
Result<std::uint64_t> stream_fd(int fd, const std::filesystem::path& path, Feed&& feed,
                                std::uint64_t* size_out = nullptr) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::io, "not a regular file", path.string(),
                      "only regular files (or symlinks to them) can be hashed");
  }
  if (size_out != nullptr) *size_out = static_cast<std::uint64_t>(st.st_size);
  if (!feed.begin(static_cast<std::uint64_t>(st.st_size))) {
    return make_error(ErrorCode::internal, "hash context unavailable", path.string());
  }
  std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[kChunk]);
  std::uint64_t total = 0;
  while (true) {
    const ssize_t n = read_retrying(fd, buf.get(), kChunk);
    if (n < 0) {
      return make_error(ErrorCode::io, std::string("read failed: ") + std::strerror(errno),
                        path.string());
    }
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    feed.update(std::span<const std::uint8_t>(buf.get(), static_cast<std::size_t>(n)));
  }
  return total;
}

// The same for a path (symlinks followed), opened O_NONBLOCK so that a FIFO is not waited on.
template <class Feed>
Result<std::uint64_t> stream_file(const std::filesystem::path& path, Feed&& feed,
                                  std::uint64_t* size_out = nullptr) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return make_error(ErrorCode::io, std::string("cannot open: ") + std::strerror(err),
                      path.string());
  }
  auto r = stream_fd(fd, path, feed, size_out);
  ::close(fd);
  return r;
}

// A ContentDigest made once stream_file knows the size (the git blob header needs it).
struct DigestFeed {
  FileDigest::Kind kind;
  std::optional<ContentDigest> h;
  bool begin(std::uint64_t size) {
    h.emplace(kind, size);
    return true;
  }
  void update(std::span<const std::uint8_t> b) { h->update(b); }
};

// A file that grew or shrank while being read fails here instead of hashing a torn view.
Result<std::string> finish_git_sha1(DigestFeed& feed, const std::filesystem::path& path) {
  auto hex = feed.h->finish_hex();
  if (!hex) {
    Error e = std::move(hex).error();
    e.object = path.string();
    e.what = "file changed size while being hashed (" + e.what + ")";
    return e;
  }
  return std::move(*hex);
}

Result<void> compare_digest(const std::string& actual, const FileDigest& digest,
                            const std::filesystem::path& path) {
  if (actual != digest.hex) {
    const char* algo = digest.kind == FileDigest::Kind::sha256 ? "sha256" : "git sha1";
    return make_error(ErrorCode::integrity_mismatch,
                      std::string(algo) + " mismatch: expected " + digest.hex + ", got " + actual,
                      path.string(), "the file is corrupt or was altered; fetch it again");
  }
  return ok();
}

}  // namespace

Result<void> check_bytes(std::span<const std::uint8_t> bytes, const FileDigest& digest,
                         std::string_view object) {
  const std::string actual = ContentDigest::of(bytes, digest.kind);
  if (actual != digest.hex) {
    const char* algo = digest.kind == FileDigest::Kind::sha256 ? "sha256" : "git sha1";
    return make_error(ErrorCode::integrity_mismatch,
                      std::string(algo) + " mismatch: expected " + digest.hex + ", got " + actual,
                      std::string(object),
                      "the bytes are corrupt or were altered; fetch them again");
  }
  return ok();
}

Result<std::string> sha256_file(const std::filesystem::path& path) {
  DigestFeed feed{FileDigest::Kind::sha256, std::nullopt};
  auto r = stream_file(path, feed);
  if (!r) return std::move(r).error();
  return feed.h->finish_hex();  // a sha256 cannot fail
}

Result<std::string> git_blob_sha1_file(const std::filesystem::path& path) {
  DigestFeed feed{FileDigest::Kind::git_sha1, std::nullopt};
  auto r = stream_file(path, feed);
  if (!r) return std::move(r).error();
  return finish_git_sha1(feed, path);
}

Result<void> check_file(const std::filesystem::path& path, const FileDigest& digest) {
  auto actual = digest.kind == FileDigest::Kind::sha256 ? sha256_file(path)
                                                        : git_blob_sha1_file(path);
  if (!actual) return std::move(actual).error();
  return compare_digest(*actual, digest, path);
}

Result<void> check_fd(int fd, const FileDigest& digest, const std::filesystem::path& shown_as) {
  DigestFeed feed{digest.kind, std::nullopt};
  auto r = stream_fd(fd, shown_as, feed);
  if (!r) return std::move(r).error();
  auto actual = digest.kind == FileDigest::Kind::sha256 ? feed.h->finish_hex()
                                                        : finish_git_sha1(feed, shown_as);
  if (!actual) return std::move(actual).error();
  return compare_digest(*actual, digest, shown_as);
}

std::string to_base64(std::span<const std::uint8_t> bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t{bytes[i]} << 16) |
                            (i + 1 < bytes.size() ? std::uint32_t{bytes[i + 1]} << 8 : 0) |
                            (i + 2 < bytes.size() ? std::uint32_t{bytes[i + 2]} : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

namespace {

struct Base64Feed {
  DigestAlgorithm algorithm;
  std::optional<EvpState> h;
  bool begin(std::uint64_t) {
    h.emplace(algorithm == DigestAlgorithm::sha256 ? EVP_sha256() : EVP_sha512());
    return h->ctx != nullptr;
  }
  void update(std::span<const std::uint8_t> b) { h->update(b.data(), b.size()); }
  Result<std::string> finish() {
    std::array<std::uint8_t, 64> out{};
    if (!h->finish(out.data())) return make_error(ErrorCode::internal, "OpenSSL digest failed");
    return to_base64(
        std::span<const std::uint8_t>(out.data(), algorithm == DigestAlgorithm::sha256 ? 32 : 64));
  }
};

}  // namespace

std::string base64_digest(std::string_view bytes, DigestAlgorithm algorithm) {
  Base64Feed feed{algorithm, std::nullopt};
  feed.begin(bytes.size());
  feed.update(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            bytes.size()));
  auto out = feed.finish();
  return out ? std::move(*out) : std::string();
}

Result<std::string> base64_digest_file(const std::filesystem::path& path,
                                       DigestAlgorithm algorithm) {
  Base64Feed feed{algorithm, std::nullopt};
  auto r = stream_file(path, feed);
  if (!r) return std::move(r).error();
  return feed.finish();
}

}  // namespace kernels
