// Which kernels serve a call. Decided once per (device, ver) from what the bundle search came to,
// then answered per kernel of each call's plan, so a call reads
//   validate (validate.h) -> plan (launch_plan.h) -> pick (here) -> launch (the driver).
// Pure logic over function tables: no driver, no file system, no logging (the caller logs the
// decision's message and the notes a pick returns), so it is unit-tested without a GPU.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/attention/launch_plan.h"
#include "kernels/loader/driver.h"
#include "kernels/loader/loader.h"

namespace kernels::loader {

// The family a `ver` names: "fa4" for 4, else "fa3" (callers validate ver first).
inline const char* family_name(int ver) { return ver == 4 ? "fa4" : "fa3"; }

// Functions resolved in one context, by kernel_table() name.
using FunctionMap = std::unordered_map<std::string_view, Function>;

class SourceSelection {
 public:
  // The decision for family `ver` (3 or 4) on cuda:`ordinal`. `searched` is what the bundle search
  // found: reason none with the bundle's functions in `bundle_functions`, or the reason (and why)
  // it did not serve. A fa3 family without its bundle falls back to the built-in kernels; a fa4
  // family has no fallback and is unavailable.
  static SourceSelection decide(int ordinal, int ver, DeviceSource searched,
                                FunctionMap bundle_functions);

  const DeviceSource& source() const { return source_; }
  // The one line the host hears about the decision: info for the bundle, a warning for the
  // built-in fallback, an error for an unavailable family.
  LogLevel level() const { return level_; }
  const std::string& message() const { return message_; }

  // ok, or ErrorCode::no_variant when the family has no kernels on this device.
  Result<void> usable(std::string_view entry) const;

  // Whether a call should also be planned for the bundle's sm_90a TMA kernels.
  bool offers_sm90() const { return source_.source == Source::bundle; }

  struct Pick {
    bool sm90 = false;  // launch the sm90 plan's single launch (tensor maps to encode first)
    Function functions[2] = {nullptr, nullptr};  // per launch of the plan picked
  };
  // The function for each launch of the call: the bundle's sm90 kernel when `sm90` holds a plan
  // whose kernel the bundle carries, else per launch of `portable` the bundle's function when the
  // family is served by the bundle and carries it, else the built-in one. `sm90` is null when it
  // was not planned (offers_sm90() false). Information a host may want once (a shape the TMA
  // kernels or the bundle do not cover) is appended to `notes`. Errors: ErrorCode::no_variant
  // (an unavailable family, as usable() says, or a fa4 bundle lacking the kernel: no substitution
  // across families), ErrorCode::internal (a plan naming a kernel the built-in image lacks).
  Result<Pick> pick(const attention::LaunchPlan& portable,
                    const Result<attention::LaunchPlan>* sm90, const FunctionMap& builtin,
                    std::string_view entry, std::vector<std::string>& notes) const;

 private:
  int ordinal_ = 0;
  int ver_ = 3;
  DeviceSource source_;
  FunctionMap bundle_functions_;  // empty unless source_.source == Source::bundle
  LogLevel level_ = LogLevel::info;
  std::string message_;
};

}  // namespace kernels::loader
