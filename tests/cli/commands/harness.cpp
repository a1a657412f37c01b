#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "kernels/lockfile/digest.h"

namespace kernels::test {

TempDir::TempDir(const std::string& tag) {
  std::string pattern = (fs::temp_directory_path() / (tag + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buffer.data();
  fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
}

TempDir::~TempDir() {
  std::error_code ec;
  // Tests make read-only trees; give write permission back so they can be removed.
  for (auto it = fs::recursive_directory_iterator(path_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
  }
  fs::remove_all(path_, ec);
}

ProcessResult run_process(const ProcessSpec& spec) {
  ProcessResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : spec.env) {
    if (v) {
      env[k] = *v;
    } else {
      env.erase(k);
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.prefix;
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) ::_exit(126);
    ::execvpe(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buffer[65536];
  auto deadline = start + spec.timeout;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string kernels_binary() { return KERNELS_CLI_BINARY; }

ProcessResult run_kernels(const std::vector<std::string>& args, const fs::path& cache,
                          const std::string& endpoint,
                          std::map<std::string, std::optional<std::string>> extra_env,
                          std::vector<std::string> prefix) {
  ProcessSpec spec;
  spec.prefix = std::move(prefix);
  spec.argv.push_back(kernels_binary());
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"KERNELS_CACHE", cache.string()},
              {"HF_ENDPOINT", endpoint},
              {"HF_HUB_OFFLINE", std::nullopt},
              {"TRANSFORMERS_OFFLINE", std::nullopt},
              {"HF_TOKEN", std::nullopt},
              {"HF_HOME", (cache.parent_path() / "hf-home").string()},
              {"HF_HUB_CACHE", std::nullopt},
              {"NO_COLOR", std::nullopt},
              {"KERNELS_DISABLE_FLOCK", std::nullopt},
              {"KERNELS_LOCK_TIMEOUT", std::nullopt},
              {"KERNELS_RETRIES", std::nullopt},
              {"KERNELS_DRIVER_LIBRARY", "libcuda-absent-in-tests.so.1"}};
  for (auto& [k, v] : extra_env) spec.env[k] = v;
  return run_process(spec);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

namespace {

std::string git_sha1(const std::string& content) {
  GitBlobSha1 h(content.size());
  h.update(std::string_view(content));
  return h.finish_hex().value();
}

std::string sha256_hex(const std::string& content) {
  Sha256 h;
  h.update(std::string_view(content));
  return h.finish_hex();
}

}  // namespace

MirrorRepo::MirrorRepo(fs::path mirror_root, std::string repo_id)
    : root_(std::move(mirror_root)), repo_id_(std::move(repo_id)) {}

void MirrorRepo::write_refs() {
  nlohmann::json branches = nlohmann::json::array();
  fs::path api = root_ / "api/kernels" / repo_id_;
  auto add = [&](const std::string& name, const std::string& commit) {
    branches.push_back({{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", commit}});
    write_file(api / "revision" / name, nlohmann::json({{"id", repo_id_}, {"sha", commit}}).dump());
  };
  if (main_commit_) add("main", *main_commit_);
  for (const auto& [n, commit] : versions_) add("v" + std::to_string(n), commit);
  nlohmann::json refs = {{"branches", branches},
                         {"converts", nlohmann::json::array()},
                         {"tags", nlohmann::json::array()}};
  write_file(api / "refs", refs.dump());
  // The organisation's overview, trusted (as kernels-community is on the Hub), unless the test
  // wrote another: `kernels lock` checks it (cli/trusted_publisher.h).
  const std::string org = repo_id_.substr(0, repo_id_.find('/'));
  const fs::path overview = root_ / "api/organizations" / org / "overview";
  if (!fs::exists(overview)) {
    write_file(overview, nlohmann::json({{"name", org}, {"trustedKernelPublisher", true}}).dump());
  }
}

std::string MirrorRepo::publish(int version, const std::vector<MirrorFile>& files) {
  RepoTree tree;
  std::map<std::string, std::string> contents;
  std::set<std::string> dirs;
  for (const MirrorFile& f : files) {
    for (auto slash = f.path.find('/'); slash != std::string::npos;
         slash = f.path.find('/', slash + 1)) {
      dirs.insert(f.path.substr(0, slash));
    }
  }
  for (const std::string& d : dirs) {
    TreeEntry e;
    e.path = d;
    e.is_file = false;
    e.oid = git_sha1(d);  // directories carry a tree oid; any 40 hex does for our readers
    tree.push_back(e);
  }
  for (const MirrorFile& f : files) {
    TreeEntry e;
    e.path = f.path;
    e.size = f.content.size();
    if (f.lfs) {
      std::string sha = sha256_hex(f.content);
      std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha +
                            "\nsize " + std::to_string(f.content.size()) + "\n";
      e.oid = git_sha1(pointer);
      e.lfs = LfsInfo{sha, f.content.size(), pointer.size()};
    } else {
      e.oid = git_sha1(f.content);
    }
    tree.push_back(e);
    contents[f.path] = f.content;
  }
  std::sort(tree.begin(), tree.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  std::string listing = serialize_tree_listing(tree);
  std::string commit = git_sha1(repo_id_ + listing);
  publish_exact(version, commit, listing, contents);
  return commit;
}

void MirrorRepo::publish_exact(int version, const std::string& commit, const std::string& tree_json,
                               const std::map<std::string, std::string>& contents) {
  set_tree(commit, tree_json);
  for (const auto& [path, content] : contents) {
    write_file(root_ / "kernels" / repo_id_ / "resolve" / commit / path, content);
  }
  write_file(root_ / "api/kernels" / repo_id_ / "revision" / commit,
             nlohmann::json({{"id", repo_id_}, {"sha", commit}}).dump());
  versions_[version] = commit;
  main_commit_ = commit;
  write_refs();
}

void MirrorRepo::tamper_file(const std::string& commit, const std::string& path,
                             const std::string& bytes) {
  write_file(root_ / "kernels" / repo_id_ / "resolve" / commit / path, bytes);
}

void MirrorRepo::set_tree(const std::string& commit, const std::string& tree_json) {
  write_file(root_ / "api/kernels" / repo_id_ / "tree" / commit, tree_json);
}

void MirrorRepo::add_status_redirect(const std::string& destination) {
  // Under the branch name and under the commit main points at: a client may ask for either.
  std::string toml = "kind = \"redirect\"\ndestination = \"" + destination + "\"\n";
  write_file(root_ / "kernels" / repo_id_ / "resolve/main/kernel-status.toml", toml);
  if (main_commit_) {
    write_file(root_ / "kernels" / repo_id_ / "resolve" / *main_commit_ / "kernel-status.toml",
               toml);
  }
}

RepoTree MirrorRepo::tree(const std::string& commit) const {
  std::string json = read_file(root_ / "api/kernels" / repo_id_ / "tree" / commit);
  return parse_tree_listing(json, "mirror tree").value();
}

std::string file_endpoint(const fs::path& mirror_root) {
  return "file://" + fs::absolute(mirror_root).string();
}

std::vector<MirrorFile> make_variant_files(const std::string& variant, int count,
                                           std::size_t bytes_each, unsigned seed) {
  std::vector<MirrorFile> files;
  std::mt19937 rng(seed);
  for (int i = 0; i < count; ++i) {
    MirrorFile f;
    bool binary = i % 3 == 0;
    f.path = "build/" + variant + "/" +
             (binary ? "kernel_" + std::to_string(i) + ".cubin"
                     : "module_" + std::to_string(i) + ".py");
    f.lfs = binary;
    f.content.resize(bytes_each);
    for (char& c : f.content) c = static_cast<char>('a' + rng() % 26);
    files.push_back(std::move(f));
  }
  return files;
}

std::vector<MirrorFile> make_variant_files_with_metadata(const std::string& variant, int count,
                                                         unsigned seed,
                                                         const std::string& kernel_depends) {
  std::vector<MirrorFile> files = make_variant_files(variant, count, 500, seed);
  std::string digest;
  const std::string prefix = "build/" + variant + "/";
  for (const MirrorFile& f : files) {
    digest += std::string(digest.empty() ? "" : ", ") + "\"" + f.path.substr(prefix.size()) +
              "\": \"" + kernels::base64_digest(f.content, kernels::DigestAlgorithm::sha256) + "\"";
  }
  files.push_back({prefix + "metadata.json",
                   R"({"name": "attn", "id": "_attn_0000001", "version": 1, "license": "MIT", )"
                   R"("python-depends": [], "backend": {"type": "cuda"}, )" +
                       (kernel_depends.empty() ? std::string()
                                               : "\"kernel-depends\": " + kernel_depends + ", ") +
                       R"("digest": {"algorithm": "sha256", "files": {)" + digest + "}}}\n",
                   false});
  return files;
}

BackgroundProcess::BackgroundProcess(
    const std::vector<std::string>& argv_in,
    const std::map<std::string, std::optional<std::string>>& env_in) {
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env_in) {
    if (v) {
      env[k] = *v;
    } else {
      env.erase(k);
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out_pipe[1], 1);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvpe(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  out_fd_ = out_pipe[0];
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      ::usleep(10000);
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool BackgroundProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string BackgroundProcess::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return "";
    pollfd fd{out_fd_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(out_fd_, buffer, sizeof buffer);
    if (n <= 0) return "";
    buffered_.append(buffer, static_cast<std::size_t>(n));
  }
}

fs::path fixtures_dir() { return KERNELS_FIXTURES_DIR; }
fs::path source_dir() { return KERNELS_SOURCE_DIR; }

}  // namespace kernels::test
