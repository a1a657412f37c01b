// The CUDA Driver API calls the loader makes, behind an interface.
//
// The real implementation dlopens libcuda.so.1 (the loader never links it, so a process without a
// GPU still starts and gets a clear error). Tests substitute a fake that records what would have
// happened, so the whole decision path (lockfile, cache, verification, fallback, validation) runs
// on machines without a GPU. Handles are opaque pointers with the driver's meaning:
// Context = CUcontext, Stream = CUstream, Library = CUlibrary, Kernel = CUkernel,
// Function = CUfunction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/variant.h"

namespace kernels::loader {

using Stream = void*;
using Context = void*;
using Library = void*;
using Kernel = void*;
using Function = void*;

struct DeviceProperties {
  int ordinal = 0;
  std::string name;
  MajorMinor compute_capability;  // 9.0 for H100
  int sm_count = 0;
  std::size_t max_smem_per_block_optin = 0;  // bytes
};

struct LaunchConfig {
  Function function = nullptr;
  Context context = nullptr;  // the context the function belongs to (the stream's)
  Stream stream = nullptr;
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  unsigned smem_bytes = 0;
  void** args = nullptr;  // cuLaunchKernel's kernelParams
};

// A tiled tensor map for TMA copies (cuTensorMapEncodeTiled): 16-bit elements, rank 4, 128-byte
// swizzle, zero fill out of bounds. Dims innermost first; strides in bytes for dims 1..3.
struct TiledTensorMap {
  const void* base = nullptr;
  bool bf16 = true;  // else fp16
  std::uint64_t dims[4] = {};
  std::uint64_t strides[3] = {};
  std::uint32_t box[4] = {};
};

class Driver {
 public:
  virtual ~Driver() = default;

  // "libcuda.so.1, CUDA 13.0" or "fake"; for messages.
  virtual std::string describe() const = 0;
  // The newest CUDA version the installed driver supports (cuDriverGetVersion).
  virtual Result<MajorMinor> cuda_version() = 0;
  virtual Result<int> device_count() = 0;
  virtual Result<DeviceProperties> device_properties(int ordinal) = 0;

  // Primary contexts: what the runtime API and PyTorch use.
  virtual Result<Context> retain_primary_context(int ordinal) = 0;
  virtual void release_primary_context(int ordinal) = 0;
  // The context a stream belongs to; for the legacy default stream (nullptr), the current one.
  virtual Result<Context> stream_context(Stream stream) = 0;
  virtual Result<int> context_device(Context context) = 0;

  // cuLibraryLoadData on exactly these bytes (checked for internal consistency first).
  virtual Result<Library> load_library(std::span<const std::uint8_t> image,
                                       std::string_view label) = 0;
  virtual void unload_library(Library library) = 0;
  virtual Result<Kernel> library_kernel(Library library, const char* name) = 0;
  // Resolves a kernel in one context; this forces the module into that context, so a broken
  // image fails here and not at the first launch.
  virtual Result<Function> kernel_function(Kernel kernel, Context context) = 0;
  virtual Result<void> set_max_dynamic_smem(Function function, Context context, int bytes) = 0;

  // Encodes `map` into the 128 bytes at `out` (a CUtensorMap, 64-byte aligned). ErrorCode::usage
  // naming the field when the driver refuses it.
  virtual Result<void> encode_tensor_map(const TiledTensorMap& map, void* out) = 0;

  virtual Result<void> launch(const LaunchConfig& config) = 0;

  // Stream-ordered copy to the host, then a wait for the stream: only for the opt-in debug
  // checks of index values (never on the normal call path, which must not synchronise).
  virtual Result<void> copy_to_host(void* dst, const void* src, std::size_t bytes, Context context,
                                    Stream stream) = 0;
};

// dlopen("libcuda.so.1") and cuInit(0). ErrorCode::no_device with the reason when there is no
// driver or no device.
Result<std::shared_ptr<Driver>> open_cuda_driver();

// Checks an image before it is given to the driver (which takes no length): an ELF cubin's
// section table and sections lie inside the buffer, a fatbin's declared size fits, PTX is
// NUL-terminated. ErrorCode::unsafe on violation.
Result<void> check_image_bounds(std::span<const std::uint8_t> image, std::string_view label);

}  // namespace kernels::loader
