// libFuzzer target: a bundle's manifest.json (loader/src/bundle_manifest.cpp), the file the
// loader reads from the cache before it trusts a bundle's kernel list. Any input must give a
// manifest or a lockfile_invalid error, never a crash, a hang or a sanitizer report. Run by
// scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = kernels::loader::parse_bundle_manifest(text, "fuzz/manifest.json");
  if (!manifest) {
    if (manifest.error().code != kernels::ErrorCode::lockfile_invalid) __builtin_trap();
    return 0;
  }
  if (manifest->format_version != 1) __builtin_trap();
  return 0;
}
