#include "kernels/lockfile/variant.h"

#include <algorithm>
#include <charconv>
#include <tuple>

namespace kernels {

std::string MajorMinor::str() const { return std::to_string(major) + "." + std::to_string(minor); }

std::string Backend::str() const {
  if (!version) return name;
  const std::string mm = std::to_string(version->major) + std::to_string(version->minor);
  if (name == "cuda") return "cu" + mm;
  return name + mm;  // rocm71, xpu20253, cann80
}

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int> to_int(std::string_view s) {
  if (!all_digits(s) || s.size() > 9) return std::nullopt;
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Splits digits into major/minor: `minor_digits` digits at the end are the minor (greedy major,
// as Python's (\d+)(\d) does), or with minor_digits == 0 the first digit is the major.
std::optional<MajorMinor> split_version(std::string_view digits, bool last_digit_minor) {
  if (!all_digits(digits) || digits.size() < 2) return std::nullopt;
  std::string_view maj, min;
  if (last_digit_minor) {
    maj = digits.substr(0, digits.size() - 1);
    min = digits.substr(digits.size() - 1);
  } else {
    maj = digits.substr(0, 1);
    min = digits.substr(1);
  }
  auto a = to_int(maj), b = to_int(min);
  if (!a || !b) return std::nullopt;
  return MajorMinor{*a, *b};
}

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

std::string_view leading_digits(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  return s.substr(0, n);
}

std::optional<Backend> parse_backend(std::string_view b) {
  for (std::string_view plain : {"cpu", "metal", "neuron", "tpu"}) {
    if (b == plain) return Backend{std::string(plain), std::nullopt};
  }
  struct Versioned {
    std::string_view prefix, name;
  };
  for (const Versioned v : {Versioned{"cu", "cuda"}, Versioned{"rocm", "rocm"},
                            Versioned{"xpu", "xpu"}, Versioned{"cann", "cann"}}) {
    std::string_view rest = b;
    if (!consume(rest, v.prefix)) continue;
    std::optional<MajorMinor> mm;
    if (v.name == "xpu") {
      // xpu<YYYY><M...>: xpu20253 = 2025.3
      if (rest.size() >= 5 && all_digits(rest)) {
        auto y = to_int(rest.substr(0, 4)), m = to_int(rest.substr(4));
        if (y && m) mm = MajorMinor{*y, *m};
      }
    } else {
      mm = split_version(rest, true);
    }
    if (!mm) return std::nullopt;
    return Backend{std::string(v.name), mm};
  }
  return std::nullopt;
}

Error bad_name(std::string_view name, std::string why) {
  return make_error(ErrorCode::usage, "not a build variant name: " + std::move(why),
                    std::string(name),
                    "expected e.g. torch210-cxx11-cu128-x86_64-linux, "
                    "torch-stable-abi29-cu126-x86_64-linux, tvm-ffi01-cu128-x86_64-linux, "
                    "torch-cuda, torch-universal or cubin-cu130-sm90a");
}

Result<VariantName> parse_cubin(std::string_view name, std::string_view rest) {
  VariantName v;
  v.kind = VariantName::Kind::cubin;
  v.text = std::string(name);
  if (!consume(rest, "cu")) return bad_name(name, "expected \"cu<MAJ><MIN>\" after \"cubin-\"");
  const std::string_view cu = leading_digits(rest);
  auto mm = split_version(cu, true);
  if (!mm) return bad_name(name, "expected the CUDA version as digits, e.g. cu130 (13.0)");
  v.cuda = *mm;
  rest.remove_prefix(cu.size());
  if (!consume(rest, "-sm")) return bad_name(name, "expected \"-sm<CC>\" after the CUDA version");
  const std::string_view sm = leading_digits(rest);
  if (sm.size() < 2 || sm.size() > 3 || sm[0] == '0') {
    return bad_name(name, "expected a compute capability such as sm80, sm90a or sm120");
  }
  v.sm = *to_int(sm);
  rest.remove_prefix(sm.size());
  if (rest == "a") {
    v.arch_specific = true;
  } else if (!rest.empty()) {
    return bad_name(name, "unexpected \"" + std::string(rest) + "\" after sm" + std::string(sm));
  }
  return v;
}

Result<VariantName> parse_name(std::string_view name) {
  VariantName v;
  v.text = std::string(name);
  std::string_view rest = name;
  if (consume(rest, "cubin-")) return parse_cubin(name, rest);

  if (consume(rest, "torch-stable-abi")) {
    v.kind = VariantName::Kind::torch_stable_abi;
    const auto d = leading_digits(rest);
    auto mm = split_version(d, false);
    if (!mm) return bad_name(name, "expected the stable ABI version, e.g. torch-stable-abi29");
    v.framework = *mm;
    rest.remove_prefix(d.size());
  } else if (consume(rest, "tvm-ffi")) {
    v.kind = VariantName::Kind::tvm_ffi;
    const auto d = leading_digits(rest);
    auto mm = split_version(d, false);
    if (!mm) return bad_name(name, "expected the tvm-ffi version, e.g. tvm-ffi01");
    v.framework = *mm;
    rest.remove_prefix(d.size());
  } else if (consume(rest, "torch")) {
    if (!rest.empty() && rest[0] == '-') {
      const std::string_view b = rest.substr(1);
      for (std::string_view n :
           {"cpu", "cuda", "metal", "neuron", "rocm", "tpu", "xpu", "npu", "universal"}) {
        if (b == n) {
          v.kind = VariantName::Kind::noarch;
          v.noarch_backend = std::string(n);
          return v;
        }
      }
      return bad_name(name, "unknown noarch backend \"" + std::string(b) + "\"");
    }
    v.kind = VariantName::Kind::torch;
    const auto d = leading_digits(rest);
    auto mm = split_version(d, false);
    if (!mm) return bad_name(name, "expected the torch version, e.g. torch210");
    v.framework = *mm;
    rest.remove_prefix(d.size());
    if (consume(rest, "-cxx11")) v.cxxabi = "cxx11";
    else if (consume(rest, "-cxx98")) v.cxxabi = "cxx98";
  } else {
    return bad_name(name, "unknown framework prefix");
  }

  // "-<backend>-<cpu>-<os>"
  if (!consume(rest, "-")) return bad_name(name, "expected \"-<backend>-<cpu>-<os>\"");
  const auto d1 = rest.find('-');
  const auto d2 = d1 == std::string_view::npos ? d1 : rest.find('-', d1 + 1);
  if (d2 == std::string_view::npos || rest.find('-', d2 + 1) != std::string_view::npos) {
    return bad_name(name, "expected \"-<backend>-<cpu>-<os>\" after the framework");
  }
  auto backend = parse_backend(rest.substr(0, d1));
  if (!backend) {
    return bad_name(name, "unknown backend \"" + std::string(rest.substr(0, d1)) + "\"");
  }
  v.backend = *backend;
  v.cpu = std::string(rest.substr(d1 + 1, d2 - d1 - 1));
  v.os = std::string(rest.substr(d2 + 1));
  if (v.cpu != "x86_64" && v.cpu != "aarch64") {
    return bad_name(name, "unknown CPU \"" + v.cpu + "\": expected x86_64 or aarch64");
  }
  if (v.os != "linux" && v.os != "darwin" && v.os != "windows") {
    return bad_name(name, "unknown OS \"" + v.os + "\": expected linux, darwin or windows");
  }
  return v;
}

// Why `v` cannot run on `sys`, or nullopt when it can.
std::optional<std::string> reject_reason(const VariantName& v, const SystemInfo& sys) {
  using K = VariantName::Kind;
  if (v.kind == K::cubin) {
    if (!sys.driver_cuda) return "needs a CUDA driver, none was found";
    if (v.cuda > *sys.driver_cuda) {
      return "needs CUDA driver >= " + v.cuda.str() + ", driver supports " + sys.driver_cuda->str();
    }
    if (!sys.compute_capability) return "needs a GPU, none was found";
    const MajorMinor cc = *sys.compute_capability;
    const MajorMinor want{v.sm / 10, v.sm % 10};
    if (v.arch_specific) {
      if (cc != want) {
        return "sm" + std::to_string(v.sm) + "a runs only on compute capability " + want.str() +
               ", GPU is " + cc.str();
      }
    } else if (cc.major != want.major || cc.minor < want.minor) {
      return "sm" + std::to_string(v.sm) + " runs on compute capability " + want.str() + " up to " +
             std::to_string(want.major) + ".x, GPU is " + cc.str();
    }
    return std::nullopt;
  }
  if (v.kind == K::noarch) {
    // torch-* noarch variants are Python packages for torch: a described system without torch
    // (the C++ loader's) cannot use them. Python always has torch here, so its rule is unchanged.
    if (!sys.torch) return "needs torch, torch is not available";
    std::string sys_name = sys.backend.name == "cann" ? "npu" : sys.backend.name;
    if (v.noarch_backend == "universal" || v.noarch_backend == sys_name) return std::nullopt;
    return "backend " + v.noarch_backend + " does not match the system backend " + sys_name;
  }
  if (v.cpu != sys.cpu) return "CPU " + v.cpu + " does not match the system CPU " + sys.cpu;
  if (v.os != sys.os) return "OS " + v.os + " does not match the system OS " + sys.os;
  switch (v.kind) {
    case K::torch:
      if (!sys.torch) return "needs torch " + v.framework.str() + ", torch is not available";
      if (v.framework != *sys.torch) {
        return "torch " + v.framework.str() + " does not match the system torch " +
               sys.torch->str();
      }
      if (v.cxxabi) {
        const std::string sys_abi = sys.cxx11_abi ? "cxx11" : "cxx98";
        if (*v.cxxabi != sys_abi) {
          return "C++ ABI " + *v.cxxabi + " does not match torch's ABI " + sys_abi;
        }
      }
      break;
    case K::torch_stable_abi:
      if (!sys.torch) {
        return "needs torch >= " + v.framework.str() + ", torch is not available";
      }
      if (v.framework > *sys.torch) {
        return "stable ABI " + v.framework.str() + " is newer than the system torch " +
               sys.torch->str();
      }
      break;
    case K::tvm_ffi:
      if (!sys.tvm_ffi) return "needs tvm-ffi " + v.framework.str() + ", tvm-ffi is not available";
      if (v.framework != *sys.tvm_ffi) {
        return "tvm-ffi " + v.framework.str() + " does not match the system tvm-ffi " +
               sys.tvm_ffi->str();
      }
      break;
    default: break;
  }
  const Backend& b = v.backend;
  if (b.name == "cuda" && sys.backend.name == "cuda" && b.version && sys.backend.version) {
    // Same major, variant minor <= system minor (kernels PR #330/#336).
    if (b.version->major != sys.backend.version->major ||
        b.version->minor > sys.backend.version->minor) {
      return "CUDA " + b.version->str() + " is not compatible with the system CUDA " +
             sys.backend.version->str() +
             " (needs the same major and a minor <= " + std::to_string(sys.backend.version->minor) +
             ")";
    }
  } else if (b.str() != sys.backend.str()) {
    return "backend " + b.str() + " does not match the system backend " + sys.backend.str();
  }
  if (b.name == "metal" && (!sys.macos || *sys.macos < MajorMinor{26, 0})) {
    return "Metal needs macOS >= 26.0, system is " + (sys.macos ? sys.macos->str() : "not macOS");
  }
  return std::nullopt;
}

using SortKey = std::tuple<int, int, int, int, int, int, int>;

// Preference order (ascending). Torch/tvm-ffi/noarch follow kernels variants.py::_sort_variants;
// cubin variants sort after all of them, so adding cubin dirs never changes the Hugging Face
// choice: exact architecture first, arch-specific ("a") before portable, newest toolkit, highest
// sm.
SortKey sort_key(const VariantName& v, const SystemInfo& sys) {
  using K = VariantName::Kind;
  auto backend_order = [&](const Backend& b) {
    if (b.version &&
        (b.name == "cuda" || b.name == "rocm" || b.name == "xpu" || b.name == "cann")) {
      return -b.version->minor;
    }
    return 0;
  };
  switch (v.kind) {
    case K::torch_stable_abi:
      return {0, -v.framework.major, -v.framework.minor, backend_order(v.backend), 0, 0, 0};
    case K::torch: return {1, 0, v.cxxabi ? 1 : 0, backend_order(v.backend), 0, 0, 0};
    case K::tvm_ffi: return {2, 0, 0, backend_order(v.backend), 0, 0, 0};
    case K::noarch: return {2, 0, 0, v.noarch_backend == "universal" ? 1 : 0, 0, 0, 0};
    case K::cubin: {
      const bool exact = sys.compute_capability &&
                         v.sm == sys.compute_capability->major * 10 + sys.compute_capability->minor;
      return {3, exact ? 0 : 1, v.arch_specific ? 0 : 1, -v.cuda.major, -v.cuda.minor, -v.sm, 0};
    }
  }
  return {4, 0, 0, 0, 0, 0, 0};
}

}  // namespace

Result<VariantName> parse_variant_name(std::string_view name) {
  try {
    return parse_name(name);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("variant parser failed: ") + e.what(),
                      std::string(name));
  }
}

VariantSelection select_variant(const std::vector<std::string>& names, const SystemInfo& system) {
  struct Candidate {
    std::string name;
    bool parsed = false;
    bool accepted = false;
    SortKey key;
    std::string reason;
  };
  std::vector<Candidate> cands;
  cands.reserve(names.size());
  for (const std::string& n : names) {
    Candidate c;
    c.name = n;
    auto v = parse_variant_name(n);
    if (!v) {
      c.reason = "not a variant name (" + v.error().what + ")";
    } else {
      c.parsed = true;
      auto why = reject_reason(*v, system);
      c.accepted = !why;
      if (why) c.reason = std::move(*why);
      c.key = sort_key(*v, system);
    }
    cands.push_back(std::move(c));
  }
  // Python's sort is stable over an unordered set, so its ties are arbitrary; the name breaks
  // them here so the choice is deterministic.
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return std::tuple(!a.accepted, !a.parsed, a.key, a.name) <
           std::tuple(!b.accepted, !b.parsed, b.key, b.name);
  });
  VariantSelection sel;
  for (Candidate& c : cands) {
    VariantDecision d;
    d.variant = c.name;
    d.accepted = c.accepted;
    if (c.accepted) {
      d.reason = sel.chosen ? "compatible" : "compatible, preferred";
      if (!sel.chosen) sel.chosen = c.name;
    } else {
      d.reason = std::move(c.reason);
    }
    sel.trace.push_back(std::move(d));
  }
  return sel;
}

std::string format_trace(const VariantSelection& selection) {
  std::string out;
  for (const VariantDecision& d : selection.trace) {
    if (d.accepted) out += d.variant + " " + d.reason + " \u2705\n";
    else out += d.variant + ": " + d.reason + "\n";
  }
  return out;
}

}  // namespace kernels
