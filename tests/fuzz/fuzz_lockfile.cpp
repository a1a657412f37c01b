// libFuzzer target: the JSON documents of the on-disk contract a project or the Hub hands us --
// kernels.lock (format 1 with variant hashes, format 2 without), its kernels.lock.hashes sidecar,
// and a variant's metadata.json. Each input goes through all three readers; any input must give
// a value or a lockfile_invalid error, never a crash, a hang or a sanitizer report. Run by
// scripts/fuzz.sh. pyproject.toml has its own target, fuzz_pyproject.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/variant_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto expect_value_or_invalid = [](const auto& result) {
    if (!result && result.error().code != kernels::ErrorCode::lockfile_invalid) __builtin_trap();
  };
  auto lock = kernels::parse_lockfile(text, "fuzz.lock");
  expect_value_or_invalid(lock);
  // What is written must read back as the same lock (`lock --locked` compares bytes).
  if (lock) {
    auto again = kernels::parse_lockfile(kernels::serialize_lockfile(*lock), "fuzz.lock");
    if (!again || again->kernels != lock->kernels) __builtin_trap();
  }
  expect_value_or_invalid(kernels::parse_lock_hashes(text, "fuzz.lock.hashes"));
  expect_value_or_invalid(kernels::parse_variant_metadata(text, "fuzz/metadata.json"));
  return 0;
}
