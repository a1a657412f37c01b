// Publishing files: never a half-written file under its final name.
#pragma once

#include <sys/types.h>
#include <filesystem>
#include <string_view>

#include "kernels/lockfile/error.h"

namespace kernels {

// Writes `bytes` to a unique temp file in the destination's directory, fsyncs it, renames it over
// `path`, then fsyncs the directory. Mode is applied before the rename (umask respected).
Result<void> write_atomic(const std::filesystem::path& path, std::string_view bytes,
                          mode_t mode = 0644);

// The same inside the directory `dir_fd` (one component `name`, never following a link there):
// what write_atomic does once it has the directory, and what CacheDir uses. `shown_as` names the
// directory in errors.
Result<void> write_atomic_at(int dir_fd, std::string_view name, std::string_view bytes, mode_t mode,
                             const std::filesystem::path& shown_as);

// A unique temp path next to `final_path`: "<final>.<8 hex>.incomplete". Used by downloads that
// stream into a file and publish it with publish_file().
std::filesystem::path unique_temp_path(const std::filesystem::path& final_path);

// fsync(temp) + rename(temp, final) + fsync(dir). If `final_path` appears meanwhile (another
// process won the race) the rename still replaces it with identical verified bytes.
Result<void> publish_file(const std::filesystem::path& temp_path,
                          const std::filesystem::path& final_path);

Result<void> fsync_directory(const std::filesystem::path& dir);

}  // namespace kernels
