// Checks of one kernel build variant that kernels 0.17.2 makes from its metadata.json, shared by
// `kernels download` and `kernels check`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kernels/lockfile/variant_metadata.h"

namespace kernels::cli {

// The Python kernels release whose behaviour this CLI implements: what a kernel's
// "kernels-minver" is compared with.
inline constexpr std::string_view kPythonKernelsVersion = "0.17.2";

// kernels 0.17.2's MinverValidator: a variant whose kernels-minver (X.Y.Z, compared numerically)
// is above kPythonKernelsVersion needs a newer kernels. Its message then, nullopt otherwise.
std::optional<std::string> minver_problem(const VariantMetadata& metadata,
                                          std::string_view variant);

}  // namespace kernels::cli
