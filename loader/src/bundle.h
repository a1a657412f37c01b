// A community kernel bundle: found through kernels.lock in the CLI's cache, read into memory,
// verified against the lock over exactly those bytes, and its manifest checked against this
// library's params ABI. Loading the verified image is the caller's job (same buffer).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bundle_manifest.h"
#include "kernels/loader/loader.h"
#include "kernels/lockfile/env.h"
#include "kernels/lockfile/error.h"
#include "kernels/lockfile/variant.h"

namespace kernels::loader {

// Checks a manifest against what this library can launch: family, params ABI, arch of the
// variant, and for every kernel it lists, the configuration the launch plan assumes (a kernel
// with another block size or shared memory would be launched wrongly). Returns the names of the
// plan's kernels the manifest covers.
Result<std::set<std::string>> check_manifest(const BundleManifest& manifest,
                                             std::string_view family, const VariantName& variant,
                                             std::string_view source);

// Bytes read from the cache: a vector whose resize() leaves the new bytes uninitialised, so a
// 50 MB file is not zero-filled just before read() overwrites it.
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using Bytes = std::vector<std::uint8_t, NoInitAllocator<std::uint8_t>>;

struct BundleRequest {
  std::filesystem::path lockfile;
  std::filesystem::path cache_root;
  std::string repo_id;
  std::string family;  // expected manifest family
  MajorMinor driver_cuda;
  MajorMinor compute_capability;
  EnvLookup env = process_env();  // KERNELS_ALLOW_SHARED_CACHE
  // Only a variant whose verified signature is recorded in the cache for these bytes
  // (lockfile/signature_record.h) is served: KERNELS_REQUIRE_SIGNED.
  bool require_signed = false;
};

struct VerifiedBundle {
  std::string repo_id, sha, variant;
  Bytes image;  // attention.cubin, the bytes that were verified
  BundleManifest manifest;
  std::set<std::string> covered;  // kernels the plan may take from this bundle
};

struct BundleOutcome {
  std::optional<VerifiedBundle> bundle;
  FallbackReason reason = FallbackReason::none;  // when !bundle
  Error error;                                   // when !bundle
  // Filled as far as the search got, for the source report.
  std::string repo_id, sha, variant;
  std::string signer;  // with require_signed: the build signer the record names
};

// Lockfile -> lock entry -> variant -> tree -> files in memory -> hashes -> manifest. Zero network.
BundleOutcome find_verified_bundle(const BundleRequest& request);

// The variant hash (git_lfs_concat) of files held in memory: paths relative to the variant
// directory, each hashed as the tree says (sha256 for LFS files, git blob sha1 otherwise).
struct MemoryFile {
  std::string rel_path;
  bool lfs = false;
  Bytes bytes;
  std::string digest_hex;  // of `bytes`, as `lfs` says; computed when empty
};
std::string variant_hash_of(const std::vector<MemoryFile>& files);

}  // namespace kernels::loader
