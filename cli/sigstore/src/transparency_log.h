// The checks on the bundle's Rekor entry: the RFC 6962 Merkle inclusion proof, the checkpoint
// (a signed note by the log naming the proof's root), the SET (inclusion promise), and the
// hashedrekord 0.0.1 body naming the bundle's signature, certificate and digest.
#pragma once

#include <optional>
#include <string_view>

#include "bundle.h"
#include "kernels/sigstore/verify.h"

namespace kernels::sigstore {

// The trusted root's Rekor key for this entry: the one its log id names (v1: the key's SHA-256),
// valid at `time`; nullptr when there is none.
const LogKey* find_rekor_key(const TrustedRoot& root, const TlogEntry& entry, std::int64_t time);

std::optional<Refusal> check_inclusion_proof(const TlogEntry& entry);
std::optional<Refusal> check_checkpoint(const TlogEntry& entry, const LogKey& key);
std::optional<Refusal> check_set(const TlogEntry& entry, const LogKey& key);
// `leaf_der`: the signing certificate; `digest`: SHA-256 of the artifact (raw).
std::optional<Refusal> check_hashedrekord_body(const TlogEntry& entry, std::string_view signature,
                                               std::string_view leaf_der, std::string_view digest);

}  // namespace kernels::sigstore
