#include "timestamp.h"

#include <ctime>

#include <openssl/bio.h>
#include <openssl/ts.h>

#include "crypto.h"

namespace kernels::sigstore {
namespace {

std::optional<std::int64_t> gen_time(TS_RESP* response) {
  TS_TST_INFO* info = TS_RESP_get_tst_info(response);
  const ASN1_GENERALIZEDTIME* t = info ? TS_TST_INFO_get_time(info) : nullptr;
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

std::optional<std::int64_t> verify_rfc3161(std::string_view response_der,
                                           std::string_view signature, const TrustedRoot& root) {
  const auto* p = reinterpret_cast<const unsigned char*>(response_der.data());
  std::unique_ptr<TS_RESP, decltype(&TS_RESP_free)> response(
      d2i_TS_RESP(nullptr, &p, static_cast<long>(response_der.size())), TS_RESP_free);
  if (!response ||
      p != reinterpret_cast<const unsigned char*>(response_der.data()) + response_der.size()) {
    openssl_error();
    return std::nullopt;
  }
  std::optional<std::int64_t> time = gen_time(response.get());
  if (!time) return std::nullopt;
  for (const CertificateAuthority& tsa : root.timestamp_authorities) {
    // sigstore-python needs the TSA's own certificate and its root at least.
    if (tsa.chain_der.size() < 2 || !tsa.valid_for.contains(*time)) continue;
    std::unique_ptr<TS_VERIFY_CTX, decltype(&TS_VERIFY_CTX_free)> ctx(TS_VERIFY_CTX_new(),
                                                                      TS_VERIFY_CTX_free);
    X509_STORE* store = X509_STORE_new();
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    BIO* data = BIO_new_mem_buf(signature.data(), static_cast<int>(signature.size()));
    if (!ctx || !store || !untrusted || !data) {
      X509_STORE_free(store);
      sk_X509_pop_free(untrusted, X509_free);
      BIO_free(data);
      return std::nullopt;
    }
    X509Ptr anchor = load_certificate_der(tsa.chain_der.back());
    if (anchor) X509_STORE_add_cert(store, anchor.get());
    for (std::size_t i = 0; i + 1 < tsa.chain_der.size(); ++i)
      if (X509Ptr c = load_certificate_der(tsa.chain_der[i])) sk_X509_push(untrusted, c.release());
    // The chain is checked at the time the TSA vouches for, not now.
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), static_cast<time_t>(*time));
    // The context owns what it is given from here on.
    TS_VERIFY_CTX_set_store(ctx.get(), store);
    TS_VERIFY_CTX_set_certs(ctx.get(), untrusted);
    TS_VERIFY_CTX_set_data(ctx.get(), data);
    TS_VERIFY_CTX_set_flags(ctx.get(), TS_VFY_SIGNATURE | TS_VFY_VERSION | TS_VFY_DATA);
    bool ok = TS_RESP_verify_response(ctx.get(), response.get()) == 1;
    openssl_error();
    if (ok) return time;
  }
  return std::nullopt;
}

}  // namespace kernels::sigstore
