// Variant names (Hugging Face grammar + cubin-cu<MAJ><MIN>-sm<CC>[a]) and variant selection.
#include <catch2/catch.hpp>

#include <set>

#include <nlohmann/json.hpp>

#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/variant.h"
#include "support.h"

using namespace kernels;

namespace {

SystemInfo cuda_system(MajorMinor cuda, MajorMinor torch = {2, 10}) {
  SystemInfo s;
  s.torch = torch;
  s.backend = Backend{"cuda", cuda};
  return s;
}

SystemInfo gpu(MajorMinor driver, MajorMinor cc) {
  SystemInfo s;
  s.driver_cuda = driver;
  s.compute_capability = cc;
  return s;
}

const VariantDecision& decision(const VariantSelection& sel, const std::string& name) {
  for (const auto& d : sel.trace) {
    if (d.variant == name) return d;
  }
  FAIL("no decision for " << name);
  return sel.trace.front();
}

}  // namespace

TEST_CASE("torch variant names parse per the Hugging Face grammar", "[variant]") {
  auto v = parse_variant_name("torch210-cxx11-cu128-x86_64-linux");
  REQUIRE(v.ok());
  CHECK(v->kind == VariantName::Kind::torch);
  CHECK(v->framework == MajorMinor{2, 10});
  CHECK(v->cxxabi == "cxx11");
  CHECK(v->backend == Backend{"cuda", MajorMinor{12, 8}});
  CHECK(v->backend.str() == "cu128");
  CHECK(v->cpu == "x86_64");
  CHECK(v->os == "linux");

  auto darwin = parse_variant_name("torch210-metal-aarch64-darwin");
  REQUIRE(darwin.ok());
  CHECK_FALSE(darwin->cxxabi.has_value());
  CHECK(darwin->backend.name == "metal");
  CHECK(darwin->os == "darwin");

  auto xpu = parse_variant_name("torch212-cxx11-xpu20253-x86_64-linux");
  REQUIRE(xpu.ok());
  CHECK(xpu->backend == Backend{"xpu", MajorMinor{2025, 3}});
  CHECK(xpu->backend.str() == "xpu20253");

  auto rocm = parse_variant_name("torch212-cxx11-rocm71-x86_64-linux");
  REQUIRE(rocm.ok());
  CHECK(rocm->backend == Backend{"rocm", MajorMinor{7, 1}});

  auto win = parse_variant_name("torch210-cu128-x86_64-windows");
  REQUIRE(win.ok());
  CHECK(win->os == "windows");

  auto cann = parse_variant_name("torch29-cxx11-cann80-aarch64-linux");
  REQUIRE(cann.ok());
  CHECK(cann->backend == Backend{"cann", MajorMinor{8, 0}});
  CHECK(parse_variant_name("torch29-cxx98-cpu-x86_64-linux")->cxxabi == "cxx98");
}

TEST_CASE("stable-ABI, tvm-ffi and noarch names parse", "[variant]") {
  auto s = parse_variant_name("torch-stable-abi29-cu126-x86_64-linux");
  REQUIRE(s.ok());
  CHECK(s->kind == VariantName::Kind::torch_stable_abi);
  CHECK(s->framework == MajorMinor{2, 9});
  CHECK(s->backend.version == MajorMinor{12, 6});
  auto s211 = parse_variant_name("torch-stable-abi211-cu130-x86_64-linux");
  REQUIRE(s211.ok());
  CHECK(s211->framework == MajorMinor{2, 11});

  auto t = parse_variant_name("tvm-ffi01-cu128-x86_64-linux");
  REQUIRE(t.ok());
  CHECK(t->kind == VariantName::Kind::tvm_ffi);
  CHECK(t->framework == MajorMinor{0, 1});

  for (const char* n :
       {"cpu", "cuda", "metal", "neuron", "rocm", "tpu", "xpu", "npu", "universal"}) {
    auto v = parse_variant_name(std::string("torch-") + n);
    INFO(n);
    REQUIRE(v.ok());
    CHECK(v->kind == VariantName::Kind::noarch);
    CHECK(v->noarch_backend == n);
  }
}

TEST_CASE("cubin names: greedy cu parsing, sm major/minor, arch-specific suffix", "[variant]") {
  auto a = parse_variant_name("cubin-cu130-sm90a");
  REQUIRE(a.ok());
  CHECK(a->kind == VariantName::Kind::cubin);
  CHECK(a->cuda == MajorMinor{13, 0});
  CHECK(a->sm == 90);
  CHECK(a->arch_specific);
  auto b = parse_variant_name("cubin-cu128-sm80");
  REQUIRE(b.ok());
  CHECK(b->cuda == MajorMinor{12, 8});
  CHECK(b->sm == 80);
  CHECK_FALSE(b->arch_specific);
  auto c = parse_variant_name("cubin-cu129-sm120");
  REQUIRE(c.ok());
  CHECK(c->sm == 120);
}

namespace {

// The name spelled back from the parsed fields.
std::string spell(const VariantName& v) {
  const std::string fw = std::to_string(v.framework.major) + std::to_string(v.framework.minor);
  const std::string tail = "-" + v.backend.str() + "-" + v.cpu + "-" + v.os;
  switch (v.kind) {
    case VariantName::Kind::torch: return "torch" + fw + (v.cxxabi ? "-" + *v.cxxabi : "") + tail;
    case VariantName::Kind::torch_stable_abi: return "torch-stable-abi" + fw + tail;
    case VariantName::Kind::tvm_ffi: return "tvm-ffi" + fw + tail;
    case VariantName::Kind::noarch: return "torch-" + v.noarch_backend;
    case VariantName::Kind::cubin:
      return "cubin-cu" + std::to_string(v.cuda.major) + std::to_string(v.cuda.minor) + "-sm" +
             std::to_string(v.sm) + (v.arch_specific ? "a" : "");
  }
  return {};
}

}  // namespace

TEST_CASE("every variant in the real locks and in build-variants.json parses and spells back",
          "[variant]") {
  std::set<std::string> names;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(kernels::test::hf_fixtures())) {
    if (entry.path().filename() != "kernels.lock") continue;
    auto lock = read_lockfile(entry.path());
    REQUIRE(lock.ok());
    for (const auto& k : lock->kernels) {
      for (const auto& [name, _] : k.variants) names.insert(name);
    }
  }
  const auto matrix = nlohmann::json::parse(kernels::test::slurp(
      kernels::test::hf_fixtures() / "kernels@8ac69fc5/nix-builder/build-variants.json"));
  for (const auto& [system, backends] : matrix.items()) {
    for (const auto& [backend, list] : backends.items()) {
      for (const auto& n : list) names.insert(n.get<std::string>());
    }
  }
  REQUIRE(names.size() > 80);
  for (const std::string& name : names) {
    INFO(name);
    auto v = parse_variant_name(name);
    if (name == "torch-ext") {  // kernels < 0.12 hashed build/torch-ext/ (raw prefix rule)
      CHECK_FALSE(v.ok());
      continue;
    }
    REQUIRE(v.ok());
    CHECK(spell(*v) == name);
  }
}

TEST_CASE("names outside the grammar are rejected with the reason", "[variant]") {
  for (const char* bad :
       {"", "torch", "torch2-cxx11-cu128-x86_64-linux", "torch210-cxx11-cu128-x86_64",
        "torch210-cxx11-cu128-riscv64-linux", "torch210-cxx11-cu128-x86_64-freebsd",
        "torch210-cxx11-vulkan-x86_64-linux", "torch-opencl", "cubin-cu1-sm90a", "cubin-cu130-sm9",
        "cubin-cu130-sm90b", "cubin-cu130", "cubin-130-sm90", "jax05-cpu-x86_64-linux",
        "torch210-cxx11-cu128-x86_64-linux-extra", "../torch-cuda"}) {
    INFO(bad);
    auto v = parse_variant_name(bad);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().what.find("not a build variant name") != std::string::npos);
    CHECK(v.error().object == bad);
  }
}

TEST_CASE("Hugging Face selection test vectors (kernels tests/test_variants.py)", "[variant]") {
  const std::vector<std::string> variants = {"torch210-cxx11-cu126-x86_64-linux",
                                             "torch210-cxx11-cu128-x86_64-linux",
                                             "torch210-cxx11-cu130-x86_64-linux",
                                             "torch210-cxx11-rocm70-x86_64-linux",
                                             "torch210-cxx11-cpu-x86_64-linux",
                                             "torch210-cpu-aarch64-darwin",
                                             "torch210-metal-aarch64-darwin",
                                             "torch-cuda",
                                             "torch-cpu"};
  struct Row {
    SystemInfo system;
    const char* expected;
  };
  SystemInfo rocm;
  rocm.torch = MajorMinor{2, 10};
  rocm.backend = Backend{"rocm", MajorMinor{7, 0}};
  const std::vector<Row> rows = {
      {cuda_system({12, 8}), "torch210-cxx11-cu128-x86_64-linux"},
      {cuda_system({12, 9}), "torch210-cxx11-cu128-x86_64-linux"},
      {cuda_system({12, 5}), "torch-cuda"},
      {cuda_system({11, 8}), "torch-cuda"},
      {rocm, "torch210-cxx11-rocm70-x86_64-linux"},
  };
  for (const Row& row : rows) {
    INFO("system backend " << row.system.backend.str());
    auto sel = select_variant(variants, row.system);
    INFO(format_trace(sel));
    REQUIRE(sel.chosen.has_value());
    CHECK(*sel.chosen == row.expected);
  }
}

TEST_CASE("preference: stable ABI first (newest), tagless before cxx11, noarch and universal last",
          "[variant]") {
  const std::vector<std::string> variants = {"torch-universal",
                                             "torch-cuda",
                                             "torch210-cxx11-cu128-x86_64-linux",
                                             "torch210-cu128-x86_64-linux",
                                             "torch-stable-abi28-cu128-x86_64-linux",
                                             "torch-stable-abi29-cu126-x86_64-linux",
                                             "tvm-ffi01-cu128-x86_64-linux"};
  SystemInfo s = cuda_system({12, 8});
  s.tvm_ffi = MajorMinor{0, 1};
  auto sel = select_variant(variants, s);
  std::vector<std::string> order;
  for (const auto& d : sel.trace) {
    REQUIRE(d.accepted);
    order.push_back(d.variant);
  }
  CHECK(order ==
        std::vector<std::string>{"torch-stable-abi29-cu126-x86_64-linux",
                                 "torch-stable-abi28-cu128-x86_64-linux",
                                 "torch210-cu128-x86_64-linux", "torch210-cxx11-cu128-x86_64-linux",
                                 "tvm-ffi01-cu128-x86_64-linux", "torch-cuda", "torch-universal"});
  CHECK(sel.trace[0].reason == "compatible, preferred");
  CHECK(sel.trace[1].reason == "compatible");
}

TEST_CASE("torch rejections name the mismatch", "[variant]") {
  SystemInfo s = cuda_system({12, 8});
  s.cxx11_abi = false;
  auto sel = select_variant(
      {"torch210-cxx11-cu128-x86_64-linux", "torch29-cxx98-cu128-x86_64-linux",
       "torch210-cxx98-cu128-aarch64-linux", "torch210-cxx98-cu130-x86_64-linux",
       "torch210-cxx98-rocm71-x86_64-linux", "torch-stable-abi211-cu128-x86_64-linux",
       "tvm-ffi01-cu128-x86_64-linux", "torch-rocm", "not-a-variant"},
      s);
  CHECK_FALSE(sel.chosen.has_value());
  CHECK(decision(sel, "torch210-cxx11-cu128-x86_64-linux").reason ==
        "C++ ABI cxx11 does not match torch's ABI cxx98");
  CHECK(decision(sel, "torch29-cxx98-cu128-x86_64-linux").reason ==
        "torch 2.9 does not match the system torch 2.10");
  CHECK(decision(sel, "torch210-cxx98-cu128-aarch64-linux").reason ==
        "CPU aarch64 does not match the system CPU x86_64");
  CHECK(decision(sel, "torch210-cxx98-cu130-x86_64-linux")
            .reason.find("CUDA 13.0 is not compatible with the system CUDA 12.8") == 0);
  CHECK(decision(sel, "torch210-cxx98-rocm71-x86_64-linux").reason ==
        "backend rocm71 does not match the system backend cu128");
  CHECK(decision(sel, "torch-stable-abi211-cu128-x86_64-linux").reason ==
        "stable ABI 2.11 is newer than the system torch 2.10");
  CHECK(decision(sel, "tvm-ffi01-cu128-x86_64-linux").reason ==
        "needs tvm-ffi 0.1, tvm-ffi is not available");
  CHECK(decision(sel, "torch-rocm").reason ==
        "backend rocm does not match the system backend cuda");
  CHECK(decision(sel, "not-a-variant").reason.find("not a variant name") == 0);
  CHECK(sel.trace.back().variant == "not-a-variant");
}

TEST_CASE("ROCm needs an exact version, Metal needs macOS 26, CANN matches torch-npu",
          "[variant]") {
  SystemInfo rocm;
  rocm.torch = MajorMinor{2, 10};
  rocm.backend = Backend{"rocm", MajorMinor{7, 1}};
  auto r = select_variant({"torch210-cxx11-rocm70-x86_64-linux"}, rocm);
  CHECK_FALSE(r.chosen.has_value());

  SystemInfo mac;
  mac.torch = MajorMinor{2, 10};
  mac.backend = Backend{"metal", std::nullopt};
  mac.cpu = "aarch64";
  mac.os = "darwin";
  mac.macos = MajorMinor{15, 0};
  auto old_mac = select_variant({"torch210-metal-aarch64-darwin"}, mac);
  CHECK_FALSE(old_mac.chosen.has_value());
  CHECK(old_mac.trace[0].reason == "Metal needs macOS >= 26.0, system is 15.0");
  mac.macos = MajorMinor{26, 1};
  CHECK(select_variant({"torch210-metal-aarch64-darwin"}, mac).chosen ==
        "torch210-metal-aarch64-darwin");

  SystemInfo npu;
  npu.torch = MajorMinor{2, 9};
  npu.backend = Backend{"cann", MajorMinor{8, 0}};
  CHECK(select_variant({"torch-npu", "torch-cuda"}, npu).chosen == "torch-npu");
}

TEST_CASE("cubin: toolkit must not be newer than the driver supports", "[variant]") {
  auto sel = select_variant({"cubin-cu130-sm90a"}, gpu({12, 8}, {9, 0}));
  CHECK_FALSE(sel.chosen.has_value());
  CHECK(sel.trace[0].reason == "needs CUDA driver >= 13.0, driver supports 12.8");
  CHECK(select_variant({"cubin-cu128-sm90a"}, gpu({12, 8}, {9, 0})).chosen == "cubin-cu128-sm90a");
  SystemInfo none;
  CHECK(select_variant({"cubin-cu128-sm90a"}, none).trace[0].reason ==
        "needs a CUDA driver, none was found");
}

TEST_CASE("cubin: sm90a runs only on compute capability 9.0", "[variant]") {
  auto a100 = select_variant({"cubin-cu130-sm90a"}, gpu({13, 0}, {8, 0}));
  CHECK_FALSE(a100.chosen.has_value());
  CHECK(a100.trace[0].reason == "sm90a runs only on compute capability 9.0, GPU is 8.0");
  auto b200 = select_variant({"cubin-cu130-sm90a"}, gpu({13, 0}, {10, 0}));
  CHECK(b200.trace[0].reason == "sm90a runs only on compute capability 9.0, GPU is 10.0");
  CHECK(select_variant({"cubin-cu130-sm90a"}, gpu({13, 0}, {9, 0})).chosen == "cubin-cu130-sm90a");
}

TEST_CASE("cubin: smXY runs on the same major with minor >= Y", "[variant]") {
  CHECK(select_variant({"cubin-cu130-sm80"}, gpu({13, 0}, {8, 6})).chosen == "cubin-cu130-sm80");
  auto h100 = select_variant({"cubin-cu130-sm80"}, gpu({13, 0}, {9, 0}));
  CHECK_FALSE(h100.chosen.has_value());
  CHECK(h100.trace[0].reason == "sm80 runs on compute capability 8.0 up to 8.x, GPU is 9.0");
  auto a100 = select_variant({"cubin-cu130-sm86"}, gpu({13, 0}, {8, 0}));
  CHECK_FALSE(a100.chosen.has_value());
  CHECK(a100.trace[0].reason == "sm86 runs on compute capability 8.6 up to 8.x, GPU is 8.0");
}

TEST_CASE("cubin preference: exact architecture, then arch-specific, then newest toolkit",
          "[variant]") {
  const std::vector<std::string> names = {"cubin-cu128-sm80", "cubin-cu130-sm80",
                                          "cubin-cu128-sm86", "cubin-cu128-sm90a",
                                          "cubin-cu130-sm90", "cubin-cu129-sm90a",
                                          "cubin-cu132-sm90a"};
  auto h100 = select_variant(names, gpu({13, 0}, {9, 0}));
  REQUIRE(h100.chosen.has_value());
  CHECK(*h100.chosen == "cubin-cu129-sm90a");  // cu132 needs a newer driver
  CHECK(h100.trace[1].variant == "cubin-cu128-sm90a");
  CHECK(h100.trace[2].variant == "cubin-cu130-sm90");
  auto a10 = select_variant(names, gpu({13, 0}, {8, 6}));
  REQUIRE(a10.chosen.has_value());
  CHECK(*a10.chosen == "cubin-cu128-sm86");           // exact match beats a newer toolkit
  CHECK(a10.trace[1].variant == "cubin-cu130-sm80");  // then newest toolkit
  CHECK(a10.trace[2].variant == "cubin-cu128-sm80");
}

TEST_CASE("cubin variants never change the Hugging Face choice", "[variant]") {
  SystemInfo s = cuda_system({12, 8});
  s.driver_cuda = MajorMinor{12, 8};
  s.compute_capability = MajorMinor{9, 0};
  auto sel = select_variant({"cubin-cu128-sm90a", "torch-cuda"}, s);
  CHECK(sel.chosen == "torch-cuda");
  CHECK(decision(sel, "cubin-cu128-sm90a").accepted);
}

TEST_CASE("without torch, noarch torch-* variants are rejected and a cubin is chosen",
          "[variant]") {
  SystemInfo s = gpu({12, 8}, {9, 0});
  s.backend = Backend{"cuda", MajorMinor{12, 8}};
  auto sel = select_variant({"torch-cuda", "torch-universal", "cubin-cu128-sm90a"}, s);
  CHECK(sel.chosen == "cubin-cu128-sm90a");
  CHECK(decision(sel, "torch-cuda").reason == "needs torch, torch is not available");
  CHECK(decision(sel, "torch-universal").reason == "needs torch, torch is not available");
}

TEST_CASE("format_trace prints the Python kernels trace lines", "[variant]") {
  auto sel = select_variant({"torch-cuda", "torch-universal", "torch-rocm"}, cuda_system({12, 8}));
  CHECK(format_trace(sel) ==
        "torch-cuda compatible, preferred \u2705\n"
        "torch-universal compatible \u2705\n"
        "torch-rocm: backend rocm does not match the system backend cuda\n");
}
