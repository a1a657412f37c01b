#include "bundle.h"

#include "crypto.h"
#include "json_read.h"

namespace kernels::sigstore {
namespace {

Refusal malformed(std::string message) { return Refusal{Check::bundle_format, std::move(message)}; }

std::optional<std::string> bytes_at(const nlohmann::json& object, const char* key) {
  const std::string* text = string_at(object, key);
  return text ? base64_decode(*text) : std::nullopt;
}

int media_minor(const std::string& media) {
  if (media == "application/vnd.dev.sigstore.bundle+json;version=0.1") return 1;
  if (media == "application/vnd.dev.sigstore.bundle+json;version=0.2") return 2;
  if (media == "application/vnd.dev.sigstore.bundle+json;version=0.3") return 3;
  if (media == "application/vnd.dev.sigstore.bundle.v0.3+json") return 3;
  return 0;
}

std::variant<TlogEntry, Refusal> parse_entry(const nlohmann::json& e) {
  TlogEntry out;
  std::optional<std::int64_t> index = int64_at(e, "logIndex");
  if (!index) return malformed("tlog entry: logIndex is missing or not a non-negative integer");
  out.log_index = *index;
  const nlohmann::json* log_id = object_at(e, "logId");
  std::optional<std::string> key_id = log_id ? bytes_at(*log_id, "keyId") : std::nullopt;
  if (!key_id) return malformed("tlog entry: logId.keyId is missing or not base64");
  out.log_id = *key_id;
  const nlohmann::json* kv = object_at(e, "kindVersion");
  const std::string* kind = kv ? string_at(*kv, "kind") : nullptr;
  const std::string* version = kv ? string_at(*kv, "version") : nullptr;
  if (!kind || !version) return malformed("tlog entry: kindVersion is missing");
  out.kind = *kind;
  out.version = *version;
  if (out.version != "0.0.1" && out.version != "0.0.2")
    return malformed("tlog entry: version " + printable_bytes(out.version) +
                     " is not supported (0.0.1 or 0.0.2)");
  if (e.contains("integratedTime")) {
    out.integrated_time = int64_at(e, "integratedTime");
    if (!out.integrated_time)
      return malformed("tlog entry: integratedTime is not a non-negative integer");
    if (*out.integrated_time == 0) out.integrated_time.reset();  // proto3: 0 means unset
  }
  if (const nlohmann::json* promise = object_at(e, "inclusionPromise")) {
    out.signed_entry_timestamp = bytes_at(*promise, "signedEntryTimestamp");
    if (!out.signed_entry_timestamp)
      return malformed(
          "tlog entry: inclusionPromise.signedEntryTimestamp is missing or not base64");
  }
  const nlohmann::json* proof = object_at(e, "inclusionProof");
  if (!proof) return malformed("tlog entry: the inclusion proof is missing");
  std::optional<std::int64_t> proof_index = int64_at(*proof, "logIndex");
  std::optional<std::int64_t> tree_size = int64_at(*proof, "treeSize");
  std::optional<std::string> root = bytes_at(*proof, "rootHash");
  if (!proof_index || !tree_size || !root)
    return malformed("tlog entry: inclusionProof needs logIndex, treeSize and rootHash");
  out.proof.log_index = *proof_index;
  out.proof.tree_size = *tree_size;
  out.proof.root_hash = *root;
  if (const nlohmann::json* hashes = array_at(*proof, "hashes")) {
    for (const nlohmann::json& h : *hashes) {
      std::optional<std::string> raw = h.is_string()
                                           ? base64_decode(h.get_ref<const std::string&>())
                                           : std::nullopt;
      if (!raw) return malformed("tlog entry: inclusionProof.hashes holds a non-base64 value");
      out.proof.hashes.push_back(std::move(*raw));
    }
  }
  const nlohmann::json* checkpoint = object_at(*proof, "checkpoint");
  const std::string* envelope = checkpoint ? string_at(*checkpoint, "envelope") : nullptr;
  if (!envelope || envelope->empty())
    return malformed("tlog entry: the inclusion proof has no checkpoint");
  out.proof.checkpoint = *envelope;
  std::optional<std::string> body = bytes_at(e, "canonicalizedBody");
  if (!body || body->empty()) return malformed("tlog entry: canonicalizedBody is missing");
  out.canonicalized_body = std::move(*body);
  return out;
}

}  // namespace

std::variant<Bundle, Refusal> parse_bundle(std::string_view json) {
  std::string error;
  std::optional<nlohmann::json> doc = read_json(json, error);
  if (!doc) return malformed("the bundle is " + error);
  if (!doc->is_object()) return malformed("the bundle is not a JSON object");
  Bundle out;
  const std::string* media = string_at(*doc, "mediaType");
  if (!media) return malformed("the bundle has no mediaType");
  out.media_type = *media;
  out.minor_version = media_minor(*media);
  if (out.minor_version == 0)
    return malformed("unsupported bundle media type \"" + printable_bytes(*media) +
                     "\" (this verifier reads bundle versions 0.1, 0.2 and 0.3)");
  const nlohmann::json* material = object_at(*doc, "verificationMaterial");
  if (!material) return malformed("the bundle has no verificationMaterial");
  int key_kinds = material->contains("publicKey") + material->contains("x509CertificateChain") +
                  material->contains("certificate");
  if (key_kinds != 1)
    return malformed(
        "verificationMaterial must hold exactly one of publicKey, x509CertificateChain, "
        "certificate");
  if (out.minor_version == 3) {
    const nlohmann::json* cert = object_at(*material, "certificate");
    std::optional<std::string> der = cert ? bytes_at(*cert, "rawBytes") : std::nullopt;
    if (!der) return malformed("a v0.3 bundle needs verificationMaterial.certificate.rawBytes");
    out.leaf_der = std::move(*der);
  } else {
    const nlohmann::json* chain = object_at(*material, "x509CertificateChain");
    const nlohmann::json* certs = chain ? array_at(*chain, "certificates") : nullptr;
    if (!certs || certs->empty())
      return malformed("a v0.1/v0.2 bundle needs a non-empty x509CertificateChain");
    std::optional<std::string> der = bytes_at((*certs)[0], "rawBytes");
    if (!der) return malformed("x509CertificateChain.certificates[0].rawBytes is not base64");
    out.leaf_der = std::move(*der);
  }
  const nlohmann::json* entries = array_at(*material, "tlogEntries");
  if (!entries || entries->size() != 1)
    return malformed("expected exactly one transparency log entry, found " +
                     std::to_string(entries ? entries->size() : 0));
  std::variant<TlogEntry, Refusal> entry = parse_entry((*entries)[0]);
  if (auto* r = std::get_if<Refusal>(&entry)) return std::move(*r);
  out.entry = std::move(std::get<TlogEntry>(entry));
  if (const nlohmann::json* tvd = object_at(*material, "timestampVerificationData"))
    if (const nlohmann::json* ts = array_at(*tvd, "rfc3161Timestamps"))
      for (const nlohmann::json& t : *ts) {
        std::optional<std::string> der = bytes_at(t, "signedTimestamp");
        if (!der || der->empty())
          return malformed("timestampVerificationData holds a signedTimestamp that is not base64");
        out.rfc3161_timestamps.push_back(std::move(*der));
      }
  if (out.minor_version == 1) {
    if (!out.entry.signed_entry_timestamp)
      return malformed("a v0.1 bundle must contain an inclusion promise");
  } else if (!out.entry.signed_entry_timestamp && out.rfc3161_timestamps.empty()) {
    return malformed("the bundle must contain an inclusion promise or signed timestamp(s)");
  }
  if (doc->contains("dsseEnvelope"))
    return malformed(
        "the bundle signs a DSSE envelope; kernels metadata is signed as a message "
        "(messageSignature)");
  const nlohmann::json* message = object_at(*doc, "messageSignature");
  if (!message) return malformed("the bundle has no messageSignature");
  std::optional<std::string> signature = bytes_at(*message, "signature");
  if (!signature || signature->empty())
    return malformed("messageSignature.signature is missing or not base64");
  out.signature = std::move(*signature);
  if (const nlohmann::json* digest = object_at(*message, "messageDigest")) {
    const std::string* algorithm = string_at(*digest, "algorithm");
    std::optional<std::string> raw = bytes_at(*digest, "digest");
    if (!algorithm || *algorithm != "SHA2_256" || !raw)
      return malformed("messageSignature.messageDigest must be a base64 SHA2_256 digest");
    out.message_digest = std::move(*raw);
  }
  return out;
}

}  // namespace kernels::sigstore
