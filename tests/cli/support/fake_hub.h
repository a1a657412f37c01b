// A fake Hugging Face Hub for tests: two cpp-httplib servers on 127.0.0.1 (free ports, started in
// threads, stopped by the destructor). The Hub port serves the kernel-repo protocol
// (/api/kernels/{repo}/refs, /revision/{rev}, /tree/{rev}[/{path}] with Link pagination,
// /kernels/{repo}/resolve/{rev}/{path} with ETag and X-Repo-Commit, HEAD included, and
// /api/organizations/{org}/overview); LFS files are redirected (302) to the second port, which
// serves blobs by sha256, as a CDN would. Faults can be injected per path, and every request is
// recorded (method, path, port, the headers that matter).
//
//   FakeHub hub;
//   hub.add_repo("org/name").branch("v1", {{"build/x/a.py", "print(1)"},
//                                          {"build/x/k.so", big_bytes, /*lfs=*/true}});
//   hub.fault(hub.resolve_path("org/name", "v1", "build/x/a.py"), Fault::http(503, 2));
//   HubOptions options; options.endpoint = hub.endpoint();
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels::testing {

struct FakeFile {
  std::string path;
  std::string content;
  bool lfs = false;  // listed with lfs{oid=sha256,...}; resolve redirects to the LFS port
};

struct Fault {
  enum class Kind {
    status,              // answer `status`, with Retry-After / X-Error-Code when given
    truncate,            // Content-Length of the whole body, send `keep_bytes`, close
    truncate_no_length,  // no Content-Length, send `keep_bytes`, close (looks like a clean end)
    short_length,        // Content-Length: `keep_bytes`; send those, wait `stall` (bounded), then
                         // the rest of the body on the kept-alive connection (a broken proxy)
    extra_byte,          // the right bytes plus one
    flip_byte,           // one byte in the middle changed
    stall,               // send `keep_bytes`, sleep `stall` (bounded), close
    trickle,             // one byte every `stall`, never idle long enough to look stalled;
                         // closes after 10 s in all
    ignore_range,        // a Range request gets 200 and the whole body
    wrong_range_start,   // a Range request gets 206 "bytes 0-..." and the whole body
    content_encoding,    // the right bytes, labelled Content-Encoding: gzip
    redirect,            // 302 to `location` (absolute, or a path on the same server)
    no_answer,           // accept the request, send nothing for `stall` (bounded), then answer
    answer,              // answer `status` with `answer_body` and `headers` ("{n}" in a header
                         // value: the request's number) instead of the real answer
  };
  Kind kind = Kind::status;
  int times = 1;  // requests it applies to; -1: every request
  int status = 503;
  std::string retry_after;
  std::string error_code;
  std::size_t keep_bytes = 0;
  std::chrono::milliseconds stall{0};
  std::string location;
  std::string answer_body;
  std::map<std::string, std::string> headers;

  static Fault answer(int status, std::string body, std::map<std::string, std::string> headers = {},
                      int times = 1);
  static Fault redirect(std::string location, int times = 1);
  static Fault http(int status, int times = 1, std::string retry_after = {});
  static Fault body(Kind kind, int times = 1, std::size_t keep_bytes = 0);
  static Fault stalled(std::size_t keep_bytes, std::chrono::milliseconds stall, int times = 1);
  static Fault trickled(std::chrono::milliseconds every, int times = 1);
};

struct RequestRecord {
  std::string method;
  std::string path;  // decoded path, no query
  std::string query;
  int port = 0;
  std::string authorization;  // the raw header value ("" when absent)
  std::string range;
  std::string if_range;
  std::string accept_encoding;
};

class FakeHub;

// A handle on one repo of a FakeHub.
class FakeRepo {
 public:
  // A new commit holding exactly `files`; branch `name` (created or moved) points at it.
  FakeRepo& branch(const std::string& name, std::vector<FakeFile> files);
  // A tag on the commit a branch (or a 40-hex commit) names.
  FakeRepo& tag(const std::string& name, const std::string& target);
  // Gated: tree listings and file downloads answer 403 GatedRepo.
  FakeRepo& gated(bool on = true);
  // The commit a branch or tag names ("" if none).
  std::string commit(const std::string& ref) const;
  const std::string& id() const { return id_; }

 private:
  friend class FakeHub;
  FakeRepo(FakeHub* hub, std::string id) : hub_(hub), id_(std::move(id)) {}
  FakeHub* hub_;
  std::string id_;
};

class FakeHub {
 public:
  struct Options {
    int port = 0;  // 0: any free port
    std::size_t tree_page_size = 1000;
    // With both set, the Hub port speaks TLS (https://127.0.0.1:<port>); the LFS port stays
    // plain http, so an LFS redirect from it is an https -> http downgrade.
    std::string tls_cert_file;
    std::string tls_key_file;
    // Where LFS files are redirected: "<lfs_base_url>/lfs/<sha256>". Empty: this hub's own LFS
    // port. A benchmark points it at a static server (nginx) holding those paths, as the real
    // Hub hands LFS bytes to a CDN.
    std::string lfs_base_url;
    // Called once per answered request: "METHOD target -> status (port N)".
    std::function<void(const std::string&)> request_log;
  };
  FakeHub();
  explicit FakeHub(Options options);
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  FakeRepo add_repo(const std::string& repo_id);
  FakeRepo repo(const std::string& repo_id);

  // Faults on an exact request path (as resolve_path/lfs_path/... give it); queued in order.
  void fault(const std::string& path, Fault fault);
  // Every Hub-port request must carry "Authorization: Bearer <token>": none -> 401 RepoNotFound,
  // another -> 401 "Invalid credentials in Authorization header".
  void require_token(std::string token);
  void set_tree_page_size(std::size_t n);
  // What /api/organizations/{org}/overview says of "trustedKernelPublisher": for every
  // organisation (default true), or for one; nullopt for one: no overview (404), as for a user
  // account or a mirror without it.
  void set_trusted_publisher(bool trusted);
  void set_trusted_publisher(const std::string& org, std::optional<bool> trusted);
  // The overview answer for `org` ("" when it would be a 404).
  std::string organization_overview(const std::string& org) const;

  std::string endpoint() const;  // http(s)://127.0.0.1:<port>
  int port() const { return port_; }
  int lfs_port() const { return lfs_port_; }

  // Request paths, for faults and counts.
  static std::string refs_path(const std::string& repo_id);
  static std::string revision_path(const std::string& repo_id, const std::string& revision);
  static std::string tree_path(const std::string& repo_id, const std::string& revision);
  static std::string resolve_path(const std::string& repo_id, const std::string& revision,
                                  const std::string& path);
  static std::string lfs_path(const std::string& sha256);

  std::size_t request_count() const;
  std::size_t request_count(const std::string& path) const;
  // Requests to `port` that carried an Authorization header.
  std::size_t authorization_headers_seen(int port) const;
  std::vector<RequestRecord> requests() const;
  // The most requests answered at once (on both ports) since the last reset_counts().
  int max_concurrent_requests() const;
  void reset_counts();

  // Writes the static mirror layout (hub_client.h) of every repo, or loads one: refs, trees and
  // files become repos, branches, tags and commits served with the full protocol.
  Result<void> write_mirror(const std::filesystem::path& dir) const;
  Result<void> load_mirror(const std::filesystem::path& dir);

  struct State;  // the repos, faults and request log; internal

 private:
  friend class FakeRepo;
  void start(Options options);
  std::unique_ptr<State> state_;
  int port_ = 0;
  int lfs_port_ = 0;
  bool tls_ = false;
};

}  // namespace kernels::testing
