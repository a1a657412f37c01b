// A small locked repo, laid out as a cache and as a static mirror, for pack/unpack tests.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/repo_tree.h"

namespace pack_test {

struct TempDir {
  std::filesystem::path path;
  TempDir();
  ~TempDir();
};

struct Fixture {
  TempDir dir;
  std::string repo = "kernels-community/attention-fa3";
  std::string sha = "0123456789abcdef0123456789abcdef01234567";
  std::map<std::string, std::string> files;  // repo path -> content
  kernels::RepoTree tree;
  kernels::Lockfile lock;
  std::filesystem::path cache;   // a filled cache
  std::filesystem::path mirror;  // a filled static mirror

  Fixture();
};

// One entry of a hand-made tar: libarchive writes whatever we ask, hostile or not.
struct RawEntry {
  std::string name;
  unsigned type = 0100000;  // AE_IFREG
  std::string data;
  std::string link;      // symlink target
  std::string hardlink;  // hardlink target
};

void write_tar(const std::filesystem::path& out, const std::vector<RawEntry>& entries,
               bool zstd = true);
std::string slurp(const std::filesystem::path& p);

}  // namespace pack_test
