#include "kernels/lockfile/variant_files.h"

namespace kernels {

bool is_bytecode_path(std::string_view path) {
  if (path.ends_with(".pyc")) return true;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "__pycache__") return true;
    start = end + 1;
  }
  return false;
}

std::vector<TreeEntry> variant_files(const RepoTree& tree, std::string_view variant) {
  const std::string prefix = "build/" + std::string(variant) + "/";
  std::vector<TreeEntry> files;
  for (const TreeEntry& e : tree) {
    if (!e.is_file || !std::string_view(e.path).starts_with(prefix)) continue;
    if (is_bytecode_path(e.path)) continue;
    files.push_back(e);
  }
  return files;
}

}  // namespace kernels
