// Shared by the golden tests of the real `kernels` binary: temp dirs, a process runner (stdout,
// stderr, exit code, bounded time), and a builder for static Hub mirrors (the layout of
// cli/hub/hub_client.h) that file:// endpoints and nginx serve.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernels/lockfile/repo_tree.h"
#include "support/local_port.h"

namespace kernels::test {

namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "kernels-cli");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
  double seconds = 0;
  bool timed_out = false;
};

struct ProcessSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::optional<std::string>> env;  // nullopt removes the variable
  fs::path cwd;
  std::chrono::seconds timeout{120};
  std::vector<std::string> prefix;  // e.g. {"setpriv", "--reuid=65534", ...}
};

ProcessResult run_process(const ProcessSpec& spec);

// The `kernels` binary under test, and its environment for one test: cache, endpoint, no
// inherited Hub settings.
std::string kernels_binary();
// `prefix` runs the binary under another command (e.g. {"prlimit", "--nofile=200"}).
ProcessResult run_kernels(const std::vector<std::string>& args, const fs::path& cache,
                          const std::string& endpoint,
                          std::map<std::string, std::optional<std::string>> extra_env = {},
                          std::vector<std::string> prefix = {});

std::string read_file(const fs::path& path);
void write_file(const fs::path& path, const std::string& bytes);

// A repo published into a static mirror directory.
struct MirrorFile {
  std::string path;
  std::string content;
  bool lfs = false;
};

class MirrorRepo {
 public:
  MirrorRepo(fs::path mirror_root, std::string repo_id);
  // Publishes `files` as one commit on branch v<version> (and main); returns the commit.
  std::string publish(int version, const std::vector<MirrorFile>& files);
  // Publishes a given tree listing (JSON text) and files for a fixed commit.
  void publish_exact(int version, const std::string& commit, const std::string& tree_json,
                     const std::map<std::string, std::string>& contents);
  // Replaces the bytes served for one file of a commit (the tree listing is left as it was).
  void tamper_file(const std::string& commit, const std::string& path, const std::string& bytes);
  void set_tree(const std::string& commit, const std::string& tree_json);
  void add_status_redirect(const std::string& destination);

  const std::string& repo_id() const { return repo_id_; }
  RepoTree tree(const std::string& commit) const;

 private:
  void write_refs();
  fs::path root_;
  std::string repo_id_;
  std::map<int, std::string> versions_;
  std::optional<std::string> main_commit_;
};

std::string file_endpoint(const fs::path& mirror_root);  // "file:///abs/path"

// n files per variant with deterministic pseudo-random content.
std::vector<MirrorFile> make_variant_files(const std::string& variant, int count,
                                           std::size_t bytes_each, unsigned seed);

// The same with the variant's metadata.json (kernels 0.17's schema, backend cuda), whose digest
// covers those files: what kernels 0.17 needs to lock and what `download` checks files against.
// `kernel_depends`: the JSON list for its "kernel-depends" key (none when empty).
std::vector<MirrorFile> make_variant_files_with_metadata(const std::string& variant, int count,
                                                         unsigned seed,
                                                         const std::string& kernel_depends = "");

// A server the test starts and stops: SIGTERM on destruction (SIGKILL after 5 s), always reaped.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv,
                             const std::map<std::string, std::optional<std::string>>& env = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  // One line of its stdout (without the newline), or "" after the timeout or at end of output.
  std::string read_line(std::chrono::milliseconds timeout);
  bool running();

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
};

using test_support::RefusingPort;
using test_support::unused_port;
using test_support::wait_for_port;

fs::path fixtures_dir();  // tests/fixtures (KERNELS_FIXTURES_DIR)
fs::path source_dir();    // KERNELS_SOURCE_DIR

}  // namespace kernels::test
