// A C entry point over plan_forward + launch, for scripts/bench_attention.py (PyTorch sweeps and
// benchmarks call the kernels through ctypes with tensors PyTorch owns). Test and benchmark use
// only; the product's entry point is the loader.
#include <cstdio>
#include <cstring>

#include "gpu_harness.h"
#include "kernels/attention/launch_plan.h"

namespace {

void set_error(char* buf, int len, const std::string& msg) {
  if (buf != nullptr && len > 0) std::snprintf(buf, static_cast<size_t>(len), "%s", msg.c_str());
}

}  // namespace

extern "C" {

int kat_params_size() { return static_cast<int>(sizeof(kernels::attention::FwdParams)); }
int kat_abi_version() { return static_cast<int>(kernels::attention::kParamsAbiVersion); }

size_t kat_workspace_size(const kernels::attention::FwdParams* p) {
  const auto& g = kernels::test::gpu();
  return g.available ? kernels::attention::workspace_size(*p, g.facts) : 0;
}

// Returns the split count used, or -1 with a message in err.
int kat_forward(const kernels::attention::FwdParams* p, void* workspace, size_t workspace_bytes,
                void* stream, char* err, int err_len) {
  const auto& g = kernels::test::gpu();
  if (!g.available) {
    set_error(err, err_len, "no GPU: " + g.reason);
    return -1;
  }
  auto plan = kernels::attention::plan_forward(*p, g.facts, workspace, workspace_bytes);
  if (!plan) {
    set_error(err, err_len, plan.error().object + ": " + plan.error().what);
    return -1;
  }
  const std::string launch_err = kernels::test::launch(*plan, static_cast<cudaStream_t>(stream));
  if (!launch_err.empty()) {
    set_error(err, err_len, launch_err);
    return -1;
  }
  return plan->num_splits;
}

}  // extern "C"
