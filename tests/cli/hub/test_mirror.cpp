// Mirrors: file:// endpoints, the fake Hub serving a mirror directory (in process and as the
// fake_hub_server program), and nginx serving the same directory as a static site.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <thread>

#include "hub_test_support.h"
#include "support/local_port.h"
#include "support/nginx_server.h"
#include "support/skip.h"

using namespace kernels;
using namespace kernels::hub_test;

namespace {

constexpr const char* kRepo = "kernels-community/mirrored";

struct MirrorFixture {
  FakeHub hub;
  TempDir dir;
  std::string so = random_bytes(120000, 11);
  std::string commit;
  MirrorFixture() {
    hub.add_repo(kRepo)
        .branch("main", {{"README.md", "# mirrored\n"}})
        .branch("v1", {{"build/torch-cuda/__init__.py", "from ._ops import ops\n"},
                       {"build/torch-cuda/_ops.py", "ops = 1\n"},
                       {"build/torch-cuda/_k.abi3.so", so, true}})
        .tag("first", "v1");
    commit = hub.repo(kRepo).commit("v1");
    auto written = hub.write_mirror(dir / "mirror");
    if (!written) throw std::runtime_error(written.error().message());
  }
  std::string file_endpoint() const { return "file://" + (dir / "mirror").string(); }
};

// Runs every read the CLI needs against `client` and checks the answers.
void check_mirror_reads(HubClient& client, const MirrorFixture& f, const fs::path& out) {
  auto refs = client.list_refs(kRepo);
  REQUIRE(refs.ok());
  REQUIRE(refs->versions().count(1) == 1);
  CHECK(refs->versions().at(1) == f.commit);
  auto sha = client.resolve_revision(kRepo, "v1");
  REQUIRE(sha.ok());
  CHECK(*sha == f.commit);
  auto tree = client.list_tree(kRepo, f.commit);
  REQUIRE(tree.ok());
  auto requests = requests_for(*tree, kRepo, f.commit, out);
  REQUIRE(requests.size() == 3);
  auto results = client.download(requests);
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO(requests[i].path);
    REQUIRE(results[i].ok());
    REQUIRE(check_file(requests[i].temp_path, requests[i].digest).ok());
  }
  auto text = client.fetch_text(kRepo, f.commit, "build/torch-cuda/_ops.py");
  REQUIRE(text.ok());
  REQUIRE(text->has_value());
  CHECK(**text == "ops = 1\n");
  auto absent = client.fetch_text(kRepo, f.commit, "kernel-status.toml");
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
}

// A child process, killed (SIGTERM, then SIGKILL) and reaped when the scope ends.
struct Child {
  pid_t pid = -1;
  int exit_status = -1;
  ~Child() { stop(); }
  int stop() {
    if (pid <= 0) return exit_status;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
    return exit_status;
  }
};

}  // namespace

TEST_CASE(
    "file:// mirror: refs, revision, tree, files and fetch_text all read from the directory") {
  MirrorFixture f;
  auto client = make_client(fast_options(f.file_endpoint()));
  check_mirror_reads(*client, f, f.dir / "out");
  CHECK(client->stats().requests > 0);
}

TEST_CASE("file:// mirror: wrong bytes in the mirror fail the digest, and nothing is kept") {
  MirrorFixture f;
  auto client = make_client(fast_options(f.file_endpoint()));
  auto r = request_for(*client, kRepo, f.commit, "build/torch-cuda/_k.abi3.so", f.dir / "out");
  auto mirrored = f.dir / "mirror" / "kernels" / kRepo / "resolve" / f.commit / r.path;
  auto bytes = read_file(mirrored);
  bytes[bytes.size() / 2] ^= 1;
  write_file(mirrored, bytes);
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::integrity_mismatch);
  CHECK_THAT(results[0].error().what, Catch::Contains(r.digest.hex));
  CHECK_FALSE(fs::exists(r.temp_path));

  write_file(mirrored, bytes.substr(0, 100));
  auto short_file = client->download({&r, 1});
  REQUIRE_FALSE(short_file[0].ok());
  CHECK(short_file[0].error().code == ErrorCode::integrity_mismatch);
}

TEST_CASE("file:// mirror: missing repo, revision and file map like the Hub's 404s") {
  MirrorFixture f;
  auto client = make_client(fast_options(f.file_endpoint()));
  auto repo = client->list_refs("org/absent");
  REQUIRE_FALSE(repo.ok());
  CHECK(repo.error().code == ErrorCode::http_permanent);
  CHECK_THAT(repo.error().what, Catch::Contains("repository not found"));
  auto rev = client->resolve_revision(kRepo, "v7");
  REQUIRE_FALSE(rev.ok());
  CHECK_THAT(rev.error().what, Catch::Contains("revision not found"));
  DownloadRequest r{kRepo,
                    f.commit,
                    "build/nothing.so",
                    {FileDigest::Kind::git_sha1, std::string(40, 'c')},
                    3,
                    f.dir / "out" / "n"};
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::http_permanent);
  CHECK_THAT(results[0].error().what, Catch::Contains("file not found"));
}

TEST_CASE("file:// mirror: files can be read by branch name too (mapped to the commit)") {
  MirrorFixture f;
  auto client = make_client(fast_options(f.file_endpoint()));
  auto text = client->fetch_text(kRepo, "v1", "build/torch-cuda/_ops.py");
  REQUIRE(text.ok());
  REQUIRE(text->has_value());
  CHECK(**text == "ops = 1\n");
  auto r = request_for(*client, kRepo, f.commit, "build/torch-cuda/_k.abi3.so", f.dir / "out");
  r.revision = "first";
  REQUIRE(client->download({&r, 1})[0].ok());
  CHECK(read_file(r.temp_path) == f.so);
}

TEST_CASE("file:// mirror: a missing directory is a usage error at create") {
  auto client = HubClient::create(fast_options("file:///nonexistent/mirror/dir"));
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().code == ErrorCode::usage);
}

TEST_CASE("file:// mirror: a sub-path listing is narrowed like the Hub's") {
  MirrorFixture f;
  auto client = make_client(fast_options(f.file_endpoint()));
  auto tree = client->list_tree(kRepo, "v1", "build/torch-cuda", false);
  REQUIRE(tree.ok());
  CHECK(tree->size() == 3);
}

TEST_CASE("FakeHub::load_mirror serves a mirror directory with the full protocol") {
  MirrorFixture f;
  FakeHub served;
  REQUIRE(served.load_mirror(f.dir / "mirror").ok());
  served.set_tree_page_size(2);
  auto client = make_client(fast_options(served.endpoint()));
  check_mirror_reads(*client, f, f.dir / "out");
  CHECK(served.repo(kRepo).commit("first") == f.commit);
  // The LFS file went through the redirect, as on the Hub.
  auto lfs_requests = 0;
  for (const auto& r : served.requests()) lfs_requests += r.port == served.lfs_port();
  CHECK(lfs_requests == 1);
}

TEST_CASE("fake_hub_server serves a mirror, prints its port and exits on SIGTERM") {
  MirrorFixture f;
  int out[2];
  REQUIRE(::pipe(out) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::string mirror = (f.dir / "mirror").string();
  std::vector<std::string> args = {FAKE_HUB_SERVER, "--mirror",      mirror, "--port", "0",
                                   "--print-port",  "--max-seconds", "30"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child child;
  REQUIRE(posix_spawn(&child.pid, FAKE_HUB_SERVER, &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  REQUIRE_FALSE(line.empty());
  int port = std::stoi(line);
  REQUIRE(port > 0);
  auto client = make_client(fast_options("http://127.0.0.1:" + std::to_string(port)));
  check_mirror_reads(*client, f, f.dir / "out");
  CHECK(child.stop() == 0);
}

TEST_CASE("nginx serving the mirror directory statically is a working endpoint") {
  MirrorFixture f;
  std::string why;
  auto nginx = test_support::NginxServer::start(f.dir / "mirror", f.dir / "nginx", why);
  if (!nginx) KERNELS_SKIP(why);
  auto client = make_client(fast_options(nginx->endpoint()));
  check_mirror_reads(*client, f, f.dir / "out");
}
