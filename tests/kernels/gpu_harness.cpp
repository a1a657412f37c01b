#include "gpu_harness.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda.h>

#include "kernels/attention/builtin_image.h"

namespace kernels::test {
namespace {

struct Loaded {
  Gpu gpu;
  cudaLibrary_t library = nullptr;  // the built-in image
  cudaLibrary_t bundle = nullptr;   // KERNELS_ATTENTION_IMAGE (the sm90a bundle), if given
};

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                 const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                 const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

Loaded load() {
  Loaded l;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    l.gpu.reason = err != cudaSuccess
                       ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err)
                       : "no CUDA device";
    return l;
  }
  cudaDeviceProp prop{};
  if ((err = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
    l.gpu.reason = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(err);
    return l;
  }
  l.gpu.name = prop.name;
  l.gpu.facts.cc_major = prop.major;
  l.gpu.facts.cc_minor = prop.minor;
  l.gpu.facts.sm_count = prop.multiProcessorCount;
  l.gpu.facts.max_smem_per_block_optin = prop.sharedMemPerBlockOptin;
  err = cudaLibraryLoadData(&l.library, attention::builtin_image().data(), nullptr, nullptr, 0,
                            nullptr, nullptr, 0);
  if (err != cudaSuccess) {
    l.gpu.reason = std::string("cudaLibraryLoadData(builtin image): ") + cudaGetErrorString(err);
    return l;
  }
  l.gpu.image = "builtin image";
  // KERNELS_ATTENTION_IMAGE=<file> adds the sm90a bundle: calls its TMA kernels cover run there,
  // the rest on the built-in image, as the loader does.
  if (const char* path = std::getenv("KERNELS_ATTENTION_IMAGE"); path != nullptr && *path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<unsigned char> file_image{std::istreambuf_iterator<char>(in),
                                          std::istreambuf_iterator<char>()};
    if (file_image.empty()) {
      l.gpu.reason = std::string("cannot read KERNELS_ATTENTION_IMAGE ") + path;
      return l;
    }
    err = cudaLibraryLoadData(&l.bundle, file_image.data(), nullptr, nullptr, 0, nullptr, nullptr,
                              0);
    if (err != cudaSuccess) {
      l.gpu.reason = std::string("cudaLibraryLoadData(") + path + "): " + cudaGetErrorString(err);
      return l;
    }
    l.gpu.image = path;
  }
  l.gpu.available = true;
  return l;
}

Loaded& loaded() {
  static Loaded l = load();
  return l;
}

}  // namespace

const Gpu& gpu() { return loaded().gpu; }

bool bundle_mode() { return loaded().bundle != nullptr; }

std::string plan_call(const attention::FwdParams& p, std::int64_t k_rows, void* workspace,
                      std::size_t workspace_bytes, attention::LaunchPlan& plan) {
  Loaded& l = loaded();
  if (!l.gpu.available) return "no GPU: " + l.gpu.reason;
  auto portable = attention::plan_forward(p, l.gpu.facts, workspace, workspace_bytes);
  if (!portable)
    return "plan_forward: " + portable.error().what + " (" + portable.error().object + ")";
  plan = *portable;
  if (l.bundle == nullptr) return {};
  auto tma = attention::plan_forward_sm90(p, k_rows, l.gpu.facts);
  if (!tma) return {};
  static EncodeTiled encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess)
      fn = nullptr;
    return reinterpret_cast<EncodeTiled>(fn);
  }();
  if (encode == nullptr) return "cuTensorMapEncodeTiled is not available";
  attention::KernelLaunch& k = tma->launches[0];
  attention::TensorMap* maps[3] = {&k.tma_fwd.q, &k.tma_fwd.k, &k.tma_fwd.v};
  for (int i = 0; i < 3; ++i) {
    const attention::TensorMapSpec& m = k.tensor_maps[i];
    const cuuint32_t element_strides[4] = {1, 1, 1, 1};
    const CUresult rc = encode(reinterpret_cast<CUtensorMap*>(maps[i]),
                               m.dtype == attention::DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                                 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                               4, const_cast<void*>(m.base), m.dims, m.strides, m.box,
                               element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                               CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (rc != CUDA_SUCCESS) return "cuTensorMapEncodeTiled failed: " + std::to_string(rc);
  }
  plan = *tma;
  return {};
}

std::string launch(const attention::LaunchPlan& plan, cudaStream_t stream) {
  Loaded& l = loaded();
  if (!l.gpu.available) return "no GPU: " + l.gpu.reason;
  for (unsigned i = 0; i < plan.count; ++i) {
    const attention::KernelLaunch& k = plan.launches[i];
    cudaKernel_t kernel = nullptr;
    cudaLibrary_t lib = k.kind == attention::KernelKind::forward_sm90 ? l.bundle : l.library;
    if (lib == nullptr) return std::string("no image holds ") + k.kernel_name;
    cudaError_t err = cudaLibraryGetKernel(&kernel, lib, k.kernel_name);
    if (err != cudaSuccess)
      return std::string("cudaLibraryGetKernel(") + k.kernel_name + "): " + cudaGetErrorString(err);
    const void* fn = reinterpret_cast<const void*>(kernel);
    if (k.smem_bytes > 48 * 1024) {
      err = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(k.smem_bytes));
      if (err != cudaSuccess)
        return std::string("cudaFuncSetAttribute(") + k.kernel_name + ", smem " +
               std::to_string(k.smem_bytes) + "): " + cudaGetErrorString(err);
    }
    void* args[] = {const_cast<void*>(k.params_ptr())};
    err = cudaLaunchKernel(fn, dim3(k.grid[0], k.grid[1], k.grid[2]),
                           dim3(k.block[0], k.block[1], k.block[2]), args, k.smem_bytes, stream);
    if (err != cudaSuccess)
      return std::string("cudaLaunchKernel(") + k.kernel_name + "): " + cudaGetErrorString(err);
  }
  return {};
}

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes > 0) check_cuda(cudaMalloc(&ptr_, bytes), "cudaMalloc");
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

void DeviceBuffer::upload(const void* src, std::size_t n) const {
  check_cuda(cudaMemcpy(ptr_, src, n, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}

void DeviceBuffer::download(void* dst, std::size_t n) const {
  check_cuda(cudaMemcpy(dst, ptr_, n, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}

}  // namespace kernels::test
