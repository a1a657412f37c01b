// libFuzzer target: pyproject.toml's [tool.kernels.dependencies] (lockfile/src/pyproject.cpp),
// through toml++ and the screen in front of it (lockfile/src/toml_screen.h, which keeps toml++
// 3.3 away from the inputs that reach its undefined behaviour). Any input must give
// dependencies or a lockfile_invalid error, never a crash, a hang or a sanitizer report. Run by
// scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/lockfile/pyproject.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto deps = kernels::parse_pyproject(text, "fuzz/pyproject.toml"); !deps) {
    if (deps.error().code != kernels::ErrorCode::lockfile_invalid) __builtin_trap();
  }
  return 0;
}
