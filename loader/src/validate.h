// Argument validation for the two entry points: everything FlashAttention-3 checks, plus the
// checks it lacks (sglang-fa3-api.md §8), done on the host before anything is launched. The
// output is the kernels' FwdParams, filled exactly once, here.
#pragma once

#include <optional>
#include <string>

#include "kernels/attention/params.h"
#include "kernels/kernels_loader.h"
#include "kernels/loader/driver.h"

namespace kernels::loader {

// One broken rule. `rule` is a stable identifier (tests and callers may match on it), `argument`
// the FA3 parameter name.
struct ArgViolation {
  std::string rule;
  std::string argument;
  std::string message;
  std::string hint;
};

struct ValidatedCall {
  std::optional<ArgViolation> violation;
  attention::FwdParams params{};
  // Rows of k (and v) in their token dimension: total_k for varlen k, seqlen_k for a batched
  // cache, page_size when paged. The TMA tensor maps never reach past it.
  std::int64_t k_rows = 0;
  bool empty = false;  // no query rows: nothing to launch
};

// `device` is the stream's device; every tensor must live there.
ValidatedCall validate_varlen(const kl_varlen_args& args, const DeviceProperties& device);
ValidatedCall validate_kvcache(const kl_kvcache_args& args, const DeviceProperties& device);

}  // namespace kernels::loader
