// The trusted-publisher check of kernels 0.17.2 (hf_hub.py::_check_trust_remote_code), with the
// override 0.17 lacks. A kernel repo "org/name" is trusted when the Hub's answer to
// GET {HF_ENDPOINT}/api/organizations/{org}/overview has a truthy (Python's rule)
// "trustedKernelPublisher"; any failure to get or read that answer means its trust status could
// not be verified, which refuses it too. An organisation ("org") or repo id ("org/name") named by
// --allow-untrusted or by [tool.kernels] allow-untrusted in pyproject.toml is allowed anyway,
// with a warning naming the publisher, the answer and the setting that allowed it. Offline the
// check is skipped with kernels 0.17's warning (nothing is fetched then; what the cache holds was
// checked when it was fetched). `kernels lock` checks every dependency it locks (transitive ones
// included); `kernels download` checks the repos of a format 1 lock (kernels 0.16's, which never
// checked) whose trees it has to fetch. Static mirrors carry the answer (`kernels mirror` writes
// api/organizations/{org}/overview).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "command_context.h"

namespace kernels::cli {

// Python's truth value of the answer's "trustedKernelPublisher" (false when absent): true; a
// non-zero number; a non-empty string, array or object. An answer that is not a JSON object is an
// error (huggingface_hub fails on it too).
Result<bool> parse_trusted_kernel_publisher(std::string_view body, std::string_view source);

class TrustedPublishers {
 public:
  struct Allowed {
    std::string entry;   // "org" or "org/name"
    std::string source;  // "--allow-untrusted", "pyproject.toml [tool.kernels] allow-untrusted"
  };
  explicit TrustedPublishers(std::vector<Allowed> allowed = {}) : allowed_(std::move(allowed)) {}

  // ok, or ErrorCode::untrusted (ErrorCode::network when the answer could not be fetched for a
  // network failure that persisted after retries), naming the repo and how to allow it.
  // One request per organisation and run.
  Result<void> check(CommandContext& ctx, const std::string& repo_id);

 private:
  std::optional<Allowed> allowed_for(const std::string& repo_id) const;
  std::vector<Allowed> allowed_;
  std::map<std::string, Result<bool>> answers_;  // org -> trusted, or why it is unknown
};

// --allow-untrusted ORG (repeatable) on `command`, values into `out`; checked like pyproject's.
void add_allow_untrusted_option(CLI::App& command, std::vector<std::string>& out);

// The --allow-untrusted values, then <project_dir>/pyproject.toml's [tool.kernels] allow-untrusted
// (when the file exists; a malformed one is an error).
Result<std::vector<TrustedPublishers::Allowed>> allowed_untrusted(
    const std::vector<std::string>& command_line, const std::string& project_dir);

}  // namespace kernels::cli
