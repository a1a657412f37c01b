// A TUF client (The Update Framework specification 1.0, §5 "Detailed client workflow") for the
// one target Sigstore distributes through TUF: trusted_root.json. No network code here: the
// caller hands in a fetcher (the CLI's HTTP engine), so this library stays offline-only.
//
// State lives in the cache, per repository: <cache>/.kernels-sigstore/tuf/<key>/ holds the verified
// root.json, timestamp.json, snapshot.json, targets.json and trusted_root.json, each written
// atomically after it verified. The first trusted root.json of the public-good repository is
// shipped with the program (cli/sigstore/data/tuf_root.json); another repository needs one given.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/lockfile/error.h"

namespace kernels::sigstore {

inline constexpr const char* kPublicGoodTufUrl = "https://tuf-repo-cdn.sigstore.dev";

// The TUF root.json of the public-good repository compiled into the program.
std::string_view builtin_tuf_root();

// The repository the trusted root comes from: $KERNELS_SIGSTORE_TUF_URL if set and non-empty,
// else the public-good one. No trailing '/'.
std::string default_tuf_url();

// <cache>/.kernels-sigstore/tuf/<key>: key is the URL's scheme-less host and path with every
// character other than [A-Za-z0-9.-] written as '_', plus 8 hex of its SHA-256 (distinct URLs never
// share).
std::filesystem::path tuf_cache_dir(const std::filesystem::path& cache_root, std::string_view url);

// GETs `url`; at most `max_bytes` bytes. nullopt: the server says the file is not there (HTTP 403
// or 404, which ends the root chain). A larger body must be an error (any code).
using TufFetcher = std::function<Result<std::optional<std::string>>(const std::string& url,
                                                                    std::size_t max_bytes)>;

struct TufRefreshed {
  std::int64_t root_version = 0, timestamp_version = 0, snapshot_version = 0, targets_version = 0;
  std::int64_t root_versions_fetched = 0;  // how many N+1.root.json were applied
  bool trusted_root_changed = false;       // a new trusted_root.json was stored
  std::filesystem::path trusted_root_path;
  std::string trusted_root_sha256;  // hex
};

// Runs the client workflow against `url` at time `now` (seconds since the epoch). The first
// trusted root.json is the cached one, else `bootstrap_root` (the shipped one for the public-good
// URL). A refusal is ErrorCode::integrity_mismatch whose message starts with "TUF <check>" and
// names the metadata file: signature (below the threshold), version (not what the referring
// metadata says), rollback, expired, hash, length (bigger than allowed or than declared),
// target_missing; a file that is not TUF metadata is ErrorCode::lockfile_invalid ("TUF format").
// Fetch errors pass through unchanged. Nothing unverified is ever stored.
Result<TufRefreshed> tuf_refresh(const std::filesystem::path& cache_root, const std::string& url,
                                 std::optional<std::string_view> bootstrap_root,
                                 const TufFetcher& fetch, std::int64_t now);

// Checks a TUF root.json on its own: well-formed, and signed by the threshold of its own root keys
// (what every refresh checks of the root it starts from). Errors as tuf_refresh's.
Result<void> tuf_check_root(std::string_view root_json, std::string_view source);

// The trusted_root.json last verified by tuf_refresh for `url`, if there is one (its path).
std::optional<std::filesystem::path> tuf_cached_trusted_root(
    const std::filesystem::path& cache_root, std::string_view url);

}  // namespace kernels::sigstore
