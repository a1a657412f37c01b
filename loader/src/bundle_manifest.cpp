#include "bundle_manifest.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace kernels::loader {
namespace {

struct BadNumber {
  std::string what;
};

// The integer `key` of `object` (`fallback` when absent), as Int. nlohmann's get<int>() of 1e300
// is undefined behaviour and of 4294967296 wraps, so the kind and the range are checked first.
template <class Int>
Int integer(const nlohmann::json& object, const char* key, std::optional<Int> fallback = {}) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (fallback) return *fallback;
    return object.at(key).template get<Int>();  // throws nlohmann's "key not found"
  }
  constexpr auto lo = std::numeric_limits<Int>::min();
  constexpr auto hi = std::numeric_limits<Int>::max();
  const bool fits = (it->is_number_unsigned() && it->template get<std::uint64_t>() <= hi) ||
                    (it->is_number_integer() && !it->is_number_unsigned() &&
                     it->template get<std::int64_t>() >= static_cast<std::int64_t>(lo) &&
                     it->template get<std::int64_t>() <= static_cast<std::int64_t>(hi));
  if (!fits)
    throw BadNumber{std::string(key) + " must be an integer from " + std::to_string(lo) + " to " +
                    std::to_string(hi) + ", got " + it->dump().substr(0, 40)};
  return static_cast<Int>(it->is_number_unsigned() ? it->template get<std::uint64_t>()
                                                   : it->template get<std::int64_t>());
}

}  // namespace

Result<BundleManifest> parse_bundle_manifest(std::string_view text, std::string_view source) {
  auto invalid = [&](std::string what) {
    return make_error(ErrorCode::lockfile_invalid, std::move(what), std::string(source),
                      "the bundle's manifest.json is malformed; re-publish the bundle");
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return invalid(std::string("not JSON: ") + e.what());
  }
  if (!j.is_object()) return invalid("top level is not an object");
  BundleManifest m;
  try {
    m.format_version = integer<int>(j, "format_version");
    if (m.format_version != 1)
      return invalid("format_version " + std::to_string(m.format_version) + " is not 1");
    m.family = j.at("family").get<std::string>();
    m.params_abi = integer<std::uint32_t>(j, "params_abi");
    m.arch = j.at("arch").get<std::string>();
    m.cuda = j.value("cuda", std::string());
    for (const auto& k : j.at("kernels")) {
      ManifestKernel mk;
      mk.name = k.at("name").get<std::string>();
      mk.head_dim = integer<int>(k, "head_dim", 0);
      mk.head_dim_v = integer<int>(k, "head_dim_v", mk.head_dim);
      mk.dtype = k.value("dtype", std::string());
      mk.threads = integer<int>(k, "threads", 0);
      mk.smem_bytes = integer<int>(k, "smem_bytes", 0);
      mk.block_m = integer<int>(k, "block_m", 0);
      mk.block_n = integer<int>(k, "block_n", 0);
      m.kernels.push_back(std::move(mk));
    }
  } catch (const nlohmann::json::exception& e) {
    return invalid(std::string("missing or mistyped field: ") + e.what());
  } catch (const BadNumber& e) {
    return invalid(e.what);
  }
  return m;
}

}  // namespace kernels::loader
