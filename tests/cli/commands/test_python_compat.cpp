// Compatibility with the Python `kernels` package, both lines (scripts/setup-python-oracle.sh,
// installed by scripts/test.sh): 0.16.0 into <build>/python-oracle (format 1 locks) and 0.17.2
// into <build>/python-oracle-017 (format 2 locks). The same kernels.lock bytes from the same Hub,
// each tool downloads from the other's lock, and finds offline what the other downloaded.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_oracle.h"
#include "servers.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

// Two repos whose every variant has a metadata.json (kernels 0.17 needs one to lock), one of them
// with a newer version than the project asks for.
struct HubFor017 {
  std::string demo_commit, second_commit;
  explicit HubFor017(const fs::path& mirror) {
    MirrorRepo repo(mirror, "org/demo");
    std::vector<MirrorFile> files = make_variant_files_with_metadata(
        "torch210-cxx11-cu128-x86_64-linux", 5, 61);
    auto more = make_variant_files_with_metadata("torch-cuda", 2, 62);
    files.insert(files.end(), more.begin(), more.end());
    files.push_back({"README.md", "# demo\n", false});
    demo_commit = repo.publish(1, files);
    MirrorRepo other(mirror, "org/second");
    second_commit = other.publish(1, make_variant_files_with_metadata("torch-cpu", 3, 63));
    other.publish(2, make_variant_files_with_metadata("torch-cpu", 3, 64));
    // An upper-case org sorts before every lower-case one in 0.17's bytewise order.
    MirrorRepo upper(mirror, "Zeta/kern");
    upper.publish(3, make_variant_files_with_metadata("torch-cpu", 1, 65));
  }
};

// A repo of torch variants only: Python hashes build/torch* alone, so only such a repo can give
// identical locks (our lock also hashes cubin-* variants, which Python does not know).
std::string publish_torch_repo(MirrorRepo& repo) {
  std::vector<MirrorFile> files = make_variant_files("torch210-cxx11-cu128-x86_64-linux", 6, 4000,
                                                     51);
  auto more = make_variant_files("torch29-cxx11-cu126-x86_64-linux", 5, 3000, 52);
  files.insert(files.end(), more.begin(), more.end());
  more = make_variant_files("torch-cuda", 2, 100, 53);
  files.insert(files.end(), more.begin(), more.end());
  files.push_back({"build/torch-cuda/__init__.py", "from ._ops import ops\n", false});
  files.push_back({"README.md", "# demo\n", false});
  return repo.publish(1, files);
}

}  // namespace

TEST_CASE("Python kernels 0.16 lock and ours write byte-identical kernels.lock from the same Hub",
          "[python]") {
  std::string python = oracle_python();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels package is not installed (run scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE) + ")");
  }
  TempDir dir("kernels-py");
  MirrorRepo repo(dir / "mirror", "org/demo");
  MirrorRepo other(dir / "mirror", "org/second");
  publish_torch_repo(repo);
  other.publish(1, make_variant_files("torch-cpu", 3, 200, 54));
  other.publish(2, make_variant_files("torch-cpu", 3, 200, 55));  // Python warns: v2 exists
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);
  std::string toml = "[tool.kernels.dependencies]\n\"org/second\" = 1\n\"org/demo\" = 1\n";
  write_file(dir / "py/pyproject.toml", toml);
  write_file(dir / "cpp/pyproject.toml", toml);
  std::map<std::string, std::optional<std::string>> env = {{"HF_ENDPOINT", hub->endpoint()},
                                                           {"HF_HOME", (dir / "hf-home").string()},
                                                           {"KERNELS_CACHE",
                                                            (dir / "py-cache").string()},
                                                           {"HF_HUB_OFFLINE", std::nullopt},
                                                           {"HF_TOKEN", std::nullopt},
                                                           {"HF_HUB_DISABLE_TELEMETRY",
                                                            std::nullopt},
                                                           {"DISABLE_TELEMETRY", std::nullopt},
                                                           {"DO_NOT_TRACK", std::nullopt}};
  ProcessResult py = run_python(
      python,
      {"-c",
       "import sys; from kernels.cli import main; sys.argv=['kernels','lock',sys.argv[1]]; main()",
       (dir / "py").string()},
      env);
  INFO(py.out << py.err);
  REQUIRE(py.exit_code == 0);
  ProcessResult ours = run_kernels({"lock", "--format", "1", (dir / "cpp").string()}, dir / "cache",
                                   hub->endpoint());
  INFO(ours.err);
  REQUIRE(ours.exit_code == 0);
  CHECK(read_file(dir / "cpp/kernels.lock") == read_file(dir / "py/kernels.lock"));
  CHECK(py.err.find("You are using version 1 of 'org/second', but version 2 is available.") !=
        std::string::npos);
  CHECK(ours.err.find("You are using version 1 of 'org/second', but version 2 is available.") !=
        std::string::npos);
}

TEST_CASE("Python kernels finds offline what our download wrote, and its hash check passes",
          "[python]") {
  std::string python = oracle_python();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels package is not installed (run scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE) + ")");
  }
  TempDir dir("kernels-py");
  MirrorRepo repo(dir / "mirror", "org/demo");
  std::string commit = publish_torch_repo(repo);
  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/demo\" = 1\n");
  std::string endpoint = file_endpoint(dir / "mirror");
  REQUIRE(
      run_kernels({"lock", "--format", "1", (dir / "project").string()}, dir / "cache", endpoint)
          .exit_code == 0);
  ProcessResult dl = run_kernels({"download", "--all-variants", (dir / "project").string()},
                                 dir / "cache", endpoint);
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);
  // Offline, no endpoint at all: Python resolves the commit, the snapshot (trees/<commit>.json
  // completeness check of huggingface_hub) and re-hashes every variant against the lock.
  const char* script = R"PY(
import json, sys
from kernels.lockfile import KernelLock
from kernels.utils import install_kernel_all_variants
from huggingface_hub import snapshot_download
lock = [KernelLock.from_json(e) for e in json.load(open(sys.argv[1]))][0]
build = install_kernel_all_variants(lock.repo_id, revision=lock.sha, local_files_only=True,
                                    variant_locks=lock.variants)
print(sorted(p.name for p in build.iterdir()))
path = snapshot_download(lock.repo_id, repo_type="kernel", revision="v1", local_files_only=True,
                         allow_patterns="build/*", ignore_patterns=["*.pyc", "**/__pycache__/**"])
print(path)
)PY";
  ProcessResult py = run_python(python, {"-c", script, (dir / "project/kernels.lock").string()},
                                {{"HF_HUB_OFFLINE", "1"},
                                 {"KERNELS_CACHE", (dir / "cache").string()},
                                 {"HF_HUB_CACHE", (dir / "cache").string()},
                                 {"HF_HOME", (dir / "hf-home").string()},
                                 {"HF_ENDPOINT", "http://127.0.0.1:9"}});
  INFO(py.out << py.err);
  REQUIRE(py.exit_code == 0);
  CHECK(py.out.find("['torch-cuda', 'torch210-cxx11-cu128-x86_64-linux', "
                    "'torch29-cxx11-cu126-x86_64-linux']") != std::string::npos);
  CHECK(py.out.find("snapshots/" + commit) != std::string::npos);
}

TEST_CASE("what Python kernels downloaded, our download finds offline and our verify accepts",
          "[python]") {
  std::string python = oracle_python();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels package is not installed (run scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE) + ")");
  }
  TempDir dir("kernels-py");
  MirrorRepo repo(dir / "mirror", "org/demo");
  publish_torch_repo(repo);
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);
  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/demo\" = 1\n");
  std::map<std::string, std::optional<std::string>> env = {{"HF_ENDPOINT", hub->endpoint()},
                                                           {"HF_HOME", (dir / "hf-home").string()},
                                                           {"KERNELS_CACHE",
                                                            (dir / "cache").string()},
                                                           {"HF_HUB_OFFLINE", std::nullopt},
                                                           {"HF_TOKEN", std::nullopt},
                                                           {"HF_HUB_DISABLE_TELEMETRY",
                                                            std::nullopt},
                                                           {"DISABLE_TELEMETRY", std::nullopt},
                                                           {"DO_NOT_TRACK", std::nullopt}};
  const char* cli =
      "import sys; from kernels.cli import main; sys.argv=['kernels']+sys.argv[1:]; main()";
  ProcessResult lock = run_python(python, {"-c", cli, "lock", (dir / "project").string()}, env);
  INFO(lock.err);
  REQUIRE(lock.exit_code == 0);
  ProcessResult dl = run_python(
      python, {"-c", cli, "download", "--all-variants", (dir / "project").string()}, env);
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);

  ProcessResult ours = run_kernels({"--offline", "download", "--all-variants",
                                    (dir / "project").string()},
                                   dir / "cache", "http://127.0.0.1:9");
  INFO(ours.err);
  CHECK(ours.exit_code == 0);
  ProcessResult verify = run_kernels({"verify", (dir / "project").string()}, dir / "cache",
                                     "http://127.0.0.1:9", {{"HF_HUB_OFFLINE", "1"}});
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  CHECK(verify.out.find("OK      org/demo torch210-cxx11-cu128-x86_64-linux (6 files)") !=
        std::string::npos);
}

TEST_CASE("Python kernels 0.17.2 lock and ours write byte-identical format 2 kernels.lock",
          "[python][v2]") {
  std::string python = oracle_python_017();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels 0.17.2 package is not installed (KERNELS_PY_VERSION=0.17.2 "
        "scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE_017) + ")");
  }
  TempDir dir("kernels-py17");
  HubFor017 published(dir / "mirror");
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);
  std::string toml =
      "[tool.kernels.dependencies]\n\"org/second\" = 1\n\"org/demo\" = 1\n\"Zeta/kern\" = 3\n";
  write_file(dir / "py/pyproject.toml", toml);
  write_file(dir / "cpp/pyproject.toml", toml);
  ProcessResult py = run_python(python, {"-c", kPythonCli, "lock", (dir / "py").string()},
                                python_env(hub->endpoint(), dir.path(), dir / "py-cache"));
  INFO(py.out << py.err);
  REQUIRE(py.exit_code == 0);
  ProcessResult ours = run_kernels({"lock", (dir / "cpp").string()}, dir / "cache",
                                   hub->endpoint());
  INFO(ours.err);
  REQUIRE(ours.exit_code == 0);
  const std::string py_lock = read_file(dir / "py/kernels.lock");
  CHECK(py_lock.find("\"repo-id\": \"org/demo\"") != std::string::npos);  // really format 2
  CHECK(py_lock.find("Zeta/kern") < py_lock.find("org/demo"));
  CHECK(read_file(dir / "cpp/kernels.lock") == py_lock);
  CHECK(py.err.find("You are using version 1 of 'org/second', but version 2 is available.") !=
        std::string::npos);
  CHECK(ours.err.find("You are using version 1 of 'org/second', but version 2 is available.") !=
        std::string::npos);
  // Our --locked takes Python's lock as up to date, in its own format.
  ProcessResult locked = run_kernels({"lock", "--locked", (dir / "py").string()}, dir / "cache",
                                     hub->endpoint());
  INFO(locked.err);
  CHECK(locked.exit_code == 0);
  // Python 0.17.2 reads our lock (the sidecar beside it is not its business).
  const char* parse =
      "import sys; from kernels._rust import KernelLocks; "
      "print(len(KernelLocks.from_json(open(sys.argv[1]).read()).to_json()))";
  ProcessResult reads = run_python(python, {"-c", parse, (dir / "cpp/kernels.lock").string()}, {});
  INFO(reads.out << reads.err);
  CHECK(reads.exit_code == 0);
}

TEST_CASE("each tool downloads from the other's format 2 lock and finds the other's cache offline",
          "[python][v2]") {
  std::string python = oracle_python_017();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels 0.17.2 package is not installed (KERNELS_PY_VERSION=0.17.2 "
        "scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE_017) + ")");
  }
  TempDir dir("kernels-py17");
  HubFor017 published(dir / "mirror");
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);
  std::string toml = "[tool.kernels.dependencies]\n\"org/demo\" = 1\n\"org/second\" = 1\n";
  write_file(dir / "py/pyproject.toml", toml);
  write_file(dir / "cpp/pyproject.toml", toml);

  SECTION(
      "ours downloads from Python's lock (no sidecar: tree and metadata.json digests), then "
      "Python finds our cache offline") {
    ProcessResult lock = run_python(python, {"-c", kPythonCli, "lock", (dir / "py").string()},
                                    python_env(hub->endpoint(), dir.path(), dir / "py-lock-cache"));
    INFO(lock.err);
    REQUIRE(lock.exit_code == 0);
    REQUIRE_FALSE(fs::exists(dir / "py/kernels.lock.hashes"));
    ProcessResult dl = run_kernels({"download", "--all-variants", (dir / "py").string()},
                                   dir / "cache", hub->endpoint());
    INFO(dl.err);
    REQUIRE(dl.exit_code == 0);
    CHECK(dl.err.find("Downloading kernel: org/demo (revision: " + published.demo_commit + ")") !=
          std::string::npos);
    ProcessResult verify = run_kernels({"verify", (dir / "py").string()}, dir / "cache",
                                       "http://127.0.0.1:9", {{"HF_HUB_OFFLINE", "1"}});
    INFO(verify.out << verify.err);
    CHECK(verify.exit_code == 0);
    auto offline = python_env("http://127.0.0.1:9", dir.path(), dir / "cache");
    offline["HF_HUB_OFFLINE"] = "1";
    ProcessResult py_dl = run_python(
        python, {"-c", kPythonCli, "download", "--all-variants", (dir / "py").string()}, offline);
    INFO(py_dl.out << py_dl.err);
    CHECK(py_dl.exit_code == 0);
  }
  SECTION(
      "Python downloads from our lock, then ours finds Python's cache offline and verifies it") {
    ProcessResult lock = run_kernels({"lock", (dir / "cpp").string()}, dir / "lock-cache",
                                     hub->endpoint());
    INFO(lock.err);
    REQUIRE(lock.exit_code == 0);
    REQUIRE(fs::exists(dir / "cpp/kernels.lock.hashes"));
    ProcessResult py_dl = run_python(python,
                                     {"-c", kPythonCli, "download", "--all-variants",
                                      (dir / "cpp").string()},
                                     python_env(hub->endpoint(), dir.path(), dir / "cache"));
    INFO(py_dl.out << py_dl.err);
    REQUIRE(py_dl.exit_code == 0);
    CHECK(py_dl.err.find("Downloading kernel: org/demo (revision: " + published.demo_commit +
                         ")") != std::string::npos);
    ProcessResult ours = run_kernels({"--offline", "download", "--all-variants",
                                      (dir / "cpp").string()},
                                     dir / "cache", "http://127.0.0.1:9");
    INFO(ours.err);
    CHECK(ours.exit_code == 0);
    ProcessResult verify = run_kernels({"verify", (dir / "cpp").string()}, dir / "cache",
                                       "http://127.0.0.1:9", {{"HF_HUB_OFFLINE", "1"}});
    INFO(verify.out << verify.err);
    CHECK(verify.exit_code == 0);
    CHECK(verify.out.find("OK      org/demo torch-cuda (3 files)") != std::string::npos);
  }
}

TEST_CASE("Python kernels 0.17.2 and ours lock kernel-depends transitively to the same bytes",
          "[python][v2][depends]") {
  std::string python = oracle_python_017();
  if (python.empty()) {
    KERNELS_SKIP(
        "the Python kernels 0.17.2 package is not installed (KERNELS_PY_VERSION=0.17.2 "
        "scripts/setup-python-oracle.sh " +
        std::string(KERNELS_PYTHON_ORACLE_017) + ")");
  }
  TempDir dir("kernels-py17");
  MirrorRepo relu(dir / "mirror", "org/relu");
  relu.publish(1, make_variant_files_with_metadata("torch-cuda", 1, 71));
  const std::string relu3 = relu.publish(3, make_variant_files_with_metadata("torch-cuda", 1, 72));
  MirrorRepo act(dir / "mirror", "org/act");
  act.publish(1, make_variant_files_with_metadata("torch-cpu", 1, 73,
                                                  R"([{"repo-id": "org/relu", "version": 1}])"));
  MirrorRepo top(dir / "mirror", "org/top");
  std::vector<MirrorFile> files = make_variant_files_with_metadata(
      "torch-cuda", 1, 74,
      R"([{"repo-id": "org/act", "version": 1}, {"repo-id": "org/relu", "version": 3}])");
  auto more = make_variant_files_with_metadata("torch210-cxx11-cu128-x86_64-linux", 1, 75,
                                               R"([{"repo-id": "org/relu", "revision": ")" + relu3 +
                                                   R"("}])");
  files.insert(files.end(), more.begin(), more.end());
  top.publish(1, files);
  std::string why;
  auto hub = FakeHubProcess::start(dir / "mirror", why);
  if (!hub) KERNELS_SKIP(why);
  std::string toml = "[tool.kernels.dependencies]\n\"org/top\" = 1\n\"org/act\" = 1\n";
  write_file(dir / "py/pyproject.toml", toml);
  write_file(dir / "cpp/pyproject.toml", toml);
  ProcessResult py = run_python(python, {"-c", kPythonCli, "lock", (dir / "py").string()},
                                python_env(hub->endpoint(), dir.path(), dir / "py-cache"));
  INFO(py.out << py.err);
  REQUIRE(py.exit_code == 0);
  ProcessResult ours = run_kernels({"lock", (dir / "cpp").string()}, dir / "cache",
                                   hub->endpoint());
  INFO(ours.err);
  REQUIRE(ours.exit_code == 0);
  const std::string py_lock = read_file(dir / "py/kernels.lock");
  CHECK(py_lock.find("\"revision\": \"" + relu3 + "\"") !=
        std::string::npos);  // transitive entries there
  CHECK(read_file(dir / "cpp/kernels.lock") == py_lock);
  ProcessResult locked = run_kernels({"lock", "--locked", (dir / "py").string()}, dir / "cache",
                                     hub->endpoint());
  INFO(locked.err);
  CHECK(locked.exit_code == 0);
}
