// Launches the built-in attention image the way the loader does (load the fatbin, look kernels up
// by the plan's names, launch with the plan's grid/block/smem and one params argument), through
// the CUDA runtime so the test binary also starts where there is no driver.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/attention/launch_plan.h"

namespace kernels::test {

struct Gpu {
  bool available = false;
  std::string reason;  // why not available
  attention::DeviceFacts facts;
  std::string name;
  std::string image;  // which image the kernels come from
};

// Loads the image once; later calls return the same state.
const Gpu& gpu();

// Whether KERNELS_ATTENTION_IMAGE added the sm90a bundle.
bool bundle_mode();

// The loader's choice for one call: the bundle's TMA kernel when the bundle is loaded and covers
// the call (tensor maps encoded), else plan_forward's plan. Returns "" or what failed.
std::string plan_call(const attention::FwdParams& p, std::int64_t k_rows, void* workspace,
                      std::size_t workspace_bytes, attention::LaunchPlan& plan);

// Launches every kernel of the plan on `stream` (TMA kernels from the bundle, the others from the
// built-in image); returns "" or what failed.
std::string launch(const attention::LaunchPlan& plan, cudaStream_t stream);

// Owning device allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  ~DeviceBuffer();
  void* get() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  void upload(const void* src, std::size_t n) const;
  void download(void* dst, std::size_t n) const;

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Throws std::runtime_error naming `what` when err != cudaSuccess (test edge only).
void check_cuda(cudaError_t err, const char* what);

}  // namespace kernels::test
