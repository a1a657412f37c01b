#include "kernels/sigstore/variant.h"

#include <fstream>
#include <sstream>

#include "bundle.h"
#include "kernels/lockfile/variant_metadata.h"

namespace kernels::sigstore {
namespace {

constexpr std::uintmax_t kMaxFile = 16u << 20;

// The file's bytes; nullopt when it is not a regular file (or a symlink to one) or too large.
std::optional<std::string> read_small_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  if (std::filesystem::file_size(path, ec) > kMaxFile || ec) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  if (!in && !in.eof()) return std::nullopt;
  return out.str();
}

}  // namespace

VariantSignature verify_variant_signature(const std::filesystem::path& variant_dir,
                                          const TrustedRoot& root, const IdentityPolicy& policy) {
  using Kind = VariantSignature::Kind;
  VariantSignature out;
  std::optional<std::string> bundle = read_small_file(variant_dir / "metadata.json.sigstore");
  if (!bundle) return out;  // bundle_missing
  std::variant<Bundle, Refusal> parsed = parse_bundle(*bundle);
  if (auto* r = std::get_if<Refusal>(&parsed)) {
    out.kind = Kind::bundle_invalid;
    out.reasons = {r->message};
    out.refusal = *r;
    return out;
  }
  std::optional<std::string> metadata = read_small_file(variant_dir / "metadata.json");
  if (!metadata) {
    out.kind = Kind::metadata_missing;
    return out;
  }
  Verdict verdict = verify_bundle(*metadata, *bundle, root, policy);
  if (auto* r = std::get_if<Refusal>(&verdict)) {
    out.kind = Kind::signature_failed;
    out.reasons = {std::string(check_name(r->check)) + ": " + r->message};
    out.refusal = *r;
    return out;
  }
  out.verified = std::get<Verified>(verdict);
  // Only now are the verified bytes parsed, as 0.17 does.
  Result<VariantMetadata> meta = parse_variant_metadata(*metadata, "metadata.json");
  if (!meta) {
    out.kind = Kind::metadata_invalid;
    out.reasons = {meta.error().message()};
    return out;
  }
  if (!meta->digest) {
    out.kind = Kind::digest_missing;
    return out;
  }
  for (const DigestViolation& v : check_variant_digest(variant_dir, *meta->digest))
    out.reasons.push_back(v.message());
  out.kind = out.reasons.empty() ? Kind::verified : Kind::digest_failed;
  return out;
}

std::string describe(const VariantSignature& r, const std::string& v) {
  using Kind = VariantSignature::Kind;
  auto with_reasons = [&](std::string head) {
    for (const std::string& line : r.reasons) head += "\n" + line;
    return head;
  };
  switch (r.kind) {
    case Kind::bundle_missing:
      return "\xE2\x9D\x8C " + v + ": cannot verify kernel integrity, signature not found";
    case Kind::bundle_invalid:
      return with_reasons("\xE2\x9D\x8C " + v +
                          ": cannot verify kernel integrity, invalid signature bundle:");
    case Kind::metadata_missing:
    case Kind::digest_missing:
      return "\xE2\x9D\x8C " + v +
             ": cannot verify kernel integrity, metadata does not have a digest";
    case Kind::signature_failed:
      return with_reasons("\xE2\x9D\x8C " + v + ": metadata signature verification failed:");
    case Kind::metadata_invalid:
      return with_reasons("\xE2\x9D\x8C " + v +
                          ": cannot verify kernel integrity, invalid metadata:");
    case Kind::digest_failed:
      return with_reasons("\xE2\x9D\x8C " + v + ": kernel integrity check failed");
    case Kind::verified: return "\xE2\x9C\x85 " + v + ": kernel metadata is correctly signed";
  }
  return {};
}

}  // namespace kernels::sigstore
