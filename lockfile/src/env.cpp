#include "kernels/lockfile/env.h"

#include <cctype>
#include <cstdlib>

namespace kernels {

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

bool env_truthy(std::string_view value) {
  std::string upper(value);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper == "1" || upper == "ON" || upper == "YES" || upper == "TRUE";
}

bool env_truthy(const EnvLookup& env, std::string_view name) {
  const std::optional<std::string> value = env(name);
  return value && env_truthy(*value);
}

}  // namespace kernels
