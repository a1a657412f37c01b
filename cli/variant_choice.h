// Which build variants of one repo fit the target machine(s): cubin variants by the driver's CUDA
// version and each GPU's compute capability, torch/tvm-ffi/noarch variants by the system a person
// described (--torch ...). Each family gets its own choice; the trace explains all of them.
#pragma once

#include <string>
#include <vector>

#include "system_probe.h"

namespace kernels::cli {

struct VariantChoice {
  std::vector<std::string> chosen;  // unique, in the order decided
  std::vector<std::string> notes;   // why a family of variants was not considered
  std::string trace;                // format_trace of every selection made, one block per target
};

VariantChoice choose_variants(const std::vector<std::string>& names, const TargetSystems& targets,
                              const std::string& driver_problem);

}  // namespace kernels::cli
