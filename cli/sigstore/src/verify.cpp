#include "kernels/sigstore/verify.h"

#include <algorithm>
#include <set>
#include "bundle.h"
#include "certificate.h"

#include "crypto.h"
#include "timestamp.h"
#include "transparency_log.h"

namespace kernels::sigstore {

std::string_view check_name(Check check) {
  switch (check) {
    case Check::bundle_format: return "bundle_format";
    case Check::verified_time: return "verified_time";
    case Check::certificate_chain: return "certificate_chain";
    case Check::sct: return "sct";
    case Check::key_usage: return "key_usage";
    case Check::identity: return "identity";
    case Check::inclusion_proof: return "inclusion_proof";
    case Check::checkpoint: return "checkpoint";
    case Check::set: return "set";
    case Check::signature: return "signature";
    case Check::tlog_body: return "tlog_body";
  }
  return "unknown";
}

// The order is sigstore-python's (Verifier._verify_common_signing_cert, then verify_artifact), so
// that where a bundle has several faults both name a fault of the same stage.
Verdict verify_bundle(std::string_view artifact, std::string_view bundle_json,
                      const TrustedRoot& root, const IdentityPolicy& policy) {
  std::variant<Bundle, Refusal> parsed = parse_bundle(bundle_json);
  if (auto* r = std::get_if<Refusal>(&parsed)) return std::move(*r);
  const Bundle& bundle = std::get<Bundle>(parsed);
  const TlogEntry& entry = bundle.entry;

  X509Ptr leaf = load_certificate_der(bundle.leaf_der);
  if (!leaf) return Refusal{Check::certificate_chain, "the signing certificate is not DER X.509"};

  // The verified times: each RFC 3161 timestamp that verifies, and the log's integrated time
  // when its SET vouches for it (sigstore-python's _establish_time).
  std::vector<std::int64_t> times;
  const auto& stamps = bundle.rfc3161_timestamps;
  if (!stamps.empty()) {
    if (root.timestamp_authorities.empty())
      return Refusal{Check::verified_time,
                     "the bundle carries RFC 3161 timestamps but the trusted root names no "
                     "timestamp authority"};
    if (stamps.size() > 32)
      return Refusal{Check::verified_time,
                     "too many signed timestamps: " + std::to_string(stamps.size()) + " > 32"};
    if (std::set<std::string>(stamps.begin(), stamps.end()).size() != stamps.size())
      return Refusal{Check::verified_time, "the bundle carries a signed timestamp twice"};
    for (const std::string& stamp : stamps)
      if (auto t = verify_rfc3161(stamp, bundle.signature, root)) times.push_back(*t);
  }
  if (entry.integrated_time && entry.signed_entry_timestamp) {
    if (entry.kind != "hashedrekord" || entry.version != "0.0.1")
      return Refusal{Check::verified_time,
                     "an integrated time is only trusted for hashedrekord 0.0.1 entries"};
    times.push_back(*entry.integrated_time);
  }
  if (times.empty())
    return Refusal{Check::verified_time,
                   "no source of verified time: no RFC 3161 timestamp verified and the log entry "
                   "has no integrated time vouched for by an inclusion promise"};
  if (entry.version != "0.0.1")
    return Refusal{Check::tlog_body, "the log entry is " + entry.kind + " " + entry.version +
                                         " (Rekor v2), which this version does not verify yet"};
  const std::int64_t time = entry.integrated_time ? *entry.integrated_time : times.front();

  // The certificate must chain, and be valid, at every verified time.
  X509Ptr issuer;
  for (std::int64_t t : times)
    if (auto r = check_chain(leaf.get(), root, t, issuer)) return *r;
  if (auto r = check_sct(leaf.get(), issuer.get(), root)) return *r;
  if (auto r = check_key_usage(leaf.get())) return *r;
  if (auto r = check_identity(leaf.get(), policy)) return *r;

  const LogKey* rekor = find_rekor_key(root, entry, time);
  if (!rekor)
    return Refusal{Check::checkpoint, "the trusted root has no transparency log key with log id " +
                                          hex(entry.log_id) + " valid at the integrated time"};
  if (auto r = check_inclusion_proof(entry)) return *r;
  if (auto r = check_checkpoint(entry, *rekor)) return *r;
  if (entry.integrated_time && entry.signed_entry_timestamp)
    if (auto r = check_set(entry, *rekor)) return *r;

  const std::string digest = sha256(artifact);
  if (bundle.message_digest && *bundle.message_digest != digest)
    return Refusal{Check::signature,
                   "the bundle's message digest is sha256:" + hex(*bundle.message_digest) +
                       ", the bytes have sha256:" + hex(digest)};
  EVP_PKEY* key = X509_get0_pubkey(leaf.get());
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
    return Refusal{Check::signature, "the signing certificate's key is not an ECDSA key"};
  if (!verify_signature(key, artifact, bundle.signature))
    return Refusal{Check::signature, "the signature does not verify over these bytes"};
  if (auto r = check_hashedrekord_body(entry, bundle.signature, bundle.leaf_der, digest)) return *r;

  Verified out;
  out.signer = read_identity(leaf.get());
  out.integrated_time = time;
  out.log_index = static_cast<std::uint64_t>(entry.log_index);
  out.log_url = rekor->base_url;
  return out;
}

}  // namespace kernels::sigstore
