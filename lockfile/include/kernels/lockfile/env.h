// The environment as the tools read it: an injectable lookup, and the one rule for boolean
// switches (HF_HUB_OFFLINE, HF_HUB_DISABLE_SYMLINKS, KERNELS_USE_BUILTIN, ...).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kernels {

// Environment lookup, injectable for tests. Returns nullopt for unset variables.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup process_env();

// Whether a switch's value means "on": "1", "ON", "YES" or "TRUE" in any case. This is
// huggingface_hub's rule (constants._is_true over ENV_VARS_TRUE_VALUES), which the Python
// `kernels` package inherits, so one setting means the same to Python tools and to ours; the
// kernels_loader Python package accepts the same set. Nothing else is on: no trimming, and "y",
// "t", "enabled" and the empty string are off.
bool env_truthy(std::string_view value);

// The switch `name` as `env` sees it; unset is off.
bool env_truthy(const EnvLookup& env, std::string_view name);

}  // namespace kernels
