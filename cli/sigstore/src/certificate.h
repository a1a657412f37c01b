// The checks on the Fulcio signing certificate: its chain to a trusted-root CA at the verified
// time, its embedded SCT, its key usages, and the identity it carries.
#pragma once

#include <cstdint>
#include <optional>

#include "crypto.h"
#include "kernels/sigstore/verify.h"

namespace kernels::sigstore {

// Chains `leaf` to the certificates of the trusted root's CAs valid at `time` (each of them a
// trust anchor, as sigstore-python's Store is), checking every certificate's validity at `time`.
// On success `issuer` is the certificate that signed the leaf.
std::optional<Refusal> check_chain(X509* leaf, const TrustedRoot& root, std::int64_t time,
                                   X509Ptr& issuer);
// Exactly one embedded SCT, precertificate entry (RFC 6962 §3.2), SHA-256, signed by a CT log
// key of the trusted root valid at the SCT's timestamp.
std::optional<Refusal> check_sct(X509* leaf, X509* issuer, const TrustedRoot& root);
std::optional<Refusal> check_key_usage(X509* leaf);

SignerIdentity read_identity(X509* leaf);
// Messages say "expected X, found Y" for the first mismatch.
std::optional<Refusal> check_identity(X509* leaf, const IdentityPolicy& policy);

}  // namespace kernels::sigstore
