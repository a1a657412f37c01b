// The Sigstore trusted root (trusted_root.json, media type
// application/vnd.dev.sigstore.trustedroot+json;version=0.1): the Fulcio CAs, the Rekor logs and
// the CT logs whose keys a bundle is verified against, each with its validity window.
//
// Which file: --trusted-root FILE, else $KERNELS_SIGSTORE_TRUSTED_ROOT, else the public-good root
// shipped with this program (cli/sigstore/data/trusted_root.json, compiled in; its origin and
// version in cli/sigstore/data/README.md) unless `kernels trust-root refresh` (tuf.h) stored a
// newer verified one in the cache, which is then used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels::sigstore {

struct ValidFor {
  std::int64_t start = 0;           // seconds since the epoch
  std::optional<std::int64_t> end;  // open-ended when absent
  bool contains(std::int64_t t) const { return t >= start && (!end || t <= *end); }
};

// A log's public key (Rekor or CT): DER SubjectPublicKeyInfo.
struct LogKey {
  std::string base_url;
  std::string spki_der;
  std::string key_details;  // PKIX_ECDSA_P256_SHA_256, PKIX_ED25519, ...
  std::string key_id;       // SHA-256 of spki_der (RFC 6962 §3.2): how v1 entries and SCTs name it
  std::string log_id;       // as the file states it (Rekor v2 logs use a signed-note key id)
  ValidFor valid_for;
};

struct CertificateAuthority {
  std::string uri;
  std::vector<std::string> chain_der;  // leaf-most first, root last
  ValidFor valid_for;
};

struct TrustedRoot {
  std::string source;  // where it came from, for messages
  std::vector<LogKey> tlogs;
  std::vector<LogKey> ctlogs;
  std::vector<CertificateAuthority> certificate_authorities;
  std::vector<CertificateAuthority> timestamp_authorities;  // RFC 3161 TSAs: leaf first, root last
};

// Strict on what verification relies on (media type, base64, keys, certificates, timestamps); keys
// of a type OpenSSL cannot load are an error. Errors are ErrorCode::lockfile_invalid naming
// `source`.
Result<TrustedRoot> parse_trusted_root(std::string_view json, std::string_view source);

// The public-good trusted root compiled into this program.
Result<TrustedRoot> builtin_trusted_root();
// `explicit_file` if given, else $KERNELS_SIGSTORE_TRUSTED_ROOT if set and non-empty, else the
// trusted_root.json the last TUF refresh of default_tuf_url() verified into `cache_root` (when
// given and present), else the built-in one. A file that cannot be read is ErrorCode::io.
Result<TrustedRoot> load_trusted_root(const std::optional<std::filesystem::path>& explicit_file,
                                      const std::optional<std::filesystem::path>& cache_root = {});

// RFC 3339 UTC ("2021-03-07T03:20:29Z", fractions of a second allowed) to seconds since the epoch.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

}  // namespace kernels::sigstore
