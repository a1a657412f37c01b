#include "certificate.h"

#include <openssl/asn1.h>
#include <openssl/ct.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

namespace kernels::sigstore {
namespace {

constexpr const char* kIssuerV1 = "1.3.6.1.4.1.57264.1.1";
constexpr const char* kIssuerV2 = "1.3.6.1.4.1.57264.1.8";
constexpr const char* kBuildSigner = "1.3.6.1.4.1.57264.1.9";
constexpr const char* kSourceRepository = "1.3.6.1.4.1.57264.1.12";

// The raw extnValue of the extension with this OID, nullopt when absent.
std::optional<std::string> extension_value(X509* cert, const char* oid) {
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> obj(OBJ_txt2obj(oid, 1),
                                                                ASN1_OBJECT_free);
  if (!obj) return std::nullopt;
  int at = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (at < 0) return std::nullopt;
  ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, at));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

// Fulcio's v2 extensions hold a DER UTF8String; the v1 ones (1.1 ... 1.6) the raw text.
std::optional<std::string> utf8_extension(X509* cert, const char* oid) {
  std::optional<std::string> der = extension_value(cert, oid);
  if (!der) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  ASN1_UTF8STRING* s = d2i_ASN1_UTF8STRING(nullptr, &p, static_cast<long>(der->size()));
  if (!s) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<std::size_t>(ASN1_STRING_length(s)));
  bool whole = p == reinterpret_cast<const unsigned char*>(der->data()) + der->size();
  ASN1_UTF8STRING_free(s);
  if (!whole) return std::nullopt;
  return out;
}

std::string subject_alt_name(X509* cert) {
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return {};
  std::string out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && out.empty(); ++i) {
    GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_URI || name->type == GEN_EMAIL) {
      ASN1_IA5STRING* s = name->type == GEN_URI ? name->d.uniformResourceIdentifier
                                                : name->d.rfc822Name;
      out.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                 static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string found(const std::optional<std::string>& value, const char* oid) {
  if (!value) return std::string("none (no readable ") + oid + " extension)";
  return "\"" + printable_bytes(*value) + "\"";
}

}  // namespace

std::optional<Refusal> check_chain(X509* leaf, const TrustedRoot& root, std::int64_t time,
                                   X509Ptr& issuer) {
  if (X509_check_ca(leaf) != 0)
    return Refusal{Check::certificate_chain, "the signing certificate is a CA, not a leaf"};
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  int anchors = 0;
  for (const CertificateAuthority& ca : root.certificate_authorities) {
    if (!ca.valid_for.contains(time)) continue;
    for (const std::string& der : ca.chain_der) {
      X509Ptr cert = load_certificate_der(der);
      if (cert && X509_STORE_add_cert(store.get(), cert.get()) == 1) ++anchors;
    }
  }
  if (anchors == 0)
    return Refusal{Check::certificate_chain, "the trusted root (" + root.source +
                                                 ") has no certificate authority valid at the "
                                                 "verified time " +
                                                 std::to_string(time)};
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1)
    return Refusal{Check::certificate_chain, "OpenSSL: " + openssl_error()};
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(time));
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    openssl_error();
    return Refusal{Check::certificate_chain,
                   std::string("the signing certificate does not chain to a trusted Fulcio CA at "
                               "the verified time: ") +
                       X509_verify_cert_error_string(err)};
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  if (sk_X509_num(chain) < 2)
    return Refusal{Check::certificate_chain, "the signing certificate is itself a trust anchor"};
  X509* up = sk_X509_value(chain, 1);
  X509_up_ref(up);
  issuer.reset(up);
  return std::nullopt;
}

std::optional<Refusal> check_sct(X509* leaf, X509* issuer, const TrustedRoot& root) {
  auto* scts = static_cast<STACK_OF(SCT)*>(
      X509_get_ext_d2i(leaf, NID_ct_precert_scts, nullptr, nullptr));
  if (!scts) return Refusal{Check::sct, "the signing certificate has no embedded SCT extension"};
  std::unique_ptr<STACK_OF(SCT), void (*)(STACK_OF(SCT)*)> guard(scts, SCT_LIST_free);
  if (sk_SCT_num(scts) != 1)
    return Refusal{Check::sct,
                   "expected one embedded SCT, found " + std::to_string(sk_SCT_num(scts))};
  SCT* sct = sk_SCT_value(scts, 0);
  if (SCT_get_version(sct) != SCT_VERSION_V1)
    return Refusal{Check::sct, "the SCT is not version 1"};
  int nid = SCT_get_signature_nid(sct);
  if (nid != NID_ecdsa_with_SHA256 && nid != NID_sha256WithRSAEncryption)
    return Refusal{Check::sct, "the SCT is not signed with SHA-256 (ECDSA or RSA)"};
  unsigned char* id = nullptr;
  std::size_t id_len = SCT_get0_log_id(sct, &id);
  std::string log_id(reinterpret_cast<char*>(id), id_len);
  unsigned char* ext = nullptr;
  std::size_t ext_len = SCT_get0_extensions(sct, &ext);
  unsigned char* sig = nullptr;
  std::size_t sig_len = SCT_get0_signature(sct, &sig);
  std::uint64_t timestamp = SCT_get_timestamp(sct);

  // The precertificate the log signed: this TBS without the SCT list (and poison) extension.
  X509Ptr pre(X509_dup(leaf));
  if (!pre) return Refusal{Check::sct, "OpenSSL: " + openssl_error()};
  for (int nid_drop : {NID_ct_precert_scts, NID_ct_precert_poison}) {
    int at = X509_get_ext_by_NID(pre.get(), nid_drop, -1);
    if (at >= 0) X509_EXTENSION_free(X509_delete_ext(pre.get(), at));
  }
  unsigned char* tbs_buf = nullptr;
  int tbs_len = i2d_re_X509_tbs(pre.get(), &tbs_buf);
  if (tbs_len <= 0) return Refusal{Check::sct, "OpenSSL: " + openssl_error()};
  std::string tbs(reinterpret_cast<char*>(tbs_buf), static_cast<std::size_t>(tbs_len));
  OPENSSL_free(tbs_buf);
  if (tbs.size() >= (1u << 24)) return Refusal{Check::sct, "the certificate is too large"};

  // digitally-signed struct of RFC 6962 §3.2, precert_entry.
  std::string signed_data;
  signed_data.push_back(0);  // sct_version v1
  signed_data.push_back(0);  // signature_type certificate_timestamp
  for (int s = 56; s >= 0; s -= 8) signed_data.push_back(static_cast<char>(timestamp >> s));
  signed_data += std::string("\x00\x01", 2);  // entry_type precert_entry
  signed_data += sha256(spki_der(X509_get0_pubkey(issuer)));
  for (int s = 16; s >= 0; s -= 8) signed_data.push_back(static_cast<char>(tbs.size() >> s));
  signed_data += tbs;
  signed_data.push_back(static_cast<char>(ext_len >> 8));
  signed_data.push_back(static_cast<char>(ext_len));
  signed_data.append(reinterpret_cast<char*>(ext), ext_len);

  std::string_view signature(reinterpret_cast<char*>(sig), sig_len);
  auto time = static_cast<std::int64_t>(timestamp / 1000);
  bool known = false;
  for (const LogKey& key : root.ctlogs) {
    if (key.key_id != log_id) continue;
    known = true;
    if (!key.valid_for.contains(time)) continue;
    PkeyPtr pkey = load_spki(key.spki_der);
    if (pkey && verify_signature(pkey.get(), signed_data, signature)) return std::nullopt;
  }
  return Refusal{Check::sct, known ? "the SCT's signature does not verify with the CT log key "
                                     "it names (valid at its timestamp)"
                                   : "the SCT names CT log " + hex(log_id) +
                                         ", which the trusted root does not list"};
}

std::optional<Refusal> check_key_usage(X509* leaf) {
  std::uint32_t flags = X509_get_extension_flags(leaf);
  if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
    return Refusal{Check::key_usage, "the signing certificate's key usage is not digitalSignature"};
  if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(leaf) & XKU_CODE_SIGN))
    return Refusal{Check::key_usage,
                   "the signing certificate's extended key usage does not include codeSigning"};
  return std::nullopt;
}

SignerIdentity read_identity(X509* leaf) {
  SignerIdentity out;
  if (auto v2 = utf8_extension(leaf, kIssuerV2)) out.issuer = *v2;
  else if (auto v1 = extension_value(leaf, kIssuerV1)) out.issuer = *v1;
  if (auto repo = utf8_extension(leaf, kSourceRepository)) out.source_repository = *repo;
  if (auto signer = utf8_extension(leaf, kBuildSigner)) out.build_signer_uri = *signer;
  out.san = subject_alt_name(leaf);
  return out;
}

std::optional<Refusal> check_identity(X509* leaf, const IdentityPolicy& policy) {
  auto v1 = extension_value(leaf, kIssuerV1);
  if (v1 != policy.issuer)
    return Refusal{Check::identity, "OIDC issuer (" + std::string(kIssuerV1) + "): expected \"" +
                                        policy.issuer + "\", found " + found(v1, kIssuerV1)};
  auto v2 = utf8_extension(leaf, kIssuerV2);
  if (v2 != policy.issuer)
    return Refusal{Check::identity, "OIDC issuer (" + std::string(kIssuerV2) + "): expected \"" +
                                        policy.issuer + "\", found " + found(v2, kIssuerV2)};
  auto repo = utf8_extension(leaf, kSourceRepository);
  if (repo != policy.source_repository)
    return Refusal{Check::identity, "source repository (" + std::string(kSourceRepository) +
                                        "): expected \"" + policy.source_repository + "\", found " +
                                        found(repo, kSourceRepository)};
  auto signer = utf8_extension(leaf, kBuildSigner);
  for (const std::string& uri : policy.build_signer_uris)
    if (signer == uri) return std::nullopt;
  std::string expected;
  for (const std::string& uri : policy.build_signer_uris)
    expected += (expected.empty() ? "\"" : ", \"") + uri + "\"";
  return Refusal{Check::identity, "build signer workflow (" + std::string(kBuildSigner) +
                                      "): expected " +
                                      (policy.build_signer_uris.size() == 1 ? "" : "one of ") +
                                      expected + ", found " + found(signer, kBuildSigner)};
}

}  // namespace kernels::sigstore
