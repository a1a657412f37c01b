#include "source_select.h"

#include <utility>

namespace kernels::loader {

SourceSelection SourceSelection::decide(int ordinal, int ver, DeviceSource searched,
                                        FunctionMap bundle_functions) {
  SourceSelection s;
  s.ordinal_ = ordinal;
  s.ver_ = ver;
  s.source_ = std::move(searched);
  DeviceSource& src = s.source_;
  const std::string where = "cuda:" + std::to_string(ordinal) + " (ver=" + std::to_string(ver) +
                            ", " + family_name(ver) + ")";
  if (src.reason == FallbackReason::none) {
    src.source = Source::bundle;
    s.bundle_functions_ = std::move(bundle_functions);
    s.level_ = LogLevel::info;
    s.message_ = where + ": using " + src.repo_id + "@" + src.sha + " variant " + src.variant +
                 (src.signer.empty() ? "" : ", signed by " + src.signer);
  } else if (ver == 3) {
    src.signer.clear();  // a signature that verified names no one when its bundle does not serve
    src.source = Source::builtin;
    s.level_ = LogLevel::warning;
    s.message_ = where + ": using the built-in attention kernels (" +
                 std::string(fallback_reason_name(src.reason)) + "): " + src.why.message();
  } else {
    src.signer.clear();
    src.source = Source::unavailable;
    s.level_ = LogLevel::error;
    s.message_ = where + ": no kernels (" + std::string(fallback_reason_name(src.reason)) +
                 "): " + src.why.message();
  }
  return s;
}

Result<void> SourceSelection::usable(std::string_view entry) const {
  if (source_.source != Source::unavailable) return ok();
  return make_error(ErrorCode::no_variant,
                    "ver=" + std::to_string(ver_) + " (" + family_name(ver_) +
                        ") has no kernels for cuda:" + std::to_string(ordinal_) + ": " +
                        std::string(fallback_reason_name(source_.reason)) + ": " +
                        source_.why.message(),
                    std::string(entry) + ": ver",
                    ver_ == 4 ? "ver=4 is served only by a locked, downloaded FA4 bundle "
                                "(KERNELS_FA4_REPO); use ver=3 for the built-in kernels"
                              : "");
}

Result<SourceSelection::Pick> SourceSelection::pick(const attention::LaunchPlan& portable,
                                                    const Result<attention::LaunchPlan>* sm90,
                                                    const FunctionMap& builtin,
                                                    std::string_view entry,
                                                    std::vector<std::string>& notes) const {
  if (auto r = usable(entry); !r) return r.error();  // never a silent fa3 stand-in for fa4
  Pick pick;
  const bool bundle = source_.source == Source::bundle;
  if (bundle && sm90 != nullptr) {
    // The bundle's TMA kernels serve what they cover; the rest keeps the portable plan.
    if (*sm90) {
      const auto it = bundle_functions_.find((*sm90)->launches[0].kernel_name);
      if (it != bundle_functions_.end()) {
        pick.sm90 = true;
        pick.functions[0] = it->second;
        return pick;
      }
    } else {
      notes.push_back("cuda:" + std::to_string(ordinal_) + ": the sm90 TMA kernels do not cover " +
                      sm90->error().what + "; such calls use the bundle's portable kernels");
    }
  }
  for (unsigned i = 0; i < portable.count; ++i) {
    const char* name = portable.launches[i].kernel_name;
    if (bundle) {
      if (const auto it = bundle_functions_.find(name); it != bundle_functions_.end()) {
        pick.functions[i] = it->second;
        continue;
      }
      if (ver_ == 4)
        return make_error(ErrorCode::no_variant,
                          std::string("the FA4 bundle has no kernel ") + name + " for this shape",
                          std::string(entry),
                          "lock an FA4 bundle that covers this head dim and dtype");
      // By design for shapes the bundle's family does not cover (decode, page size 1, ...):
      // information, not a warning.
      notes.push_back("cuda:" + std::to_string(ordinal_) + ": bundle " + source_.repo_id + "@" +
                      source_.sha + " has no kernel " + name +
                      "; such calls use the built-in kernels");
    }
    const auto it = builtin.find(name);
    if (it == builtin.end())
      return make_error(ErrorCode::internal,
                        std::string("the launch plan names kernel ") + name +
                            " which the built-in image lacks",
                        std::string(entry), "please report this");
    pick.functions[i] = it->second;
  }
  return pick;
}

}  // namespace kernels::loader
