// `kernels info` and download's "newer version" suggestion against the Python kernels 0.17.2
// oracle, on the same fake Hub (issue 13): the same stdout, byte for byte, text and --json, for a
// Hub repo and a local kernel directory.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "python_oracle.h"
#include "servers.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

// Every variant carries the same metadata, so 0.17.2's choice of variant (set order) does not
// matter. The URLs need 0.17's normalisation; the license is not ASCII (json.dumps escapes it).
const std::string kMetadata =
    R"({"name": "info-demo", "id": "_info_demo_1", "version": 3, "kernels-minver": "0.14.0", )"
    R"("license": "Apache-2.0 \u2013 caf\u00e9", "upstream": "https://GitHub.com/Org/Repo/../repo.git", )"
    R"("source": "git@github.com:Org/src.git", "python-depends": ["einops", "nvidia-cutlass-dsl"], )"
    R"("backend": {"type": "cuda"}})";

std::vector<MirrorFile> variant(const std::string& name,
                                const std::optional<std::string>& metadata) {
  std::vector<MirrorFile> files = {{"build/" + name + "/_ops.py", "ops = '" + name + "'\n", false}};
  if (metadata) files.push_back({"build/" + name + "/metadata.json", *metadata + "\n", false});
  return files;
}

std::vector<MirrorFile> variants(const std::vector<std::string>& names,
                                 const std::optional<std::string>& metadata) {
  std::vector<MirrorFile> files;
  for (const std::string& n : names) {
    auto more = variant(n, metadata);
    files.insert(files.end(), more.begin(), more.end());
  }
  return files;
}

}  // namespace

TEST_CASE("info prints what Python kernels 0.17.2 prints, text and --json, Hub and local",
          "[python][v2][info]") {
  std::string python = oracle_python_017();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels 0.17.2 package is not installed (KERNELS_PY_VERSION=0.17.2 "
        "scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE_017) + ")");
  }
  TempDir dir("kernels-info17");
  MirrorRepo repo(dir / "mirror", "org/info-demo");
  repo.publish(1, variants({"torch-cuda", "torch-universal", "torch210-cxx11-cu128-x86_64-linux",
                            "torch29-cxx11-rocm63-x86_64-linux", "not-a-variant"},
                           kMetadata));
  repo.publish(2, variants({"torch-xpu"}, std::nullopt));  // no metadata: only the backends
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);

  // The local kernel: a build/ directory with variants (one without metadata, one that is no
  // variant name), given as a path with a "." and a trailing slash (pathlib drops both).
  const fs::path local = dir / "kdir";
  for (const MirrorFile& f : variants({"torch-cpu", "tvm-ffi01-cu128-x86_64-linux"}, kMetadata))
    write_file(local / f.path, f.content);
  write_file(local / "build/torch-npu/_ops.py", "ops = 1\n");
  fs::create_directories(local / "build/junk");
  const std::string local_arg = (dir.path() / "." / "kdir").string() + "/";

  const std::vector<std::vector<std::string>> cases = {
      {"info", "org/info-demo", "--version", "1"},
      {"info", "org/info-demo", "--version", "1", "--json"},
      {"info", "org/info-demo", "--revision", "v1", "--json"},
      {"info", "org/info-demo"},
      {"info", "org/info-demo", "--json"},
      {"info", local_arg},
      {"info", local_arg, "--json"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += " " + a;
    INFO("kernels" << shown);
    std::vector<std::string> py_args = {"-c", kPythonCli};
    py_args.insert(py_args.end(), args.begin(), args.end());
    ProcessResult py = run_python(python, py_args,
                                  python_env(hub->endpoint(), dir.path(), dir / "py-cache"));
    INFO("python stderr: " << py.err);
    REQUIRE(py.exit_code == 0);
    ProcessResult ours = run_kernels(args, dir / "cache", hub->endpoint());
    INFO("our stderr: " << ours.err);
    REQUIRE(ours.exit_code == 0);
    CHECK(ours.out == py.out);
    CHECK(ours.out.find("ackends") != std::string::npos);  // Backends: / "backends"
  }

  // What the comparison covers, stated once: normalised URLs and 0.17.2's key order.
  ProcessResult json = run_kernels({"--json", "info", "org/info-demo", "--version", "1"},
                                   dir / "cache", hub->endpoint());
  REQUIRE(json.exit_code == 0);
  auto doc = nlohmann::ordered_json::parse(json.out);
  std::vector<std::string> keys;
  for (const auto& item : doc.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"repo_id", "revision", "name", "version", "kernels_minver",
                                         "license", "upstream", "source", "python_depends",
                                         "backends"});
  CHECK(doc["upstream"] == "https://github.com/Org/repo.git");
  CHECK(doc["source"] == "ssh://git@github.com/Org/src.git");
  CHECK(doc["backends"] == nlohmann::json::array({"cuda", "rocm", "universal"}));
  CHECK(json.out.find("\\u2013 caf\\u00e9") != std::string::npos);

  // Errors: in 0.17.2's words, with our exit codes (2: usage; 12: no variant).
  ProcessResult both = run_kernels({"info", local_arg, "--version", "1"}, dir / "cache",
                                   hub->endpoint());
  CHECK(both.exit_code == 2);
  CHECK(both.err.find("--revision and --version cannot be used with a local path") !=
        std::string::npos);
  ProcessResult two = run_kernels({"info", "org/info-demo", "--version", "1", "--revision", "v1"},
                                  dir / "cache", hub->endpoint());
  CHECK(two.exit_code == 2);
  CHECK(two.err.find("Only one of --revision or --version can be specified") != std::string::npos);
  fs::create_directories(dir / "empty/build/junk");
  ProcessResult none = run_kernels({"info", (dir / "empty").string()}, dir / "cache",
                                   hub->endpoint());
  CHECK(none.exit_code == 12);
  CHECK(none.err.find("No build variants found in: " + (dir / "empty/build").string()) !=
        std::string::npos);
  // A local metadata.json that 0.17.2 cannot parse is an error there (a traceback) and here.
  write_file(dir / "badurl/build/torch-cpu/metadata.json",
             R"({"name": "x-y", "id": "_x", "version": 1, "license": "MIT", "python-depends": [], )"
             R"("backend": {"type": "cpu"}, "upstream": "ftp://example.com/x"})");
  ProcessResult bad = run_kernels({"info", (dir / "badurl").string()}, dir / "cache",
                                  hub->endpoint());
  CHECK(bad.exit_code == 5);
  CHECK(bad.err.find("\"upstream\": unsupported scheme `ftp`") != std::string::npos);
}

TEST_CASE("download suggests a newer version with a compatible build in 0.17.2's words",
          "[python][v2][download]") {
  std::string python = oracle_python_017();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels 0.17.2 package is not installed (KERNELS_PY_VERSION=0.17.2 "
        "scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE_017) + ")");
  }
  TempDir dir("kernels-suggest17");
  // v1 has only an XPU build (no machine here is XPU, for either tool); v2 adds torch-universal,
  // which fits every machine (ours describes it with --torch/--cuda: it runs without torch).
  MirrorRepo repo(dir / "mirror", "org/sugg");
  const std::string v1 = repo.publish(1, make_variant_files_with_metadata("torch-xpu", 2, 71));
  std::vector<MirrorFile> files = make_variant_files_with_metadata("torch-xpu", 2, 72);
  auto more = make_variant_files_with_metadata("torch-universal", 2, 73);
  files.insert(files.end(), more.begin(), more.end());
  repo.publish(2, files);
  // A repo whose newest version fits no better: no suggestion.
  MirrorRepo nofit(dir / "mirror", "org/nofit");
  nofit.publish(1, make_variant_files_with_metadata("torch-xpu", 2, 74));
  nofit.publish(2, make_variant_files_with_metadata("torch-xpu", 2, 75));
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);
  write_file(dir / "p/pyproject.toml", "[tool.kernels.dependencies]\n\"org/sugg\" = 1\n");
  ProcessResult lock = run_kernels({"lock", (dir / "p").string()}, dir / "cache", hub->endpoint());
  INFO(lock.err);
  REQUIRE(lock.exit_code == 0);

  const std::string first = "Cannot find a build variant for this system in org/sugg (revision: " +
                            v1 + ")";
  const std::string suggestion =
      "\n\nHowever, version v2 of 'org/sugg' has a build compatible with your system "
      "(torch-universal). "
      "Consider upgrading to that version by specifying the `version` argument.";
  ProcessResult py = run_python(python, {"-c", kPythonCli, "download", (dir / "p").string()},
                                python_env(hub->endpoint(), dir.path(), dir / "py-cache"));
  INFO("python: " << py.err);
  CHECK(py.exit_code == 1);
  CHECK(py.err.find(first) != std::string::npos);
  CHECK(py.err.find(suggestion) != std::string::npos);
  // Ours runs without torch: the machine is described as a torch 2.10 / CUDA 12.8 one.
  auto download = [&](std::vector<std::string> args) {
    for (const char* a : {"--torch", "2.10", "--cuda", "12.8"}) args.push_back(a);
    args.push_back((dir / "p").string());
    return args;
  };
  ProcessResult ours = run_kernels(download({"download"}), dir / "cache", hub->endpoint());
  INFO("ours: " << ours.err);
  CHECK(ours.exit_code == 12);
  CHECK(ours.err.find(first) != std::string::npos);
  CHECK(ours.err.find(suggestion) != std::string::npos);

  // Offline there is no suggestion (it needs the Hub's refs).
  ProcessResult offline = run_kernels(download({"--offline", "download"}), dir / "cache",
                                      "http://127.0.0.1:9");
  CHECK(offline.exit_code == 12);
  CHECK(offline.err.find(first) != std::string::npos);
  CHECK(offline.err.find("However, version") == std::string::npos);
  write_file(dir / "p/pyproject.toml", "[tool.kernels.dependencies]\n\"org/nofit\" = 1\n");
  std::filesystem::remove(dir / "p/kernels.lock");
  REQUIRE(run_kernels({"lock", (dir / "p").string()}, dir / "cache", hub->endpoint()).exit_code ==
          0);
  ProcessResult no_fit = run_kernels(download({"download"}), dir / "cache", hub->endpoint());
  CHECK(no_fit.exit_code == 12);
  CHECK(no_fit.err.find("Cannot find a build variant for this system in org/nofit") !=
        std::string::npos);
  CHECK(no_fit.err.find("However, version") == std::string::npos);
}
