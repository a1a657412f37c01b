// Build variant names and the choice of a variant for a described system.
//
// Hugging Face grammar (kernels variants.py): torch210-cxx11-cu128-x86_64-linux,
// torch-stable-abi29-cu126-x86_64-linux, tvm-ffi01-cu128-x86_64-linux, noarch torch-cuda,
// torch-universal, ... Our device-code-only form: cubin-cu<MAJ><MIN>-sm<CC>[a], e.g.
// cubin-cu130-sm90a, cubin-cu130-sm80: cubins depend on neither host CPU, OS nor framework.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels {

struct MajorMinor {
  int major = 0;
  int minor = 0;
  auto operator<=>(const MajorMinor&) const = default;
  std::string str() const;  // "12.8"
};

struct Backend {
  // "cuda", "rocm", "xpu", "cann", "cpu", "metal", "neuron", "tpu"
  std::string name;
  std::optional<MajorMinor> version;  // cuda 12.8, rocm 7.1, xpu 2025.3, cann 8.0
  std::string str() const;            // variant spelling: "cu128", "rocm71", "cpu"
  bool operator==(const Backend&) const = default;
};

struct VariantName {
  enum class Kind { torch, torch_stable_abi, tvm_ffi, noarch, cubin };
  Kind kind = Kind::torch;
  std::string text;  // the directory name as given

  // torch / torch_stable_abi / tvm_ffi
  MajorMinor framework;               // torch 2.10, stable abi 2.9, tvm-ffi 0.1
  std::optional<std::string> cxxabi;  // "cxx11" | "cxx98" (torch only)
  Backend backend;
  std::string cpu;  // "x86_64" | "aarch64"
  std::string os;   // "linux" | "darwin" | "windows"

  // noarch: "cuda", "cpu", "universal", ...
  std::string noarch_backend;

  // cubin
  MajorMinor cuda;             // toolkit that produced the cubin
  int sm = 0;                  // 90 for sm90a, 80 for sm80
  bool arch_specific = false;  // the trailing "a": runs only on exactly that compute capability
};

Result<VariantName> parse_variant_name(std::string_view name);

// A machine, described: from torch at run time in Python; here from options or the driver.
struct SystemInfo {
  // torch variants
  std::optional<MajorMinor> torch;
  bool cxx11_abi = true;
  std::optional<MajorMinor> tvm_ffi;
  Backend backend{"cpu", std::nullopt};  // e.g. {"cuda", 12.8}
  std::string cpu = "x86_64";
  std::string os = "linux";
  std::optional<MajorMinor> macos;
  // cubin variants: the newest CUDA version the driver supports, and one GPU's capability.
  std::optional<MajorMinor> driver_cuda;
  std::optional<MajorMinor> compute_capability;  // 9.0 for H100/H200
};

struct VariantDecision {
  std::string variant;
  bool accepted = false;
  std::string reason;  // why rejected, or "compatible" / "compatible, preferred"
};

struct VariantSelection {
  std::optional<std::string> chosen;
  std::vector<VariantDecision> trace;  // accepted first, in preference order, then rejected
};

// Applies the Hugging Face rules to torch/tvm-ffi/noarch names and ours to cubin names. A name that
// does not parse is rejected with the parse error as its reason.
VariantSelection select_variant(const std::vector<std::string>& names, const SystemInfo& system);

// Human trace, one line per variant, as `kernels variant` prints it.
std::string format_trace(const VariantSelection& selection);

}  // namespace kernels
