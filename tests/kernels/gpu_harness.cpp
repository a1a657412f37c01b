#include "gpu_harness.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/attention/builtin_image.h"

namespace kernels::test {
namespace {

struct Loaded {
  Gpu gpu;
  cudaLibrary_t library = nullptr;
};

Loaded load() {
  Loaded l;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    l.gpu.reason = err != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err)
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
  // KERNELS_ATTENTION_IMAGE=<file> runs the same tests against another image of the same
  // kernels, e.g. the sm90a bundle's attention.cubin.
  std::vector<unsigned char> file_image;
  std::string image_name = "builtin image";
  if (const char* path = std::getenv("KERNELS_ATTENTION_IMAGE"); path != nullptr && *path) {
    std::ifstream in(path, std::ios::binary);
    file_image.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (file_image.empty()) {
      l.gpu.reason = std::string("cannot read KERNELS_ATTENTION_IMAGE ") + path;
      return l;
    }
    image_name = path;
  }
  const void* image = file_image.empty() ? static_cast<const void*>(attention::builtin_image().data())
                                         : file_image.data();
  err = cudaLibraryLoadData(&l.library, image, nullptr, nullptr, 0, nullptr, nullptr, 0);
  if (err != cudaSuccess) {
    l.gpu.reason = "cudaLibraryLoadData(" + image_name + "): " + cudaGetErrorString(err);
    return l;
  }
  l.gpu.image = image_name;
  l.gpu.available = true;
  return l;
}

Loaded& loaded() {
  static Loaded l = load();
  return l;
}

}  // namespace

const Gpu& gpu() { return loaded().gpu; }

std::string launch(const attention::LaunchPlan& plan, cudaStream_t stream) {
  Loaded& l = loaded();
  if (!l.gpu.available) return "no GPU: " + l.gpu.reason;
  for (unsigned i = 0; i < plan.count; ++i) {
    const attention::KernelLaunch& k = plan.launches[i];
    cudaKernel_t kernel = nullptr;
    cudaError_t err = cudaLibraryGetKernel(&kernel, l.library, k.kernel_name);
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
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
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
