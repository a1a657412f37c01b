#include "system_probe.h"

#include <dlfcn.h>
#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace kernels::cli {
namespace {

// The few driver entry points we need, by their documented C signatures (cuda.h).
using CUresult = int;
using CUdevice = int;
using FnInit = CUresult (*)(unsigned int);
using FnDriverGetVersion = CUresult (*)(int*);
using FnDeviceGetCount = CUresult (*)(int*);
using FnDeviceGet = CUresult (*)(CUdevice*, int);
using FnDeviceGetAttribute = CUresult (*)(int*, int, CUdevice);
using FnDeviceGetName = CUresult (*)(char*, int, CUdevice);
constexpr int kAttrComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrComputeCapabilityMinor = 76;

template <class Fn>
Fn symbol(void* lib, const char* name) {
  return reinterpret_cast<Fn>(::dlsym(lib, name));
}

}  // namespace

DriverFacts probe_driver() {
  DriverFacts facts;
  const char* override_name = std::getenv("KERNELS_DRIVER_LIBRARY");
  const char* name = override_name && *override_name ? override_name : "libcuda.so.1";
  void* lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    facts.problem = std::string("no CUDA driver (") + name + " not found)";
    return facts;
  }
  auto init = symbol<FnInit>(lib, "cuInit");
  auto get_version = symbol<FnDriverGetVersion>(lib, "cuDriverGetVersion");
  auto get_count = symbol<FnDeviceGetCount>(lib, "cuDeviceGetCount");
  auto get_device = symbol<FnDeviceGet>(lib, "cuDeviceGet");
  auto get_attribute = symbol<FnDeviceGetAttribute>(lib, "cuDeviceGetAttribute");
  auto get_name = symbol<FnDeviceGetName>(lib, "cuDeviceGetName");
  if (!init || !get_version || !get_count || !get_device || !get_attribute) {
    facts.problem = std::string(name) +
                    " lacks the driver entry points (cuInit, cuDriverGetVersion, ...)";
    return facts;  // the library stays loaded: unloading a driver is never worth the risk
  }
  int version = 0;
  if (get_version(&version) == 0 && version > 0) {
    facts.driver_cuda = MajorMinor{version / 1000, (version % 1000) / 10};
  }
  CUresult rc = init(0);
  if (rc != 0) {
    facts.problem = "cuInit failed with CUDA error " + std::to_string(rc) + " (no usable GPU)";
    return facts;
  }
  facts.driver_found = true;
  int count = 0;
  if (get_count(&count) != 0) count = 0;
  for (int i = 0; i < count; ++i) {
    CUdevice device = 0;
    if (get_device(&device, i) != 0) continue;
    GpuFacts gpu;
    gpu.index = i;
    if (get_attribute(&gpu.compute_capability.major, kAttrComputeCapabilityMajor, device) != 0 ||
        get_attribute(&gpu.compute_capability.minor, kAttrComputeCapabilityMinor, device) != 0) {
      continue;
    }
    if (get_name) {
      char buffer[256] = {};
      if (get_name(buffer, sizeof buffer - 1, device) == 0) gpu.name = buffer;
    }
    facts.gpus.push_back(std::move(gpu));
  }
  if (facts.gpus.empty()) facts.problem = "the CUDA driver reports no GPU";
  return facts;
}

Result<MajorMinor> parse_major_minor(const std::string& text, const std::string& what) {
  auto dot = text.find('.');
  MajorMinor v;
  auto parse = [](std::string_view s, int& out) {
    if (s.empty() || s.size() > 6) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && out >= 0;
  };
  std::string_view sv(text);
  bool good = dot != std::string::npos && parse(sv.substr(0, dot), v.major) &&
              parse(sv.substr(dot + 1), v.minor);
  if (!good) {
    return make_error(ErrorCode::usage, "expected MAJOR.MINOR, got \"" + text + "\"", what,
                      "write it like 2.10 or 12.8");
  }
  return v;
}

std::string host_cpu() {
  utsname u{};
  if (::uname(&u) != 0) return "x86_64";
  std::string machine = u.machine;
  if (machine == "arm64") return "aarch64";
  if (machine == "amd64" || machine == "AMD64") return "x86_64";
  return machine;
}

std::string host_os() {
#if defined(__APPLE__)
  return "darwin";
#elif defined(_WIN32)
  return "windows";
#else
  return "linux";
#endif
}

Result<TargetSystems> describe_targets(const SystemOptions& options, const DriverFacts& driver) {
  SystemInfo base;
  base.cpu = options.cpu.empty() ? host_cpu() : options.cpu;
  base.os = options.os.empty() ? host_os() : options.os;
  base.cxx11_abi = !options.cxx98_abi;
  TargetSystems targets;
  if (!options.torch.empty()) {
    auto torch = parse_major_minor(options.torch, "--torch");
    if (!torch) return torch.error();
    base.torch = *torch;
    targets.torch_described = true;
  }
  if (!options.tvm_ffi.empty()) {
    auto tvm = parse_major_minor(options.tvm_ffi, "--tvm-ffi");
    if (!tvm) return tvm.error();
    base.tvm_ffi = *tvm;
  }
  if (!options.cuda.empty() && !options.rocm.empty()) {
    return make_error(ErrorCode::usage, "--cuda and --rocm exclude each other", "command line");
  }
  if (!options.cuda.empty()) {
    auto cuda = parse_major_minor(options.cuda, "--cuda");
    if (!cuda) return cuda.error();
    base.backend = Backend{"cuda", *cuda};
  } else if (!options.rocm.empty()) {
    auto rocm = parse_major_minor(options.rocm, "--rocm");
    if (!rocm) return rocm.error();
    base.backend = Backend{"rocm", *rocm};
  }
  if (!options.driver_cuda.empty()) {
    auto v = parse_major_minor(options.driver_cuda, "--driver-cuda");
    if (!v) return v.error();
    base.driver_cuda = *v;
  } else {
    base.driver_cuda = driver.driver_cuda;
  }
  std::vector<MajorMinor> capabilities;
  if (!options.compute_capability.empty()) {
    auto cc = parse_major_minor(options.compute_capability, "--compute-capability");
    if (!cc) return cc.error();
    capabilities.push_back(*cc);
  } else {
    for (const auto& gpu : driver.gpus) {
      if (std::find(capabilities.begin(), capabilities.end(), gpu.compute_capability) ==
          capabilities.end()) {
        capabilities.push_back(gpu.compute_capability);
      }
    }
  }
  targets.gpu_known = !capabilities.empty() && base.driver_cuda.has_value();
  if (capabilities.empty()) {
    targets.systems.push_back(base);
  } else {
    for (const auto& cc : capabilities) {
      SystemInfo s = base;
      s.compute_capability = cc;
      targets.systems.push_back(s);
    }
  }
  return targets;
}

}  // namespace kernels::cli
