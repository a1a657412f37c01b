// The signature record: what `kernels download --require-signatures` verified for one variant,
// kept in the cache at CacheLayout::signature_record_path
// (<repo>/signatures/<commit>/<variant>.json) and read by the loader (KERNELS_REQUIRE_SIGNED=1) and
// by `kernels info` (docs/SIGNATURES.md).
//
// A record is trusted only for the bytes it names: it vouches for a variant when it is of this
// format, says verified, names exactly that repo, commit and variant, and names the SHA-256 of
// exactly the metadata.json bytes the reader holds (which the reader has checked against the lock
// or the cache's tree). A record copied from another commit or variant, or left behind when
// metadata.json changed, vouches for nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/error.h"

namespace kernels {

// Format 2 added metadata_sha256; format 1 records (no digest) vouch for nothing.
inline constexpr std::uint64_t kSignatureRecordFormat = 2;

struct SignatureRecord {
  std::string repo_id, commit, variant;
  bool verified = false;
  std::string metadata_sha256;  // lowercase hex SHA-256 of the metadata.json bytes that verified
  // Who signed (the Fulcio certificate's identity) and where the log vouched for it.
  std::string issuer, source_repository, build_signer_uri, subject_alt_name;
  std::uint64_t integrated_time = 0;  // seconds since the epoch
  std::string log_url;
  std::uint64_t log_index = 0;
  std::string trusted_root;  // which trusted root the verification used ("built-in" or a path)
};

// The record as written to the cache (JSON, format kSignatureRecordFormat, ends with a newline).
std::string signature_record_text(const SignatureRecord& record);
// Parses a record. Errors: ErrorCode::lockfile_invalid naming the key at <source>:<line>:<column>
// (another format included).
Result<SignatureRecord> parse_signature_record(std::string_view text, std::string_view source);

struct SignatureCheck {
  enum class State {
    verified,   // a record vouches for these bytes
    no_record,  // no record: the variant was not downloaded with --require-signatures
    rejected,   // a record is there but vouches for nothing here (`why` says which check)
  };
  State state = State::no_record;
  std::optional<SignatureRecord> record;  // when verified
  Error why;                              // when not verified (ErrorCode::integrity_mismatch)
};

// Reads the record of (repo_id, commit, variant) in `cache` and checks it against `metadata_json`,
// the variant's metadata.json bytes as the caller verified them.
SignatureCheck check_signature_record(const CacheLayout& cache, std::string_view repo_id,
                                      std::string_view commit, std::string_view variant,
                                      std::span<const std::uint8_t> metadata_json);

}  // namespace kernels
