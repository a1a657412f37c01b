// Names inside packs and inside static mirrors (the layout cli/hub reads through file:// and
// any static web server serves).
#pragma once

#include <string>
#include <string_view>

namespace kernels::cli {

inline constexpr std::string_view kPackManifestName = "kernels-pack.json";
inline constexpr int kPackFormatVersion = 1;

class MirrorPaths {
 public:
  explicit MirrorPaths(std::string repo_id)
      : api_("api/kernels/" + repo_id), files_("kernels/" + repo_id) {}

  std::string refs() const { return api_ + "/refs"; }
  std::string revision_dir() const { return api_ + "/revision"; }
  std::string revision(std::string_view rev) const {
    return api_ + "/revision/" + std::string(rev);
  }
  std::string tree(std::string_view commit) const { return api_ + "/tree/" + std::string(commit); }
  std::string resolve(std::string_view commit, std::string_view path) const {
    return files_ + "/resolve/" + std::string(commit) + "/" + std::string(path);
  }

 private:
  std::string api_;
  std::string files_;
};

}  // namespace kernels::cli
