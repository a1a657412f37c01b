// libFuzzer target: variant names (build/<variant>/ in a kernel repo, keys of kernels.lock) and
// the selection over a list of them, one name per line. Names come from the Hub and the lock, so
// any bytes must give a name or an error, and selection must pick one of the names it was given.
// Run by scripts/fuzz.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/variant.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> names;
  for (std::size_t pos = 0; pos <= text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    names.emplace_back(text.substr(pos, end - pos));
    (void)kernels::parse_variant_name(names.back());
    pos = end + 1;
  }
  kernels::SystemInfo system;
  system.torch = kernels::MajorMinor{2, 10};
  system.backend = kernels::Backend{"cuda", kernels::MajorMinor{13, 0}};
  system.driver_cuda = kernels::MajorMinor{13, 0};
  system.compute_capability = kernels::MajorMinor{9, 0};
  const kernels::VariantSelection selection = kernels::select_variant(names, system);
  if (selection.chosen && std::find(names.begin(), names.end(), *selection.chosen) == names.end())
    __builtin_trap();
  (void)kernels::format_trace(selection);
  return 0;
}
