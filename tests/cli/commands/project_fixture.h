// A locked project whose one repo (org/attn: two cubin variants and one torch variant) is
// published in a file:// mirror: the starting point of most command tests.
#pragma once

#include <stdexcept>

#include "harness.h"
#include "kernels/lockfile/cache.h"

namespace kernels::test {

struct LockedProject {
  TempDir dir{"kernels-project"};
  fs::path mirror = dir / "mirror";
  fs::path cache = dir / "cache";
  fs::path project = dir / "project";
  MirrorRepo repo{mirror, "org/attn"};
  std::string commit;
  std::string endpoint = file_endpoint(mirror);

  explicit LockedProject(int files_per_variant = 4, std::size_t bytes_each = 3000) {
    std::vector<MirrorFile> files = make_variant_files("cubin-cu130-sm90a", files_per_variant,
                                                       bytes_each, 11);
    auto more = make_variant_files("cubin-cu130-sm80", files_per_variant, bytes_each, 12);
    files.insert(files.end(), more.begin(), more.end());
    more = make_variant_files("torch210-cxx11-cu128-x86_64-linux", files_per_variant,
                              bytes_each / 3, 13);
    files.insert(files.end(), more.begin(), more.end());
    files.push_back({"README.md", "# attn\n", false});
    commit = repo.publish(1, files);
    write_file(project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 1\n");
    ProcessResult r = run_kernels({"lock", project.string()}, cache, endpoint);
    if (r.exit_code != 0) throw std::runtime_error("lock failed: " + r.err);
  }
  ProcessResult run(std::vector<std::string> args,
                    std::map<std::string, std::optional<std::string>> env = {}) const {
    return run_kernels(args, cache, endpoint, env);
  }
  ProcessResult download(std::vector<std::string> args = {"--all-variants"},
                         std::map<std::string, std::optional<std::string>> env = {}) const {
    std::vector<std::string> argv = {"download"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(project.string());
    return run(argv, env);
  }
  CacheLayout layout() const { return CacheLayout(cache); }
  // A file of the given variant (the first LFS one when lfs is true).
  TreeEntry entry_of(const std::string& variant, bool lfs) const {
    for (const auto& e : repo.tree(commit)) {
      if (e.is_file && e.path.rfind("build/" + variant + "/", 0) == 0 && e.lfs.has_value() == lfs)
        return e;
    }
    throw std::runtime_error("no such entry");
  }
};

}  // namespace kernels::test
