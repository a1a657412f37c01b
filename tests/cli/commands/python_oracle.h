// The Python `kernels` oracles (scripts/setup-python-oracle.sh, installed by scripts/test.sh):
// 0.16.0 in <build>/python-oracle, 0.17.2 in <build>/python-oracle-017; how a test finds one and
// runs its CLI against a Hub. Tests skip, saying why, where a venv is missing.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"

namespace kernels::test {

inline std::string venv_python(const char* variable, const char* fallback) {
  const char* env = std::getenv(variable);
  fs::path venv = env && *env ? fs::path(env) : fs::path(fallback);
  fs::path python = venv / "bin/python";
  return ::access(python.c_str(), X_OK) == 0 ? python.string() : std::string();
}

inline std::string oracle_python() {
  return venv_python("KERNELS_PYTHON_ORACLE", KERNELS_PYTHON_ORACLE);
}
inline std::string oracle_python_017() {
  return venv_python("KERNELS_PYTHON_ORACLE_017", KERNELS_PYTHON_ORACLE_017);
}

// `python -c kPythonCli ARGS...` runs `kernels ARGS...`.
inline constexpr const char* kPythonCli =
    "import sys; from kernels.cli import main; sys.argv=['kernels']+sys.argv[1:]; main()";

inline std::map<std::string, std::optional<std::string>> python_env(const std::string& endpoint,
                                                                    const fs::path& dir,
                                                                    const fs::path& cache) {
  return {{"HF_ENDPOINT", endpoint},
          {"HF_HOME", (dir / "hf-home").string()},
          {"KERNELS_CACHE", cache.string()},
          {"HF_HUB_CACHE", cache.string()},
          {"HF_HUB_OFFLINE", std::nullopt},
          {"HF_TOKEN", std::nullopt},
          {"HF_HUB_DISABLE_TELEMETRY", std::nullopt},
          {"DISABLE_TELEMETRY", std::nullopt},
          {"DO_NOT_TRACK", std::nullopt}};
}

inline ProcessResult run_python(const std::string& python, const std::vector<std::string>& args,
                                const std::map<std::string, std::optional<std::string>>& env) {
  ProcessSpec spec;
  spec.argv = {python};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = env;
  spec.timeout = std::chrono::seconds(300);
  return run_process(spec);
}

}  // namespace kernels::test
