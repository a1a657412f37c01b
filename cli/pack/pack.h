// Packs and unpacks for air-gapped sites and Docker layers: a tar + zstd archive holding either
// the part of a cache that a lockfile references, or a static mirror directory.
//
// Archive content (regular files and directories only, never links):
//   kernels-pack.json                      {"format_version":1,"kind":"cache"|"mirror"}
//   cache:  kernels--<org>--<name>/blobs/<etag>, .../trees/<commit>.json, .../refs/<ref>
//   mirror: api/kernels/<org>/<name>/{refs,revision/<rev>,tree/<commit>},
//           kernels/<org>/<name>/resolve/<commit>/<path>,
//           api/organizations/<org>/overview (where the mirror has it)
// Snapshot links are not packed: unpack re-creates them in the destination cache.
//
// Unpack trusts nothing in the archive: entries are checked as they are read (type, path, size,
// count, duplicates), extracted into a staging directory inside the destination, every file is
// verified against the caller's lockfile, and only then are files moved into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/lockfile.h"

namespace kernels::cli {

enum class PackKind { cache, mirror };

struct PackLimits {
  std::uint64_t max_total_bytes = 64ull << 30;  // sum of file sizes
  std::uint64_t max_entries = 200000;
  std::size_t max_path_bytes = 1024;
};

struct PackSummary {
  PackKind kind = PackKind::cache;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;  // file content bytes (before compression)
};

// Packs what `lock` references from the cache at `cache_root` (every variant present in the
// cache; at least one per locked repo) into `archive_path` (written atomically).
Result<PackSummary> pack_cache(const std::filesystem::path& cache_root, const Lockfile& lock,
                               const std::filesystem::path& archive_path);

// Packs the files of a static mirror that `lock` references.
Result<PackSummary> pack_mirror(const std::filesystem::path& mirror_dir, const Lockfile& lock,
                                const std::filesystem::path& archive_path);

// Where unpack() stands when it calls its probe: the staging directory was just made (empty), or
// the archive is extracted into it and nothing is verified yet.
enum class UnpackStage { staging_created, extracted };
// Called at each stage with the staging directory's path. Tests use it to do, at a known moment,
// what a local user racing unpack could (swap a staged directory for a link, plant a FIFO).
using UnpackProbe = std::function<void(UnpackStage, const std::filesystem::path& staging)>;

// Unpacks into a cache root or a mirror directory (the archive says which), verifying every file
// against `lock` before anything becomes visible. Errors: unsafe (11) for a refused entry, or a
// link, FIFO or device found in the staging directory; integrity_mismatch (6) for bytes that do
// not match the lock; lockfile_invalid (5) for a malformed archive manifest or tree.
Result<PackSummary> unpack(const std::filesystem::path& archive_path,
                           const std::filesystem::path& destination, const Lockfile& lock,
                           const PackLimits& limits = {}, const UnpackProbe& probe = {});

// The kind an archive made by pack_cache/pack_mirror declares in its first entry, read without
// extracting anything.
Result<PackKind> read_pack_kind(const std::filesystem::path& archive_path);

std::string_view pack_kind_name(PackKind kind);

}  // namespace kernels::cli
