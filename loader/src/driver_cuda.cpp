// The Driver interface over libcuda.so.1, opened with dlopen: the loader links no CUDA library.
// Only the handful of entry points the loader needs are resolved; their C signatures are
// spelled out here so no CUDA header is needed to build.
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "kernels/loader/driver.h"

namespace kernels::loader {
namespace {

using CUresult = int;
using CUdevice = int;
constexpr CUresult kSuccess = 0;
constexpr CUresult kErrorNoDevice = 100;

// CUdevice_attribute values (cuda.h).
constexpr int kAttrMultiprocessorCount = 16;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;
constexpr int kAttrMaxSharedMemoryPerBlockOptin = 97;
// CUfunction_attribute
constexpr int kFuncAttrMaxDynamicSharedSizeBytes = 8;
// CUtensorMapDataType, CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion,
// CUtensorMapFloatOOBfill.
constexpr int kTensorMapFloat16 = 6;
constexpr int kTensorMapBfloat16 = 9;
constexpr int kTensorMapInterleaveNone = 0;
constexpr int kTensorMapSwizzle128B = 3;
constexpr int kTensorMapL2Promotion256B = 3;
constexpr int kTensorMapOobFillNone = 0;

struct Api {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int*);
  CUresult (*cuGetErrorName)(CUresult, const char**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(void**, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuCtxGetCurrent)(void**);
  CUresult (*cuCtxPushCurrent)(void*);
  CUresult (*cuCtxPopCurrent)(void**);
  CUresult (*cuCtxGetDevice)(CUdevice*);
  CUresult (*cuStreamGetCtx)(void*, void**);
  CUresult (*cuLibraryLoadData)(void**, const void*, void*, void**, unsigned, void*, void**,
                                unsigned);
  CUresult (*cuLibraryUnload)(void*);
  CUresult (*cuLibraryGetKernel)(void**, void*, const char*);
  CUresult (*cuKernelGetFunction)(void**, void*);
  CUresult (*cuFuncSetAttribute)(void*, int, int);
  CUresult (*cuLaunchKernel)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, void*, void**, void**);
  CUresult (*cuMemcpyDtoHAsync)(void*, unsigned long long, std::size_t, void*);
  // cuTensorMapEncodeTiled(map, dtype, rank, base, dims, strides, box, element strides,
  // interleave, swizzle, L2 promotion, OOB fill); CUDA 12.0+.
  CUresult (*cuTensorMapEncodeTiled)(void*, int, unsigned, void*, const std::uint64_t*,
                                     const std::uint64_t*, const std::uint32_t*,
                                     const std::uint32_t*, int, int, int, int);
  CUresult (*cuStreamSynchronize)(void*);
};

class CudaDriver final : public Driver {
 public:
  CudaDriver(void* handle, const Api& api, MajorMinor version)
      : handle_(handle), api_(api), version_(version) {}
  ~CudaDriver() override = default;  // libcuda stays mapped: contexts outlive us

  std::string describe() const override { return "libcuda.so.1 (CUDA " + version_.str() + ")"; }
  Result<MajorMinor> cuda_version() override { return version_; }

  Result<int> device_count() override {
    int n = 0;
    if (auto r = check(api_.cuDeviceGetCount(&n), "cuDeviceGetCount", "driver"); !r)
      return r.error();
    return n;
  }

  Result<DeviceProperties> device_properties(int ordinal) override {
    const std::string object = "cuda:" + std::to_string(ordinal);
    CUdevice dev = 0;
    if (auto r = check(api_.cuDeviceGet(&dev, ordinal), "cuDeviceGet", object); !r)
      return r.error();
    DeviceProperties p;
    p.ordinal = ordinal;
    char name[256] = {};
    if (auto r = check(api_.cuDeviceGetName(name, sizeof name - 1, dev), "cuDeviceGetName", object);
        !r)
      return r.error();
    p.name = name;
    int v = 0;
    const std::pair<int, int*> attrs[] = {{kAttrComputeCapabilityMajor,
                                           &p.compute_capability.major},
                                          {kAttrComputeCapabilityMinor,
                                           &p.compute_capability.minor},
                                          {kAttrMultiprocessorCount, &p.sm_count},
                                          {kAttrMaxSharedMemoryPerBlockOptin, &v}};
    for (auto [attr, out] : attrs)
      if (auto r = check(api_.cuDeviceGetAttribute(out, attr, dev), "cuDeviceGetAttribute", object);
          !r)
        return r.error();
    p.max_smem_per_block_optin = static_cast<std::size_t>(v);
    return p;
  }

  Result<Context> retain_primary_context(int ordinal) override {
    const std::string object = "cuda:" + std::to_string(ordinal);
    CUdevice dev = 0;
    if (auto r = check(api_.cuDeviceGet(&dev, ordinal), "cuDeviceGet", object); !r)
      return r.error();
    void* ctx = nullptr;
    if (auto r = check(api_.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain",
                       object);
        !r)
      return r.error();
    return ctx;
  }

  void release_primary_context(int ordinal) override {
    CUdevice dev = 0;
    if (api_.cuDeviceGet(&dev, ordinal) == kSuccess) api_.cuDevicePrimaryCtxRelease(dev);
  }

  Result<Context> stream_context(Stream stream) override {
    void* ctx = nullptr;
    if (auto r = check(api_.cuStreamGetCtx(stream, &ctx), "cuStreamGetCtx", "stream"); !r)
      return r.error();
    if (ctx == nullptr)
      return make_error(ErrorCode::no_device, "no CUDA context is current for the default stream",
                        "stream",
                        "make a device current first (cudaSetDevice / torch.cuda.set_device)");
    return ctx;
  }

  Result<int> context_device(Context context) override {
    if (auto r = check(api_.cuCtxPushCurrent(context), "cuCtxPushCurrent", "context"); !r)
      return r.error();
    CUdevice dev = -1;
    const CUresult rc = api_.cuCtxGetDevice(&dev);
    void* popped = nullptr;
    api_.cuCtxPopCurrent(&popped);
    if (auto r = check(rc, "cuCtxGetDevice", "context"); !r) return r.error();
    return static_cast<int>(dev);
  }

  Result<Library> load_library(std::span<const std::uint8_t> image,
                               std::string_view label) override {
    if (auto r = check_image_bounds(image, label); !r) return r.error();
    void* lib = nullptr;
    if (auto r = check(api_.cuLibraryLoadData(&lib, image.data(), nullptr, nullptr, 0, nullptr,
                                              nullptr, 0),
                       "cuLibraryLoadData", label);
        !r)
      return r.error();
    return lib;
  }

  void unload_library(Library library) override {
    if (library != nullptr) api_.cuLibraryUnload(library);
  }

  Result<Kernel> library_kernel(Library library, const char* name) override {
    void* k = nullptr;
    if (auto r = check(api_.cuLibraryGetKernel(&k, library, name), "cuLibraryGetKernel", name); !r)
      return r.error();
    return k;
  }

  Result<Function> kernel_function(Kernel kernel, Context context) override {
    if (auto r = check(api_.cuCtxPushCurrent(context), "cuCtxPushCurrent", "context"); !r)
      return r.error();
    void* fn = nullptr;
    const CUresult rc = api_.cuKernelGetFunction(&fn, kernel);
    void* popped = nullptr;
    api_.cuCtxPopCurrent(&popped);
    if (auto r = check(rc, "cuKernelGetFunction", "kernel"); !r) return r.error();
    return fn;
  }

  Result<void> set_max_dynamic_smem(Function function, Context context, int bytes) override {
    if (auto r = check(api_.cuCtxPushCurrent(context), "cuCtxPushCurrent", "context"); !r)
      return r.error();
    const CUresult rc = api_.cuFuncSetAttribute(function, kFuncAttrMaxDynamicSharedSizeBytes,
                                                bytes);
    void* popped = nullptr;
    api_.cuCtxPopCurrent(&popped);
    return check(rc, "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)", "kernel");
  }

  Result<void> encode_tensor_map(const TiledTensorMap& m, void* out) override {
    const std::uint32_t element_strides[4] = {1, 1, 1, 1};
    const CUresult rc = api_.cuTensorMapEncodeTiled(
        out, m.bf16 ? kTensorMapBfloat16 : kTensorMapFloat16, 4, const_cast<void*>(m.base), m.dims,
        m.strides, m.box, element_strides, kTensorMapInterleaveNone, kTensorMapSwizzle128B,
        kTensorMapL2Promotion256B, kTensorMapOobFillNone);
    if (rc == kSuccess) return ok();
    Error e = check(rc, "cuTensorMapEncodeTiled", "tensor map").error();
    e.code = ErrorCode::usage;
    e.hint = "q, k and v must be 16-byte aligned with strides that are multiples of 16 bytes";
    return e;
  }

  Result<void> copy_to_host(void* dst, const void* src, std::size_t bytes, Context context,
                            Stream stream) override {
    if (auto r = check(api_.cuCtxPushCurrent(context), "cuCtxPushCurrent", "context"); !r)
      return r.error();
    CUresult rc = api_.cuMemcpyDtoHAsync(dst, reinterpret_cast<unsigned long long>(src), bytes,
                                         stream);
    if (rc == kSuccess) rc = api_.cuStreamSynchronize(stream);
    void* popped = nullptr;
    api_.cuCtxPopCurrent(&popped);
    return check(rc, "cuMemcpyDtoHAsync", "debug value check");
  }

  Result<void> launch(const LaunchConfig& c) override {
    // The stream's context is almost always current already (the runtime API and torch make
    // it so); only switch when it is not.
    void* current = nullptr;
    api_.cuCtxGetCurrent(&current);
    const bool switch_ctx = current != c.context;
    if (switch_ctx) {
      if (auto r = check(api_.cuCtxPushCurrent(c.context), "cuCtxPushCurrent", "context"); !r)
        return r.error();
    }
    const CUresult rc = api_.cuLaunchKernel(c.function, c.grid[0], c.grid[1], c.grid[2], c.block[0],
                                            c.block[1], c.block[2], c.smem_bytes, c.stream, c.args,
                                            nullptr);
    if (switch_ctx) {
      void* popped = nullptr;
      api_.cuCtxPopCurrent(&popped);
    }
    return check(rc, "cuLaunchKernel", "stream");
  }

 private:
  Result<void> check(CUresult rc, std::string_view call, std::string_view object) const {
    if (rc == kSuccess) return ok();
    const char* name = nullptr;
    const char* text = nullptr;
    if (api_.cuGetErrorName(rc, &name) != kSuccess || name == nullptr) name = "CUDA_ERROR_?";
    if (api_.cuGetErrorString(rc, &text) != kSuccess || text == nullptr) text = "";
    return make_error(ErrorCode::no_device,
                      std::string(call) + " failed: " + name + " (" + std::to_string(rc) +
                          "): " + text,
                      std::string(object),
                      rc == kErrorNoDevice ? "no CUDA device is visible (CUDA_VISIBLE_DEVICES?)"
                                           : "");
  }

  void* handle_;
  Api api_;
  MajorMinor version_;
};

template <class F>
bool resolve(void* handle, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(handle, name));
  return fn != nullptr;
}

}  // namespace

Result<std::shared_ptr<Driver>> open_cuda_driver() {
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return make_error(ErrorCode::no_device,
                      std::string("cannot load the CUDA driver: ") + (why ? why : "unknown error"),
                      "libcuda.so.1", "install the NVIDIA driver, or run on a machine with a GPU");
  }
  Api api{};
  // Versioned names are the ones cuda.h maps the plain names to.
  const bool complete = resolve(handle, "cuInit", api.cuInit) &&
                        resolve(handle, "cuDriverGetVersion", api.cuDriverGetVersion) &&
                        resolve(handle, "cuGetErrorName", api.cuGetErrorName) &&
                        resolve(handle, "cuGetErrorString", api.cuGetErrorString) &&
                        resolve(handle, "cuDeviceGetCount", api.cuDeviceGetCount) &&
                        resolve(handle, "cuDeviceGet", api.cuDeviceGet) &&
                        resolve(handle, "cuDeviceGetName", api.cuDeviceGetName) &&
                        resolve(handle, "cuDeviceGetAttribute", api.cuDeviceGetAttribute) &&
                        resolve(handle, "cuDevicePrimaryCtxRetain", api.cuDevicePrimaryCtxRetain) &&
                        resolve(handle, "cuDevicePrimaryCtxRelease_v2",
                                api.cuDevicePrimaryCtxRelease) &&
                        resolve(handle, "cuCtxGetCurrent", api.cuCtxGetCurrent) &&
                        resolve(handle, "cuCtxPushCurrent_v2", api.cuCtxPushCurrent) &&
                        resolve(handle, "cuCtxPopCurrent_v2", api.cuCtxPopCurrent) &&
                        resolve(handle, "cuCtxGetDevice", api.cuCtxGetDevice) &&
                        resolve(handle, "cuStreamGetCtx", api.cuStreamGetCtx) &&
                        resolve(handle, "cuLibraryLoadData", api.cuLibraryLoadData) &&
                        resolve(handle, "cuLibraryUnload", api.cuLibraryUnload) &&
                        resolve(handle, "cuLibraryGetKernel", api.cuLibraryGetKernel) &&
                        resolve(handle, "cuKernelGetFunction", api.cuKernelGetFunction) &&
                        resolve(handle, "cuFuncSetAttribute", api.cuFuncSetAttribute) &&
                        resolve(handle, "cuLaunchKernel", api.cuLaunchKernel) &&
                        resolve(handle, "cuMemcpyDtoHAsync_v2", api.cuMemcpyDtoHAsync) &&
                        resolve(handle, "cuStreamSynchronize", api.cuStreamSynchronize) &&
                        resolve(handle, "cuTensorMapEncodeTiled", api.cuTensorMapEncodeTiled);
  if (!complete)
    return make_error(ErrorCode::no_device, "the CUDA driver lacks an entry point the loader needs",
                      "libcuda.so.1", "the loader needs a driver for CUDA 12.0 or newer");
  if (const CUresult rc = api.cuInit(0); rc != kSuccess) {
    const char* name = nullptr;
    api.cuGetErrorName(rc, &name);
    return make_error(ErrorCode::no_device,
                      std::string("cuInit failed: ") + (name ? name : "?") + " (" +
                          std::to_string(rc) + ")",
                      "libcuda.so.1",
                      rc == kErrorNoDevice ? "no CUDA device is visible (CUDA_VISIBLE_DEVICES?)"
                                           : "check the driver installation (nvidia-smi)");
  }
  int v = 0;
  api.cuDriverGetVersion(&v);
  return std::shared_ptr<Driver>(
      std::make_shared<CudaDriver>(handle, api, MajorMinor{v / 1000, (v % 1000) / 10}));
}

}  // namespace kernels::loader
