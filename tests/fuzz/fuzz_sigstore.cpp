// libFuzzer target: Sigstore bundles and trusted roots (cli/sigstore), untrusted files the CLI
// reads from the Hub or the user. The first byte picks the parser: even, the rest is a bundle
// verified over the bytes "metadata" against the public-good trusted root; odd, the rest is a
// trusted root. A bundle must be refused with a named check and a message (no input can be a valid
// signature over these bytes: one that verified would be a forgery), a trusted root must parse or
// be a lockfile_invalid error; never a crash, a hang or a sanitizer report. Run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string_view>

#include "kernels/sigstore/verify.h"

namespace {

const kernels::sigstore::TrustedRoot& public_good_root() {
  static const kernels::sigstore::TrustedRoot root = [] {
    std::ifstream in(KERNELS_SIGSTORE_ROOT_FILE, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = kernels::sigstore::parse_trusted_root(text.str(), "public-good");
    if (!parsed) __builtin_trap();
    return *parsed;
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto verdict = kernels::sigstore::verify_bundle("metadata", text, public_good_root(),
                                                    kernels::sigstore::kernels_community_policy());
    const auto* refusal = std::get_if<kernels::sigstore::Refusal>(&verdict);
    if (!refusal || refusal->message.empty()) __builtin_trap();
    return 0;
  }
  auto root = kernels::sigstore::parse_trusted_root(text, "fuzz/trusted_root.json");
  if (!root && root.error().code != kernels::ErrorCode::lockfile_invalid) __builtin_trap();
  return 0;
}
