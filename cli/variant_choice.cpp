#include "variant_choice.h"

#include <algorithm>

namespace kernels::cli {

VariantChoice choose_variants(const std::vector<std::string>& names, const TargetSystems& targets,
                              const std::string& driver_problem) {
  VariantChoice choice;
  std::vector<std::string> cubins, others;
  for (const std::string& n : names) (n.rfind("cubin-", 0) == 0 ? cubins : others).push_back(n);
  auto add = [&](const std::string& v) {
    if (std::find(choice.chosen.begin(), choice.chosen.end(), v) == choice.chosen.end()) {
      choice.chosen.push_back(v);
    }
  };
  if (!cubins.empty()) {
    if (!targets.gpu_known) {
      choice.notes.push_back(
          "cubin variants: " + (driver_problem.empty() ? std::string("no GPU") : driver_problem) +
          ", so none is selected (use --all-variants, --variant, or "
          "--driver-cuda with --compute-capability)");
    } else {
      for (const SystemInfo& system : targets.systems) {
        VariantSelection s = select_variant(cubins, system);
        if (s.chosen) add(*s.chosen);
        choice.trace += "GPU compute capability " +
                        (system.compute_capability ? system.compute_capability->str() : "?") +
                        ", driver CUDA " + (system.driver_cuda ? system.driver_cuda->str() : "?") +
                        ":\n" + format_trace(s) + "\n";
      }
    }
  }
  if (!others.empty()) {
    if (!targets.torch_described) {
      choice.notes.push_back(
          "torch variants: no target described, so none is selected (use "
          "--torch MAJOR.MINOR with --cuda/--rocm, or --all-variants)");
    } else {
      VariantSelection s = select_variant(others, targets.systems.front());
      if (s.chosen) add(*s.chosen);
      choice.trace += "torch " + targets.systems.front().torch->str() + ", " +
                      targets.systems.front().backend.str() + ":\n" + format_trace(s) + "\n";
    }
  }
  return choice;
}

}  // namespace kernels::cli
