#include "kernels/lockfile/repo_id.h"

namespace kernels {
namespace {

bool is_repo_part(std::string_view p) {
  // huggingface_hub validate_repo_id: [\w\-.]{1,96} between word boundaries, no "--" or "..".
  if (p.empty() || p.size() > 96) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (char c : p) {
    if (!word(c) && c != '-' && c != '.') return false;
  }
  if (!word(p.front()) || !word(p.back())) return false;
  return p.find("--") == std::string_view::npos && p.find("..") == std::string_view::npos;
}

}  // namespace

bool is_repo_id(std::string_view s) {
  const auto slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  return is_repo_part(s.substr(0, slash)) && is_repo_part(s.substr(slash + 1));
}

std::optional<RepoId> RepoId::parse(std::string_view text) {
  if (!is_repo_id(text)) return std::nullopt;
  return RepoId(text);
}

}  // namespace kernels
