// A bundle's manifest.json: which kernels the image holds and the configuration each was built
// with (the loader checks it against its launch plan in bundle.cpp). Parsing only: no CUDA, no
// launch plan, so the fuzz target builds it with the lockfile library alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels::loader {

struct ManifestKernel {
  std::string name;
  int head_dim = 0;
  int head_dim_v = 0;
  std::string dtype;  // "fp16" | "bf16"
  int threads = 0;
  int smem_bytes = 0;
  int block_m = 0;  // 0 when the manifest does not say
  int block_n = 0;
};

struct BundleManifest {
  int format_version = 0;
  std::string family;  // "fa3" | "fa4"
  std::uint32_t params_abi = 0;
  std::string arch;  // "sm90a"
  std::string cuda;  // "13.0"
  std::vector<ManifestKernel> kernels;
};

// Any text gives a manifest or ErrorCode::lockfile_invalid: the file comes from the cache, so
// from whoever published the bundle (fuzzed by tests/fuzz/fuzz_manifest.cpp).
Result<BundleManifest> parse_bundle_manifest(std::string_view text, std::string_view source);

}  // namespace kernels::loader
