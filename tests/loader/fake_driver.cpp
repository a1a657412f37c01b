#include "loader/fake_driver.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "kernels/attention/launch_plan.h"

namespace kernels::loader::testing {
namespace {

constexpr std::string_view kMagic = "FAKEIMG\n";
// Handles are small integers with a tag, so a mix-up shows in a failed lookup.
constexpr std::uintptr_t kCtxBase = 0x1000, kStreamBase = 0x5000, kLibBase = 0x10000,
                         kKernelShift = 16, kFnBase = 0x40000000;

Error fake_error(std::string what, std::string object = "fake") {
  return make_error(ErrorCode::no_device, std::move(what), std::move(object));
}

}  // namespace

std::vector<std::uint8_t> fake_image(const std::vector<std::string>& kernel_names) {
  std::string text(kMagic);
  for (const auto& n : kernel_names) text += n + "\n";
  return {text.begin(), text.end()};
}

std::vector<std::uint8_t> fake_builtin_image() {
  std::vector<std::string> names;
  for (const auto& k : attention::kernel_table()) names.push_back(k.name);
  return fake_image(names);
}

FakeDriver::FakeDriver() : FakeDriver(Config{}) {}

FakeDriver::FakeDriver(Config config) : config_(std::move(config)) {
  if (config_.devices.empty()) {
    DeviceProperties h100;
    h100.ordinal = 0;
    h100.name = "Fake H100";
    h100.compute_capability = {9, 0};
    h100.sm_count = 132;
    h100.max_smem_per_block_optin = 227 * 1024;
    config_.devices.push_back(h100);
  }
  for (std::size_t i = 0; i < config_.devices.size(); ++i)
    config_.devices[i].ordinal = static_cast<int>(i);
}

Result<DeviceProperties> FakeDriver::device_properties(int ordinal) {
  if (ordinal < 0 || ordinal >= static_cast<int>(config_.devices.size()))
    return fake_error("no such device", "cuda:" + std::to_string(ordinal));
  return config_.devices[ordinal];
}

Result<Context> FakeDriver::retain_primary_context(int ordinal) {
  std::lock_guard lock(mutex_);
  if (ordinal < 0 || ordinal >= static_cast<int>(config_.devices.size()))
    return fake_error("no such device", "cuda:" + std::to_string(ordinal));
  retained_.push_back(ordinal);
  return reinterpret_cast<Context>(kCtxBase + ordinal);
}

void FakeDriver::release_primary_context(int ordinal) {
  std::lock_guard lock(mutex_);
  auto it = std::find(retained_.begin(), retained_.end(), ordinal);
  if (it != retained_.end()) retained_.erase(it);
}

Result<Context> FakeDriver::stream_context(Stream stream) {
  const auto s = reinterpret_cast<std::uintptr_t>(stream);
  if (s < kStreamBase || s >= kStreamBase + config_.devices.size())
    return fake_error("unknown stream", "stream");
  return reinterpret_cast<Context>(kCtxBase + (s - kStreamBase));
}

Result<int> FakeDriver::context_device(Context context) {
  const auto c = reinterpret_cast<std::uintptr_t>(context);
  if (c < kCtxBase || c >= kCtxBase + config_.devices.size())
    return fake_error("unknown context", "context");
  return static_cast<int>(c - kCtxBase);
}

Result<Library> FakeDriver::load_library(std::span<const std::uint8_t> image,
                                         std::string_view label) {
  std::lock_guard lock(mutex_);
  const std::string_view text(reinterpret_cast<const char*>(image.data()), image.size());
  if (!text.starts_with(kMagic))
    return fake_error("CUDA_ERROR_INVALID_IMAGE: not a fake image", std::string(label));
  if (!config_.refuse_label.empty() && label.find(config_.refuse_label) != std::string_view::npos)
    return fake_error("CUDA_ERROR_INVALID_IMAGE: refused by the test", std::string(label));
  Lib lib;
  lib.label = std::string(label);
  std::size_t pos = kMagic.size();
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    lib.kernels.emplace_back(text.substr(pos, end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  libs_.push_back(std::move(lib));
  loaded_.push_back(std::string(label));
  return reinterpret_cast<Library>(kLibBase + libs_.size() - 1);
}

void FakeDriver::unload_library(Library library) {
  std::lock_guard lock(mutex_);
  const auto i = reinterpret_cast<std::uintptr_t>(library) - kLibBase;
  if (i < libs_.size()) libs_[i].live = false;
}

Result<Kernel> FakeDriver::library_kernel(Library library, const char* name) {
  std::lock_guard lock(mutex_);
  const auto i = reinterpret_cast<std::uintptr_t>(library) - kLibBase;
  if (i >= libs_.size() || !libs_[i].live) return fake_error("unknown library", name);
  const auto& ks = libs_[i].kernels;
  const auto it = std::find(ks.begin(), ks.end(), name);
  if (it == ks.end()) return fake_error("CUDA_ERROR_NOT_FOUND: no such kernel", name);
  return reinterpret_cast<Kernel>(((i + 1) << kKernelShift) + (it - ks.begin()));
}

Result<Function> FakeDriver::kernel_function(Kernel kernel, Context context) {
  auto dev = context_device(context);
  if (!dev) return dev.error();
  std::lock_guard lock(mutex_);
  const auto k = reinterpret_cast<std::uintptr_t>(kernel);
  const int lib = static_cast<int>((k >> kKernelShift) - 1);
  const int idx = static_cast<int>(k & ((1u << kKernelShift) - 1));
  if (lib < 0 || lib >= static_cast<int>(libs_.size())) return fake_error("unknown kernel");
  fns_.push_back({lib, idx, *dev});
  return reinterpret_cast<Function>(kFnBase + fns_.size() - 1);
}

Result<void> FakeDriver::set_max_dynamic_smem(Function function, Context, int bytes) {
  std::lock_guard lock(mutex_);
  const auto f = reinterpret_cast<std::uintptr_t>(function) - kFnBase;
  if (f >= fns_.size()) return fake_error("unknown function");
  const int dev = fns_[f].device;
  if (static_cast<std::size_t>(bytes) > config_.devices[dev].max_smem_per_block_optin)
    return fake_error("CUDA_ERROR_INVALID_VALUE: shared memory above the device limit");
  return ok();
}

Result<void> FakeDriver::launch(const LaunchConfig& c) {
  std::lock_guard lock(mutex_);
  const auto f = reinterpret_cast<std::uintptr_t>(c.function) - kFnBase;
  if (f >= fns_.size()) return fake_error("CUDA_ERROR_INVALID_HANDLE: unknown function");
  const Fn& fn = fns_[f];
  const auto ctx = reinterpret_cast<std::uintptr_t>(c.context);
  if (ctx != kCtxBase + fn.device)
    return fake_error("CUDA_ERROR_INVALID_CONTEXT: function launched in another context");
  RecordedLaunch r;
  r.kernel = libs_[fn.lib].kernels[fn.kernel];
  r.image_label = libs_[fn.lib].label;
  r.device = fn.device;
  std::copy(c.grid, c.grid + 3, r.grid);
  std::copy(c.block, c.block + 3, r.block);
  r.smem_bytes = c.smem_bytes;
  const auto* p = static_cast<const std::uint8_t*>(c.args[0]);
  // The plan's params live in a union as large as FwdParams, so this many bytes are readable.
  r.params.assign(p, p + sizeof(attention::FwdParams));
  launches_.push_back(std::move(r));
  return ok();
}

Result<void> FakeDriver::copy_to_host(void* dst, const void* src, std::size_t bytes, Context,
                                      Stream) {
  std::lock_guard lock(mutex_);
  ++host_copies_;
  const auto* p = static_cast<const std::uint8_t*>(src);
  for (const auto& [base, data] : memory_)
    if (p >= base && p + bytes <= base + data.size()) {
      std::memcpy(dst, data.data() + (p - base), bytes);
      return ok();
    }
  return fake_error("CUDA_ERROR_INVALID_VALUE: no fake memory at this address");
}

void FakeDriver::set_memory(const void* device_ptr, std::vector<std::uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  memory_.emplace_back(static_cast<const std::uint8_t*>(device_ptr), std::move(bytes));
}

int FakeDriver::host_copies() const {
  std::lock_guard lock(mutex_);
  return host_copies_;
}

// Checks what cuTensorMapEncodeTiled checks of the arguments the loader controls, records the
// map, and writes its base address into the 128 bytes so a launch can be traced back to it.
Result<void> FakeDriver::encode_tensor_map(const TiledTensorMap& m, void* out) {
  std::lock_guard lock(mutex_);
  if (reinterpret_cast<std::uintptr_t>(out) % 64 != 0)
    return fake_error("CUDA_ERROR_INVALID_VALUE: tensor map not 64-byte aligned");
  if (reinterpret_cast<std::uintptr_t>(m.base) % 16 != 0)
    return fake_error("CUDA_ERROR_INVALID_VALUE: global address not 16-byte aligned");
  for (std::uint64_t s : m.strides)
    if (s % 16 != 0 || s >= (1ull << 40)) return fake_error("CUDA_ERROR_INVALID_VALUE: stride");
  for (int i = 0; i < 4; ++i)
    if (m.dims[i] == 0 || m.box[i] == 0 || m.box[i] > 256)
      return fake_error("CUDA_ERROR_INVALID_VALUE: dims or box");
  if (m.box[0] * 2 > 128)
    return fake_error("CUDA_ERROR_INVALID_VALUE: inner box above the swizzle");
  std::memset(out, 0, 128);
  std::memcpy(out, &m.base, sizeof m.base);
  tensor_maps_.push_back(m);
  return ok();
}

std::vector<TiledTensorMap> FakeDriver::tensor_maps() const {
  std::lock_guard lock(mutex_);
  return tensor_maps_;
}

std::vector<RecordedLaunch> FakeDriver::launches() const {
  std::lock_guard lock(mutex_);
  return launches_;
}

std::vector<std::string> FakeDriver::loaded_labels() const {
  std::lock_guard lock(mutex_);
  return loaded_;
}

int FakeDriver::live_libraries() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(
      std::count_if(libs_.begin(), libs_.end(), [](const Lib& l) { return l.live; }));
}

int FakeDriver::retained_contexts() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(retained_.size());
}

}  // namespace kernels::loader::testing
