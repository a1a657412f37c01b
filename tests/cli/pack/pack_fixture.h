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
  // A fixture over these repo files instead of the default two-variant set.
  explicit Fixture(std::map<std::string, std::string> repo_files);
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

namespace pack_test {

// Raw ustar bytes, for entries libarchive's writer will not produce: a PAX header that renames
// the next entry, a GNU sparse entry, a header with a base-256 size.
std::string raw_header(const std::string& name, char typeflag, std::uint64_t size,
                       bool base256_size = false);
std::string raw_entry(const std::string& name, char typeflag, const std::string& data);
std::string pax_entry(const std::map<std::string, std::string>& records);
std::string raw_end();  // two zero blocks

}  // namespace pack_test
