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

// The dependencies and [tool.kernels] allow-untrusted: organisations ("my-org") or repo ids
// ("my-org/my-kernel") whose kernels may be locked and downloaded although the Hub does not
// call their publisher trusted (cli/trusted_publisher.h). A value that is not an array of such
// strings is ErrorCode::lockfile_invalid naming <source>:<line>:<column>.
struct PyprojectKernels {
  std::vector<KernelDependency> dependencies;
  std::vector<std::string> allow_untrusted;
};
Result<PyprojectKernels> parse_pyproject_kernels(std::string_view text,
                                                 std::string_view source = "pyproject.toml");
Result<PyprojectKernels> read_pyproject_kernels(const std::filesystem::path& path);
// "org" (the characters of a repo id component) or "org/name" (is_repo_id).
bool is_allow_untrusted_entry(std::string_view entry);

}  // namespace kernels
