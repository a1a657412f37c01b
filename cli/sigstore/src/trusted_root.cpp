#include "kernels/sigstore/trusted_root.h"

#include <charconv>
#include <ctime>

#include "crypto.h"
#include "json_read.h"

namespace kernels::sigstore {
namespace {

Error invalid(std::string_view source, std::string what) {
  return make_error(ErrorCode::lockfile_invalid, "trusted root: " + std::move(what),
                    std::string(source),
                    "pass a Sigstore trusted_root.json (--trusted-root FILE or "
                    "KERNELS_SIGSTORE_TRUSTED_ROOT), or unset both to use the built-in one");
}

Result<ValidFor> parse_valid_for(const nlohmann::json& holder, std::string_view source,
                                 const std::string& where) {
  const nlohmann::json* v = object_at(holder, "validFor");
  if (!v) return invalid(source, where + ".validFor is missing");
  const std::string* start = string_at(*v, "start");
  std::optional<std::int64_t> s = start ? parse_rfc3339(*start) : std::nullopt;
  if (!s) return invalid(source, where + ".validFor.start is missing or not an RFC 3339 time");
  ValidFor out{*s, std::nullopt};
  if (v->contains("end")) {
    const std::string* end = string_at(*v, "end");
    std::optional<std::int64_t> e = end ? parse_rfc3339(*end) : std::nullopt;
    if (!e) return invalid(source, where + ".validFor.end is not an RFC 3339 time");
    out.end = *e;
  }
  return out;
}

Result<std::vector<LogKey>> parse_logs(const nlohmann::json& doc, const char* field,
                                       std::string_view source) {
  std::vector<LogKey> out;
  const nlohmann::json* logs = array_at(doc, field);
  if (!logs) return out;
  for (std::size_t i = 0; i < logs->size(); ++i) {
    const nlohmann::json& log = (*logs)[i];
    std::string where = std::string(field) + "[" + std::to_string(i) + "]";
    LogKey key;
    if (const std::string* url = string_at(log, "baseUrl")) key.base_url = *url;
    const nlohmann::json* pub = object_at(log, "publicKey");
    const std::string* raw = pub ? string_at(*pub, "rawBytes") : nullptr;
    std::optional<std::string> der = raw ? base64_decode(*raw) : std::nullopt;
    if (!der) return invalid(source, where + ".publicKey.rawBytes is missing or not base64");
    PkeyPtr pkey = load_spki(*der);
    if (!pkey) return invalid(source, where + ".publicKey is not a public key OpenSSL can read");
    key.spki_der = *der;
    if (const std::string* details = string_at(*pub, "keyDetails")) key.key_details = *details;
    Result<ValidFor> valid = parse_valid_for(*pub, source, where + ".publicKey");
    if (!valid) return valid.error();
    key.valid_for = *valid;
    key.key_id = sha256(*der);
    // Rekor v1 and CT logs name a key by its SHA-256 (RFC 6962 §3.2); Rekor v2 logs by a
    // signed-note key id, so the stated id is kept beside the computed one.
    const nlohmann::json* id = object_at(log, "logId");
    const std::string* key_id = id ? string_at(*id, "keyId") : nullptr;
    std::optional<std::string> stated = key_id ? base64_decode(*key_id) : std::nullopt;
    if (!stated || stated->empty())
      return invalid(source, where + ".logId.keyId is missing or not base64");
    key.log_id = std::move(*stated);
    out.push_back(std::move(key));
  }
  return out;
}

Result<std::vector<CertificateAuthority>> parse_authorities(const nlohmann::json& doc,
                                                            const char* field,
                                                            std::string_view source) {
  std::vector<CertificateAuthority> out;
  const nlohmann::json* cas = array_at(doc, field);
  if (!cas) return out;
  for (std::size_t i = 0; i < cas->size(); ++i) {
    const nlohmann::json& ca = (*cas)[i];
    std::string where = std::string(field) + "[" + std::to_string(i) + "]";
    CertificateAuthority authority;
    if (const std::string* uri = string_at(ca, "uri")) authority.uri = *uri;
    const nlohmann::json* chain = object_at(ca, "certChain");
    const nlohmann::json* certs = chain ? array_at(*chain, "certificates") : nullptr;
    if (!certs || certs->empty())
      return invalid(source, where + ".certChain.certificates is missing or empty");
    for (const nlohmann::json& c : *certs) {
      const std::string* raw = string_at(c, "rawBytes");
      std::optional<std::string> der = raw ? base64_decode(*raw) : std::nullopt;
      if (!der || !load_certificate_der(*der))
        return invalid(source, where + " holds a certificate that is not base64 DER X.509");
      authority.chain_der.push_back(std::move(*der));
    }
    Result<ValidFor> valid = parse_valid_for(ca, source, where);
    if (!valid) return valid.error();
    authority.valid_for = *valid;
    out.push_back(std::move(authority));
  }
  return out;
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fraction]Z
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
      t[13] != ':' || t[16] != ':' || (t.back() != 'Z' && t.back() != 'z'))
    return std::nullopt;
  auto num = [&](std::size_t at, std::size_t len) -> std::optional<int> {
    int v = 0;
    auto [end, ec] = std::from_chars(t.data() + at, t.data() + at + len, v);
    if (ec != std::errc() || end != t.data() + at + len) return std::nullopt;
    return v;
  };
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2),
       s = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
  if (t.size() > 20) {
    if (t[19] != '.' || t.size() == 21) return std::nullopt;
    for (std::size_t i = 20; i + 1 < t.size(); ++i)
      if (t[i] < '0' || t[i] > '9') return std::nullopt;
  }
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *s > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = *y - 1900;
  tm.tm_mon = *mo - 1;
  tm.tm_mday = *d;
  tm.tm_hour = *h;
  tm.tm_min = *mi;
  tm.tm_sec = *s;
  return static_cast<std::int64_t>(timegm(&tm));
}

Result<TrustedRoot> parse_trusted_root(std::string_view json, std::string_view source) {
  std::string error;
  std::optional<nlohmann::json> doc = read_json(json, error);
  if (!doc || !doc->is_object()) return invalid(source, doc ? "not a JSON object" : error);
  const std::string* media = string_at(*doc, "mediaType");
  if (!media || (*media != "application/vnd.dev.sigstore.trustedroot+json;version=0.1" &&
                 *media != "application/vnd.dev.sigstore.trustedroot.v0.2+json"))
    return invalid(source,
                   "mediaType is " +
                       (media ? "\"" + printable_bytes(*media) + "\"" : std::string("missing")) +
                       ", expected application/vnd.dev.sigstore.trustedroot+json;"
                       "version=0.1");
  TrustedRoot root;
  root.source = std::string(source);
  Result<std::vector<LogKey>> tlogs = parse_logs(*doc, "tlogs", source);
  if (!tlogs) return tlogs.error();
  root.tlogs = std::move(*tlogs);
  Result<std::vector<LogKey>> ctlogs = parse_logs(*doc, "ctlogs", source);
  if (!ctlogs) return ctlogs.error();
  root.ctlogs = std::move(*ctlogs);
  Result<std::vector<CertificateAuthority>> cas = parse_authorities(*doc, "certificateAuthorities",
                                                                    source);
  if (!cas) return cas.error();
  root.certificate_authorities = std::move(*cas);
  Result<std::vector<CertificateAuthority>> tsas = parse_authorities(*doc, "timestampAuthorities",
                                                                     source);
  if (!tsas) return tsas.error();
  root.timestamp_authorities = std::move(*tsas);
  if (root.tlogs.empty()) return invalid(source, "names no transparency log (tlogs)");
  if (root.ctlogs.empty()) return invalid(source, "names no CT log (ctlogs)");
  if (root.certificate_authorities.empty())
    return invalid(source, "names no certificate authority (certificateAuthorities)");
  return root;
}

}  // namespace kernels::sigstore
