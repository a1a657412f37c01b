// A Hub repo id, "org/name". Ids are joined into cache paths, so they are checked where they
// enter (lockfile, pyproject.toml, command line, environment); a RepoId is one that passed, and
// the cache layout takes it without checking it again.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kernels {

// huggingface_hub's validate_repo_id for "org/name": each part [A-Za-z0-9_.-]{1,96}, starting and
// ending with a letter, digit or '_', without "--" or "..".
bool is_repo_id(std::string_view s);

class RepoId {
 public:
  // nullopt unless is_repo_id(text).
  static std::optional<RepoId> parse(std::string_view text);

  const std::string& str() const { return id_; }
  bool operator==(const RepoId&) const = default;

 private:
  explicit RepoId(std::string_view id) : id_(id) {}
  std::string id_;
};

}  // namespace kernels
