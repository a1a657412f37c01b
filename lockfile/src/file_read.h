// Reading a small input file (kernels.lock, pyproject.toml, trees/<commit>.json) safely: regular
// files only (a FIFO or /dev/zero never blocks or streams forever), size-capped, read once into
// memory so a concurrent rewrite cannot be seen half-way.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "kernels/lockfile/error.h"

namespace kernels {

// A missing file gives `missing_code` (ErrorCode::lockfile_missing for a lock, io otherwise);
// every other failure is ErrorCode::io, except an oversized or non-regular file, which is
// ErrorCode::lockfile_invalid because the content can never be a valid input.
Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes,
                                    ErrorCode missing_code, std::string missing_hint = {});

}  // namespace kernels
