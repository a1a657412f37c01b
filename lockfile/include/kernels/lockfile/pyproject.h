// pyproject.toml [tool.kernels.dependencies]: `"org/name" = N` where N is the Hub branch vN.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels {

struct KernelDependency {
  std::string repo_id;
  int version = 0;  // branch "v<version>"
  bool operator==(const KernelDependency&) const = default;
};

// File order is kept. A missing table, a string version specifier or a malformed repo id is a
// clear ErrorCode::lockfile_invalid error naming <source>:<line>:<column>.
Result<std::vector<KernelDependency>> parse_pyproject(std::string_view text,
                                                      std::string_view source = "pyproject.toml");
Result<std::vector<KernelDependency>> read_pyproject(const std::filesystem::path& path);

}  // namespace kernels
