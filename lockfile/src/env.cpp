#include "kernels/lockfile/env.h"
#include "kernels/lockfile/text.h"

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
  const std::string v = ascii_lower(value);
  return v == "1" || v == "on" || v == "yes" || v == "true";
}

bool env_truthy(const EnvLookup& env, std::string_view name) {
  const std::optional<std::string> value = env(name);
  return value && env_truthy(*value);
}

}  // namespace kernels
