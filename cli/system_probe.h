// This machine's facts for variant selection: the CUDA driver (dlopen'd libcuda.so.1, never
// linked), its GPUs' compute capabilities, CPU and OS; plus the torch-side facts a person states
// on the command line (no torch is needed to download torch variants for a Docker image).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/variant.h"

namespace kernels::cli {

struct GpuFacts {
  int index = 0;
  std::string name;
  MajorMinor compute_capability;
};

struct DriverFacts {
  bool driver_found = false;              // libcuda.so.1 loaded and cuInit succeeded
  std::string problem;                    // why not, when not
  std::optional<MajorMinor> driver_cuda;  // newest CUDA version the driver supports
  std::vector<GpuFacts> gpus;
};

// Never fails: a machine without a driver or GPU is a fact, reported in `problem`.
// KERNELS_DRIVER_LIBRARY overrides the library name (tests point it at a missing file).
DriverFacts probe_driver();

// What a person states about the target system (all optional). Version strings are "2.10".
struct SystemOptions {
  std::string torch;               // --torch 2.10
  std::string cuda;                // --cuda 12.8 (the torch build's CUDA)
  std::string rocm;                // --rocm 7.1
  std::string tvm_ffi;             // --tvm-ffi 0.1
  bool cxx98_abi = false;          // --cxx98-abi (default cxx11, like every current torch wheel)
  std::string cpu;                 // --cpu x86_64 (default: this machine)
  std::string os;                  // --os linux (default: this machine)
  std::string driver_cuda;         // --driver-cuda 13.0 (default: probed)
  std::string compute_capability;  // --compute-capability 9.0 (default: probed GPUs)
};

Result<MajorMinor> parse_major_minor(const std::string& text, const std::string& what);

// The host CPU and OS in variant spelling ("x86_64", "aarch64"; "linux", "darwin").
std::string host_cpu();
std::string host_os();

// One SystemInfo per distinct compute capability to try (at least one; without a GPU the cubin
// facts are empty and cubin variants are rejected).
struct TargetSystems {
  std::vector<SystemInfo> systems;
  bool torch_described = false;  // --torch given: torch variants can be chosen
  bool gpu_known = false;        // a capability came from the driver or --compute-capability
};
Result<TargetSystems> describe_targets(const SystemOptions& options, const DriverFacts& driver);

}  // namespace kernels::cli
