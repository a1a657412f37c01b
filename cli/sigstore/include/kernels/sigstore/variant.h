// One build variant's signature, as Python kernels 0.17's verify_variant judges it: the
// metadata.json.sigstore bundle over the exact bytes of metadata.json (verify.h), then every file
// of the variant against metadata.json's digest (kernels/lockfile/variant_metadata.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "kernels/sigstore/verify.h"

namespace kernels::sigstore {

struct VariantSignature {
  // 0.17's result classes, in the order it tests for them.
  enum class Kind {
    bundle_missing,    // SignatureBundleMissing
    bundle_invalid,    // SignatureBundleInvalid
    metadata_missing,  // MetadataMissing (printed as "no digest", as 0.17 does)
    signature_failed,  // SignatureVerificationFailure
    metadata_invalid,  // MetadataInvalid
    digest_missing,    // DigestMissing
    digest_failed,     // DigestVerificationFailure
    verified,          // Success
  };
  Kind kind = Kind::bundle_missing;
  std::vector<std::string> reasons;  // the refusal, or one line per digest violation
  std::optional<Refusal> refusal;    // bundle_invalid and signature_failed: the check that failed
  std::optional<Verified> verified;  // verified: who signed, when
};

// `variant_dir`: build/<variant> in a snapshot (symlinks to files are followed).
VariantSignature verify_variant_signature(const std::filesystem::path& variant_dir,
                                          const TrustedRoot& root, const IdentityPolicy& policy);

// 0.17's line(s) for the result (without the trailing newline): "✅ <v>: kernel metadata is
// correctly signed", "❌ <v>: ...".
std::string describe(const VariantSignature& result, const std::string& variant);

}  // namespace kernels::sigstore
