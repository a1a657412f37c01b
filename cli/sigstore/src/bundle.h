// A Sigstore bundle's JSON (protobuf JSON of dev.sigstore.bundle.v1.Bundle) read into the pieces
// the verifier checks, with the structural rules sigstore-python's Bundle._verify applies: known
// media type, the leaf certificate where that version puts it, exactly one tlog entry of version
// 0.0.1 or 0.0.2 with an inclusion proof and checkpoint, an inclusion promise (v0.1) or a promise
// or RFC 3161 timestamp (v0.2+), and a message signature (DSSE bundles are refused).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kernels/sigstore/verify.h"

namespace kernels::sigstore {

struct InclusionProof {
  std::int64_t log_index = 0;
  std::string root_hash;  // raw bytes
  std::int64_t tree_size = 0;
  std::vector<std::string> hashes;  // raw bytes, leaf to root
  std::string checkpoint;           // the signed note's text
};

struct TlogEntry {
  std::int64_t log_index = 0;
  std::string log_id;  // raw bytes
  std::string kind;
  std::string version;
  std::optional<std::int64_t> integrated_time;
  std::optional<std::string> signed_entry_timestamp;  // raw bytes (the SET)
  InclusionProof proof;
  std::string canonicalized_body;  // raw bytes
};

struct Bundle {
  std::string media_type;
  int minor_version = 0;  // 1, 2 or 3
  std::string leaf_der;
  TlogEntry entry;
  std::string signature;                        // raw bytes
  std::optional<std::string> message_digest;    // raw SHA-256, when the bundle states it
  std::vector<std::string> rfc3161_timestamps;  // DER TimeStampResp each
};

std::variant<Bundle, Refusal> parse_bundle(std::string_view json);

}  // namespace kernels::sigstore
