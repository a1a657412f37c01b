// The OpenSSL pieces the verifier shares: owning pointers, base64 as protobuf JSON writes bytes,
// SHA-256, and a signature check with a public key.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/x509.h>

namespace kernels::sigstore {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// Standard or URL-safe alphabet, padding optional (protobuf JSON accepts both); nullopt on any
// other character or a bad length. Whitespace is not allowed.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

std::string sha256(std::string_view bytes);  // 32 raw bytes
std::string hex(std::string_view bytes);     // lowercase

PkeyPtr load_spki(std::string_view der);
X509Ptr load_certificate_der(std::string_view der);
std::string spki_der(EVP_PKEY* key);
std::string certificate_der(X509* cert);

// Verifies `signature` over `data`: ECDSA and RSA (PKCS#1 v1.5) with SHA-256, Ed25519 as itself.
bool verify_signature(EVP_PKEY* key, std::string_view data, std::string_view signature);

// OpenSSL's last error queue as one line (and cleared), for messages.
std::string openssl_error();

}  // namespace kernels::sigstore
