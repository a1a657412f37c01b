// Offline verification of a Sigstore bundle (metadata.json.sigstore) over the exact bytes it signs,
// as Python kernels 0.17 does with sigstore-python's Verifier.verify_artifact, with OpenSSL only:
//
//   1. the bundle's shape: media type v0.1, v0.2 or v0.3, one hashedrekord tlog entry with an
//      inclusion proof and its checkpoint, an inclusion promise (SET), a message signature;
//   2. the verified times: the log entry's integrated time, vouched for by its SET, and each
//      RFC 3161 timestamp that verifies against the trusted root's TSAs (timestamp.h);
//   3. the Fulcio certificate chain to a trusted-root CA, the leaf valid, at each of those times;
//   4. the leaf's one embedded SCT against the trusted root's CT log keys (RFC 6962 precert);
//   5. key usage digitalSignature and extended key usage codeSigning;
//   6. the signer's identity against an IdentityPolicy (policy.h);
//   7. the log entry: Merkle inclusion proof (RFC 6962), the checkpoint signed by the Rekor key
//      and naming the proof's root, the SET over the entry;
//   8. the signature (ECDSA, SHA-256) over the bytes, and the message digest when present;
//   9. the hashedrekord body naming that signature, certificate and digest.
//
// Each refusal names the check that failed. No network: the trusted root (trusted_root.h) is
// given. Not done yet: Rekor v2 (hashedrekord 0.0.2) entries, refused as unsupported
// (Check::tlog_body); DSSE bundles (Check::bundle_format).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "kernels/sigstore/policy.h"
#include "kernels/sigstore/trusted_root.h"

namespace kernels::sigstore {

enum class Check {
  bundle_format,      // not JSON, unknown media type, a required piece missing or malformed
  verified_time,      // no trusted source of time (integrated time + SET, or RFC 3161)
  certificate_chain,  // the leaf does not chain to a trusted CA at the verified time
  sct,                // the embedded SCT is missing or not signed by a trusted CT log
  key_usage,          // no digitalSignature key usage or no codeSigning extended key usage
  identity,           // the signer is not who the policy expects
  inclusion_proof,    // the Merkle inclusion proof does not lead to its root hash
  checkpoint,         // the checkpoint is malformed, not signed by the log, or names another root
  set,                // the signed entry timestamp does not verify
  signature,          // the signature (or message digest) does not match the bytes
  tlog_body,          // the log entry's body does not name this signature, certificate, digest
};
// "bundle_format", "verified_time", ... (the enumerator's name).
std::string_view check_name(Check check);

struct Refusal {
  Check check = Check::bundle_format;
  std::string message;  // what was found, and where
};

struct Verified {
  SignerIdentity signer;
  std::int64_t integrated_time = 0;  // seconds since the epoch: the log's (else a TSA's) time
  std::uint64_t log_index = 0;
  std::string log_url;  // the trusted root's tlog that vouched for the entry
};

using Verdict = std::variant<Verified, Refusal>;

// `artifact`: the exact bytes signed (metadata.json); `bundle_json`: the bundle file's text.
Verdict verify_bundle(std::string_view artifact, std::string_view bundle_json,
                      const TrustedRoot& root, const IdentityPolicy& policy);

}  // namespace kernels::sigstore
