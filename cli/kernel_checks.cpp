#include "kernel_checks.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace kernels::cli {
namespace {

// "X.Y.Z" as numbers; the parser already made sure kernels-minver has exactly this shape.
std::optional<std::array<unsigned long long, 3>> three_numbers(std::string_view v) {
  std::array<unsigned long long, 3> out{};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::size_t dot = i < 2 ? v.find('.') : v.size();
    if (dot == std::string_view::npos) return std::nullopt;
    std::string_view part = v.substr(0, dot);
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), out[i]);
    if (ec != std::errc() || ptr != part.data() + part.size() || part.empty()) return std::nullopt;
    v.remove_prefix(std::min(v.size(), dot + 1));
  }
  return out;
}

}  // namespace

std::optional<std::string> minver_problem(const VariantMetadata& metadata,
                                          std::string_view variant) {
  if (!metadata.kernels_minver) return std::nullopt;
  auto wanted = three_numbers(*metadata.kernels_minver);
  auto have = three_numbers(kPythonKernelsVersion);
  if (!wanted || !have || *have >= *wanted) return std::nullopt;
  return "Kernel '" + metadata.name + "' variant '" + std::string(variant) +
         "' requires kernels>=" + *metadata.kernels_minver + ", but version " +
         std::string(kPythonKernelsVersion) +
         " is installed. Upgrade with: pip install --upgrade kernels";
}

}  // namespace kernels::cli
