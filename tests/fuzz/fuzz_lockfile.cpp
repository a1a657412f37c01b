// libFuzzer target: kernels.lock (both forms: with variant hashes, and the list form without).
// Any input must give a value or a lockfile_invalid error, never a crash, a hang or a sanitizer
// report. Run by scripts/fuzz.sh. pyproject.toml has its own target, fuzz_pyproject.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/lockfile/lockfile.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto lock = kernels::parse_lockfile(text, "fuzz.lock"); !lock) {
    if (lock.error().code != kernels::ErrorCode::lockfile_invalid) __builtin_trap();
  }
  return 0;
}
