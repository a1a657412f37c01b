// HubClient over a file:///dir mirror (the layout in hub_client.h): the same answers, size and
// digest checks and error mapping as over http, read straight from the directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "body_sink.h"
#include "hub_backends.h"
#include "hub_protocol.h"
#include "interrupt.h"
#include "kernels/lockfile/fd_io.h"
#include "transfer_threads.h"

namespace kernels::cli::hub {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kMaxApiAnswer = 64u << 20;

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Headers error_code(const char* code) { return Headers{{"x-error-code", code}}; }

class MirrorHubClient final : public HubClient {
 public:
  MirrorHubClient(HubOptions options, fs::path root)
      : options_(std::move(options)), root_(std::move(root)) {}

  Result<RepoRefs> list_refs(const std::string& repo_id) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (options_.offline) return offline_error(repo_id);
    auto file = repo_dir(repo_id) / "refs";
    auto text = read_small(file);
    if (!text) return std::move(text).error();
    if (!*text) return http_error(404, error_code("RepoNotFound"), file.string());
    return parse_refs(**text, file.string());
  }

  Result<std::string> organization_overview(const std::string& org) override {
    if (auto r = check_repo_id(org + "/x"); !r) return std::move(r).error();
    if (options_.offline) return offline_error("organization " + org);
    auto file = root_ / organization_overview_path(org);
    auto text = read_small(file);
    if (!text) return std::move(text).error();
    if (!*text) return http_error(404, {}, file.string());
    return std::move(**text);
  }

  Result<std::string> resolve_revision(const std::string& repo_id,
                                       const std::string& revision) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (auto r = check_revision_file(revision); !r) return std::move(r).error();
    if (options_.offline) return offline_error(repo_id + "@" + revision);
    auto file = repo_dir(repo_id) / "revision" / revision;
    auto text = read_small(file);
    if (!text) return std::move(text).error();
    if (*text) return parse_revision_sha(**text, file.string());
    // A mirror that holds the tree of a commit knows that commit without a revision file.
    std::error_code ec;
    if (is_lower_hex(revision, 40) &&
        fs::is_regular_file(repo_dir(repo_id) / "tree" / revision, ec)) {
      return revision;
    }
    return missing(repo_id, file, "RevisionNotFound");
  }

  Result<RepoTree> list_tree(const std::string& repo_id, const std::string& revision,
                             const std::string& path, bool recursive) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (auto r = check_revision_file(revision); !r) return std::move(r).error();
    if (!path.empty() && !is_safe_repo_path(path)) {
      return make_error(ErrorCode::usage, "unsafe repo path", path);
    }
    if (options_.offline) return offline_error(repo_id + "@" + revision);
    auto commit = resolve_revision(repo_id, revision);
    if (!commit) return std::move(commit).error();
    auto file = repo_dir(repo_id) / "tree" / *commit;
    auto text = read_small(file);
    if (!text) return std::move(text).error();
    if (!*text) return missing(repo_id, file, "RevisionNotFound");
    auto tree = parse_tree_listing(**text, file.string());
    if (!tree || (path.empty() && recursive)) return tree;
    // The mirror stores the whole recursive listing; narrow it like the Hub would.
    RepoTree out;
    std::string prefix = path.empty() ? std::string() : path + "/";
    for (auto& entry : *tree) {
      if (entry.path.rfind(prefix, 0) != 0 || entry.path.size() == prefix.size()) continue;
      auto rest = std::string_view(entry.path).substr(prefix.size());
      if (!recursive && rest.find('/') != std::string_view::npos) continue;
      out.push_back(std::move(entry));
    }
    if (out.empty() && !path.empty()) {
      return http_error(404, error_code("EntryNotFound"), (file / path).string());
    }
    return out;
  }

  Result<std::optional<std::string>> fetch_text(const std::string& repo_id,
                                                const std::string& revision,
                                                const std::string& path,
                                                std::size_t max_bytes) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (auto r = check_revision_file(revision); !r) return std::move(r).error();
    if (!is_safe_repo_path(path)) return make_error(ErrorCode::usage, "unsafe repo path", path);
    if (options_.offline) return offline_error(repo_id + "@" + revision + ": " + path);
    // The mirror stores files by commit; a branch or tag name is looked up first.
    auto commit = is_lower_hex(revision, 40) ? Result<std::string>(revision)
                                             : resolve_revision(repo_id, revision);
    if (!commit) return std::move(commit).error();
    auto file = resolve_file(repo_id, *commit, path);
    auto text = read_small(file, max_bytes);
    if (!text) return std::move(text).error();
    if (!*text) {
      std::error_code ec;
      if (!fs::is_directory(repo_dir(repo_id), ec)) {
        return http_error(404, error_code("RepoNotFound"), file.string());
      }
    }
    return std::move(*text);
  }

  std::vector<Result<void>> download(std::span<const DownloadRequest> requests,
                                     ProgressSink* progress) override {
    std::vector<Result<void>> results(requests.size());
    std::uint64_t total = 0;
    for (const auto& r : requests) total += r.size;
    if (progress) progress->on_start(total, requests.size());
    const std::size_t threads = transfer_threads(options_.jobs, requests.size());

    std::uint64_t done_bytes = 0;
    if (threads <= 1) {
      for (std::size_t i = 0; i < requests.size(); ++i) {
        results[i] = copy_one(requests[i]);
        done_bytes += requests[i].size;
        if (progress) {
          progress->on_bytes(done_bytes);
          progress->on_file_done(requests[i], results[i]);
        }
      }
      return results;
    }

    // Workers take the next file; the progress callbacks stay on this thread.
    std::atomic<std::size_t> next{0};
    run_on_threads(
        threads,
        [&](std::size_t, const std::function<void(std::size_t)>& report) {
          for (std::size_t i = next++; i < requests.size(); i = next++) {
            results[i] = copy_one(requests[i]);
            report(i);
          }
        },
        [&](std::size_t i) {
          done_bytes += requests[i].size;
          if (progress) {
            progress->on_bytes(done_bytes);
            progress->on_file_done(requests[i], results[i]);
          }
        },
        {});
    return results;
  }

  TransferStats stats() const override {
    TransferStats s;
    s.requests = requests_.load();
    s.hub_requests = requests_.load();
    s.bytes = bytes_.load();
    return s;
  }

 private:
  fs::path repo_dir(const std::string& repo_id) const {
    return root_ / "api" / "kernels" / repo_id;
  }

  fs::path resolve_file(const std::string& repo_id, const std::string& revision,
                        const std::string& path) const {
    return root_ / "kernels" / repo_id / "resolve" / revision / path;
  }

  static Result<void> check_revision_file(const std::string& revision) {
    if (auto r = check_revision(revision); !r) return r;
    if (!is_safe_repo_path(revision)) {
      return make_error(ErrorCode::usage, "revision is not usable as a mirror path", revision,
                        "name a branch, tag or commit without '..' or empty components");
    }
    return ok();
  }

  Error missing(const std::string& repo_id, const fs::path& file, const char* code) const {
    std::error_code ec;
    if (!fs::is_directory(repo_dir(repo_id), ec)) {
      return http_error(404, error_code("RepoNotFound"), file.string());
    }
    return http_error(404, error_code(code), file.string());
  }

  // nullopt when the file does not exist (the mirror's 404).
  Result<std::optional<std::string>> read_small(const fs::path& file,
                                                std::size_t max_bytes = kMaxApiAnswer) {
    ++requests_;
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
      return make_error(ErrorCode::io,
                        std::string("cannot read mirror file: ") + std::strerror(errno),
                        file.string(), "check the mirror directory's permissions");
    }
    std::string out;
    const int err = read_to_end(fd, out, max_bytes);
    ::close(fd);
    if (err == EFBIG) {
      return make_error(ErrorCode::integrity_mismatch,
                        "mirror file larger than " + std::to_string(max_bytes) + " bytes",
                        file.string(), "the mirror holds something else than the Hub serves");
    }
    if (err != 0) {
      return make_error(ErrorCode::io,
                        std::string("cannot read mirror file: ") + std::strerror(err),
                        file.string());
    }
    bytes_ += out.size();
    return std::optional<std::string>(std::move(out));
  }

  Result<void> copy_one(const DownloadRequest& request) {
    auto object = download_object(request);
    if (options_.offline) return offline_error(object);
    if (auto r = check_download_request(request); !r) return r;
    if (auto r = check_revision_file(request.revision); !r) return r;
    FileSink sink(request, object);
    auto complete = sink.already_complete();
    if (complete && *complete) return ok();
    auto commit = is_lower_hex(request.revision, 40)
                      ? Result<std::string>(request.revision)
                      : resolve_revision(request.repo_id, request.revision);
    if (!commit) return std::move(commit).error();
    auto file = resolve_file(request.repo_id, *commit, request.path);
    ++requests_;
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        return missing(request.repo_id, file, "EntryNotFound");
      return make_error(ErrorCode::io,
                        std::string("cannot read mirror file: ") + std::strerror(errno),
                        file.string());
    }
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    auto offset = sink.begin_attempt();
    if (!offset) return std::move(offset).error();
    // A local copy is cheap: always the whole file, never a spliced resume.
    if (auto r = sink.on_response(200, {}); !r) return r;
    std::vector<std::uint8_t> buffer(1 << 20);
    for (;;) {
      if (interrupted()) {
        sink.discard();
        return make_error(ErrorCode::network, "interrupted", file.string());
      }
      auto n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return make_error(ErrorCode::io,
                          std::string("cannot read mirror file: ") + std::strerror(errno),
                          file.string());
      }
      if (n == 0) break;
      bytes_ += static_cast<std::uint64_t>(n);
      if (auto r = sink.write({buffer.data(), static_cast<std::size_t>(n)}); !r) return r;
    }
    auto finished = sink.finish();
    if (!finished && finished.error().code == ErrorCode::network) {
      sink.discard();
      return make_error(ErrorCode::integrity_mismatch,
                        "mirror file is shorter than the " + std::to_string(request.size) +
                            " bytes the tree lists",
                        file.string(), "the mirror is incomplete or out of date; re-create it");
    }
    return finished;
  }

  HubOptions options_;
  fs::path root_;
  // Every read of the mirror counts as one Hub request. Atomic: copies run on several threads.
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace

Result<std::unique_ptr<HubClient>> make_mirror_hub_client(HubOptions options) {
  std::string_view rest = options.endpoint;
  rest.remove_prefix(std::string_view("file://").size());
  if (rest.rfind("localhost/", 0) == 0) rest.remove_prefix(std::string_view("localhost").size());
  if (rest.empty() || rest.front() != '/') {
    return make_error(ErrorCode::usage, "a file:// endpoint needs an absolute path",
                      options.endpoint, "use file:///absolute/dir");
  }
  fs::path root = percent_decode(rest);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return make_error(ErrorCode::usage, "mirror directory does not exist", root.string(),
                      "check HF_ENDPOINT (file:///dir must name an existing directory)");
  }
  return std::unique_ptr<HubClient>(new MirrorHubClient(std::move(options), std::move(root)));
}

}  // namespace kernels::cli::hub
