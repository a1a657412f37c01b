// A Driver that runs nowhere: devices, contexts and streams are numbers, an "image" is the text
// "FAKEIMG\n" followed by one kernel name per line, and every launch is recorded. The loader's
// real code runs on top of it, so tests see exactly what would have been loaded and launched.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kernels/loader/driver.h"

namespace kernels::loader::testing {

struct RecordedLaunch {
  std::string kernel;
  std::string image_label;
  int device = -1;
  unsigned grid[3] = {}, block[3] = {};
  unsigned smem_bytes = 0;
  std::vector<std::uint8_t> params;  // sizeof(FwdParams) bytes of the argument
};

// Stream handle of device `ordinal`'s primary context (any value works; this one is readable).
inline Stream fake_stream(int ordinal) {
  return reinterpret_cast<Stream>(static_cast<std::uintptr_t>(0x5000 + ordinal));
}

std::vector<std::uint8_t> fake_image(const std::vector<std::string>& kernel_names);
// Every kernel of the launch plan's table.
std::vector<std::uint8_t> fake_builtin_image();

class FakeDriver : public Driver {
 public:
  struct Config {
    std::vector<DeviceProperties> devices;  // default: one H100
    MajorMinor cuda{13, 0};
    std::string refuse_label;  // load_library fails for labels containing this (if non-empty)
  };
  FakeDriver();
  explicit FakeDriver(Config config);

  std::string describe() const override { return "fake driver"; }
  Result<MajorMinor> cuda_version() override { return config_.cuda; }
  Result<int> device_count() override { return static_cast<int>(config_.devices.size()); }
  Result<DeviceProperties> device_properties(int ordinal) override;
  Result<Context> retain_primary_context(int ordinal) override;
  void release_primary_context(int ordinal) override;
  Result<Context> stream_context(Stream stream) override;
  Result<int> context_device(Context context) override;
  Result<Library> load_library(std::span<const std::uint8_t> image,
                               std::string_view label) override;
  void unload_library(Library library) override;
  Result<Kernel> library_kernel(Library library, const char* name) override;
  Result<Function> kernel_function(Kernel kernel, Context context) override;
  Result<void> set_max_dynamic_smem(Function function, Context context, int bytes) override;
  Result<void> encode_tensor_map(const TiledTensorMap& map, void* out) override;
  Result<void> launch(const LaunchConfig& config) override;
  Result<void> copy_to_host(void* dst, const void* src, std::size_t bytes, Context context,
                            Stream stream) override;

  // Device memory the debug value checks may read: `bytes` at fake address `device_ptr`.
  void set_memory(const void* device_ptr, std::vector<std::uint8_t> bytes);
  int host_copies() const;

  // Observations.
  std::vector<RecordedLaunch> launches() const;
  std::vector<TiledTensorMap> tensor_maps() const;  // every encode_tensor_map, in order
  std::vector<std::string> loaded_labels() const;   // every successful load_library, in order
  int live_libraries() const;
  int retained_contexts() const;

 private:
  struct Lib {
    std::string label;
    std::vector<std::string> kernels;
    bool live = true;
  };
  struct Fn {
    int lib, kernel, device;
  };
  mutable std::mutex mutex_;
  Config config_;
  std::vector<Lib> libs_;
  std::vector<Fn> fns_;
  std::vector<RecordedLaunch> launches_;
  std::vector<TiledTensorMap> tensor_maps_;
  std::vector<std::string> loaded_;
  std::vector<int> retained_;
  std::vector<std::pair<const std::uint8_t*, std::vector<std::uint8_t>>> memory_;
  int host_copies_ = 0;
};

}  // namespace kernels::loader::testing
