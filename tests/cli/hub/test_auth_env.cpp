// Tokens (sources, scope, redaction) and the environment: endpoint, offline, CA and proxy.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "hub_test_support.h"

using namespace kernels;
using namespace kernels::hub_test;
using cli::hub_options_from_env;
using cli::hub_token_from_env;

namespace {

constexpr const char* kRepo = "org/auth";
const std::string kToken = "hf_SENTINEL_4c1f9b2e";

}  // namespace

TEST_CASE("the token goes to the Hub port only, never to the LFS port after the redirect") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("v1", {{"a.txt", "a\n"}, {"k.so", random_bytes(4000, 5), true}});
  auto commit = hub.repo(kRepo).commit("v1");
  hub.require_token(kToken);
  TempDir dir;
  auto options = fast_options(hub.endpoint());
  options.token = kToken;
  auto client = make_client(options);
  auto requests = requests_for(fetch_tree(*client, kRepo, commit), kRepo, commit, dir.path());
  auto results = client->download(requests);
  for (const auto& r : results) REQUIRE(r.ok());
  CHECK(hub.authorization_headers_seen(hub.port()) == hub.request_count() - 1);
  CHECK(hub.authorization_headers_seen(hub.lfs_port()) == 0);
  for (const auto& r : hub.requests()) {
    if (r.port == hub.port()) CHECK(r.authorization == "Bearer " + kToken);
  }
}

TEST_CASE("the token never appears in logs, even the wire log, Authorization is redacted") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("v1", {{"k.so", random_bytes(4000, 6), true}});
  auto commit = hub.repo(kRepo).commit("v1");
  hub.require_token(kToken);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(503, 1));
  std::vector<std::string> lines;
  auto options = fast_options(hub.endpoint());
  options.token = kToken;
  options.log_wire = true;
  options.log = [&](HubOptions::LogLevel, std::string_view line) { lines.emplace_back(line); };
  auto client = make_client(options);
  REQUIRE(client->list_refs(kRepo).ok());
  TempDir dir;
  auto r = request_for(*client, kRepo, commit, "k.so", dir.path());
  REQUIRE(client->download({&r, 1})[0].ok());
  REQUIRE(client->list_refs("org/nope").error().code == ErrorCode::http_permanent);

  REQUIRE(lines.size() > 10);
  bool saw_redacted_header = false;
  for (const auto& line : lines) {
    INFO(line);
    CHECK(line.find(kToken) == std::string::npos);
    CHECK(line.find("SENTINEL") == std::string::npos);
    saw_redacted_header |= line.find("Authorization: <redacted>") != std::string::npos;
  }
  CHECK(saw_redacted_header);
}

TEST_CASE("token sources: HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the token file") {
  auto env = clean_hub_env();
  TempDir dir;
  CHECK_FALSE(hub_token_from_env()->has_value());

  env.set("HF_HOME", dir.path().string());
  write_file(dir / "token", "  hf_from_home\r\n");
  CHECK(hub_token_from_env()->value() == "hf_from_home");

  write_file(dir / "other-token", "hf_from_path\n");
  env.set("HF_TOKEN_PATH", (dir / "other-token").string());
  CHECK(hub_token_from_env()->value() == "hf_from_path");

  env.set("HUGGING_FACE_HUB_TOKEN", "hf_legacy");
  CHECK(hub_token_from_env()->value() == "hf_legacy");

  env.set("HF_TOKEN", " hf_env \n");
  CHECK(hub_token_from_env()->value() == "hf_env");

  env.set("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1");
  CHECK_FALSE(hub_token_from_env()->has_value());
}

TEST_CASE("token file paths expand a leading ~ like Python's expanduser") {
  auto env = clean_hub_env();
  TempDir dir;
  env.set("HOME", dir.path().string());
  write_file(dir / "tokens" / "hf", "hf_home_relative\n");
  env.set("HF_TOKEN_PATH", "~/tokens/hf");
  CHECK(hub_token_from_env()->value() == "hf_home_relative");
  env.set("HF_TOKEN_PATH", std::nullopt);
  write_file(dir / "hfhome" / "token", "hf_in_hf_home\n");
  env.set("HF_HOME", "~/hfhome");
  CHECK(hub_token_from_env()->value() == "hf_in_hf_home");
}

TEST_CASE("token file: missing means no token, an empty file means no token, unreadable fails") {
  auto env = clean_hub_env();
  TempDir dir;
  env.set("HF_TOKEN_PATH", (dir / "absent").string());
  CHECK_FALSE(hub_token_from_env()->has_value());
  write_file(dir / "empty", "\r\n");
  env.set("HF_TOKEN_PATH", (dir / "empty").string());
  CHECK_FALSE(hub_token_from_env()->has_value());
  fs::create_directories(dir / "a-directory");
  env.set("HF_TOKEN_PATH", (dir / "a-directory").string());
  auto bad = hub_token_from_env();
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::usage);
  CHECK_THAT(bad.error().hint, Catch::Contains("HF_TOKEN_PATH"));
}

TEST_CASE("hub_options_from_env: endpoint, trailing slash, offline, token") {
  auto env = clean_hub_env();
  auto defaults = hub_options_from_env();
  REQUIRE(defaults.ok());
  CHECK(defaults->endpoint == "https://huggingface.co");
  CHECK_FALSE(defaults->offline);
  CHECK_FALSE(defaults->token.has_value());

  env.set("HF_ENDPOINT", "http://127.0.0.1:9/mirror//");
  env.set("HF_HUB_OFFLINE", "yes");
  env.set("HF_TOKEN", "hf_x");
  auto o = hub_options_from_env();
  REQUIRE(o.ok());
  CHECK(o->endpoint == "http://127.0.0.1:9/mirror");
  CHECK(o->offline);
  CHECK(o->token == "hf_x");

  env.set("HF_HUB_OFFLINE", "0");
  CHECK_FALSE(hub_options_from_env()->offline);

  env.set("HF_ENDPOINT", "ftp://example.org");
  auto bad = hub_options_from_env();
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::usage);
  CHECK_THAT(bad.error().what, Catch::Contains("HF_ENDPOINT"));
}

TEST_CASE("HF_HUB_DOWNLOAD_TIMEOUT sets the stall window, a bad value names the variable") {
  auto env = clean_hub_env();
  CHECK(hub_options_from_env()->stall_timeout == std::chrono::seconds(30));
  env.set("HF_HUB_DOWNLOAD_TIMEOUT", "12");
  CHECK(hub_options_from_env()->stall_timeout == std::chrono::seconds(12));
  for (std::string bad : {"soon", "0", "-5", "12s"}) {
    INFO(bad);
    env.set("HF_HUB_DOWNLOAD_TIMEOUT", bad);
    auto o = hub_options_from_env();
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().code == ErrorCode::usage);
    CHECK_THAT(o.error().what, Catch::Contains("HF_HUB_DOWNLOAD_TIMEOUT"));
  }
}

TEST_CASE("a CA variable naming a missing file fails loudly and names the variable") {
  for (const char* name : {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "SSL_CERT_DIR"}) {
    INFO(name);
    auto env = clean_hub_env();
    env.set(name, "/nonexistent/ca.pem");
    auto o = hub_options_from_env();
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().code == ErrorCode::usage);
    CHECK_THAT(o.error().what, Catch::Contains(name));
    CHECK_THAT(o.error().hint, Catch::Contains(name));
  }
}

TEST_CASE("CA variables are passed on: CURL_CA_BUNDLE wins over SSL_CERT_FILE") {
  auto env = clean_hub_env();
  TempDir dir;
  write_file(dir / "a.pem", "x");
  write_file(dir / "b.pem", "x");
  env.set("SSL_CERT_FILE", (dir / "b.pem").string());
  auto o = hub_options_from_env();
  REQUIRE(o.ok());
  CHECK(o->ca_file == (dir / "b.pem").string());
  CHECK(o->ca_source == "SSL_CERT_FILE");
  env.set("CURL_CA_BUNDLE", (dir / "a.pem").string());
  o = hub_options_from_env();
  REQUIRE(o.ok());
  CHECK(o->ca_file == (dir / "a.pem").string());
  CHECK(o->ca_source == "CURL_CA_BUNDLE");
}

TEST_CASE("a CA file that does not exist is refused by HubClient::create too") {
  auto options = fast_options("https://127.0.0.1:9");
  options.ca_file = "/nonexistent/ca.pem";
  options.ca_source = "SSL_CERT_FILE";
  auto client = HubClient::create(options);
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().code == ErrorCode::usage);
  CHECK_THAT(client.error().what, Catch::Contains("SSL_CERT_FILE"));
}

TEST_CASE("an unparsable proxy variable fails loudly and names the variable") {
  auto env = clean_hub_env();
  env.set("HTTPS_PROXY", "ftp://proxy.example:21");
  auto o = hub_options_from_env();
  REQUIRE_FALSE(o.ok());
  CHECK(o.error().code == ErrorCode::usage);
  CHECK_THAT(o.error().what, Catch::Contains("HTTPS_PROXY"));
}

TEST_CASE("a proxy that refuses connections fails with a network error naming the variable") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("v1", {{"a.txt", "a\n"}});
  auto env = clean_hub_env();
  env.set("HF_ENDPOINT", hub.endpoint());
  env.set("http_proxy", "http://127.0.0.1:1");
  auto o = hub_options_from_env();
  REQUIRE(o.ok());
  CHECK(o->proxy_source == "http_proxy");
  auto options = fast_options(hub.endpoint());
  options.proxy = o->proxy;
  options.proxy_source = o->proxy_source;
  options.max_retries = 1;
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE_FALSE(refs.ok());
  CHECK(refs.error().code == ErrorCode::network);
  CHECK_THAT(refs.error().hint, Catch::Contains("http_proxy"));
  CHECK(hub.request_count() == 0);

  // NO_PROXY exempts the endpoint: the same proxy setting then does not matter.
  env.set("NO_PROXY", "127.0.0.1");
  auto bypass = hub_options_from_env();
  REQUIRE(bypass.ok());
  options.no_proxy = bypass->no_proxy;
  auto direct = make_client(options);
  CHECK(direct->list_refs(kRepo).ok());
  CHECK(hub.request_count() == 1);
}

TEST_CASE("redirects: loops end, non-http(s) targets are refused, foreign ports get no token") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("v1", {{"a.txt", "a\n"}});
  FakeHub other;
  other.add_repo(kRepo).branch("v1", {{"a.txt", "a\n"}});
  auto options = fast_options(hub.endpoint());
  options.token = kToken;
  auto client = make_client(options);

  hub.fault(FakeHub::refs_path(kRepo), Fault::redirect(FakeHub::refs_path(kRepo), -1));
  auto loop = client->list_refs(kRepo);
  REQUIRE_FALSE(loop.ok());
  CHECK(loop.error().code == ErrorCode::http_permanent);
  CHECK_THAT(loop.error().what, Catch::Contains("redirects"));
  CHECK(hub.request_count() == 11);

  FakeHub file_redirect;
  file_redirect.add_repo(kRepo);
  file_redirect.fault(FakeHub::refs_path(kRepo), Fault::redirect("file:///etc/passwd"));
  auto to_file = make_client(fast_options(file_redirect.endpoint()))->list_refs(kRepo);
  REQUIRE_FALSE(to_file.ok());
  CHECK(to_file.error().code == ErrorCode::http_permanent);
  CHECK_THAT(to_file.error().what, Catch::Contains("unsupported URL"));

  FakeHub cross;
  cross.add_repo(kRepo);
  cross.fault(FakeHub::refs_path(kRepo),
              Fault::redirect(other.endpoint() + FakeHub::refs_path(kRepo)));
  auto cross_options = fast_options(cross.endpoint());
  cross_options.token = kToken;
  auto moved = make_client(cross_options)->list_refs(kRepo);
  REQUIRE(moved.ok());
  CHECK(cross.authorization_headers_seen(cross.port()) == 1);
  CHECK(other.request_count() == 1);
  CHECK(other.authorization_headers_seen(other.port()) == 0);
}

// Regression (issue 12, defect 8): a FIFO as HF_TOKEN_PATH blocked every command in open(),
// /dev/zero was read without bound, and a token with a line break was sent as an extra header.
TEST_CASE("token file: a FIFO or a device is refused at once, a huge file is refused") {
  auto env = clean_hub_env();
  TempDir dir;
  const fs::path fifo = dir / "token-fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const fs::path& path : {fifo, fs::path("/dev/zero")}) {
    env.set("HF_TOKEN_PATH", path.string());
    auto bad = hub_token_from_env();  // before the fix: blocks (FIFO) or grows without bound
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == ErrorCode::usage);
    CHECK_THAT(bad.error().what, Catch::Contains("not a regular file"));
    CHECK_THAT(bad.error().hint, Catch::Contains("HF_TOKEN_PATH"));
  }
  write_file(dir / "huge", std::string(1 << 20, 'a'));
  env.set("HF_TOKEN_PATH", (dir / "huge").string());
  auto huge = hub_token_from_env();
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.error().code == ErrorCode::usage);
}

TEST_CASE("a token holding a line break is refused, never sent as an extra header") {
  auto env = clean_hub_env();
  TempDir dir;
  write_file(dir / "token", "hf_first\nX-Injected: yes\n");
  env.set("HF_TOKEN_PATH", (dir / "token").string());
  auto from_file = hub_token_from_env();
  REQUIRE_FALSE(from_file.ok());
  CHECK(from_file.error().code == ErrorCode::usage);
  CHECK_THAT(from_file.error().hint, Catch::Contains("HF_TOKEN_PATH"));
  CHECK(from_file.error().message().find("hf_first") == std::string::npos);  // never printed

  env.set("HF_TOKEN", "hf_x\r\nX-Injected: yes");
  auto from_env = hub_token_from_env();
  REQUIRE_FALSE(from_env.ok());
  CHECK(from_env.error().code == ErrorCode::usage);
  CHECK_THAT(from_env.error().hint, Catch::Contains("HF_TOKEN"));
  CHECK(from_env.error().message().find("hf_x") == std::string::npos);
  auto options = hub_options_from_env();
  CHECK_FALSE(options.ok());
}

// Regression (issue 12, defect 7): socks proxies were rejected as "not a proxy URL".
TEST_CASE("SOCKS proxy URLs are accepted") {
  auto env = clean_hub_env();
  env.set("HF_ENDPOINT", "https://hub.example");
  for (const char* proxy : {"socks5://127.0.0.1:1080", "socks5h://127.0.0.1:1080",
                            "socks4://127.0.0.1:1080", "socks4a://127.0.0.1:1080"}) {
    env.set("HTTPS_PROXY", proxy);
    auto o = hub_options_from_env();
    INFO(proxy << ": " << (o ? std::string() : o.error().message()));
    REQUIRE(o.ok());
    CHECK(o->proxy == proxy);
    CHECK(o->proxy_source == "HTTPS_PROXY");
  }
  env.set("HTTPS_PROXY", "gopher://127.0.0.1:70");
  CHECK_FALSE(hub_options_from_env().ok());
}

// Regression (issue 12, defect 5): a server or proxy that echoed the token in X-Error-Message got
// it printed (even with -q), and the -vv wire log passed escape characters through.
TEST_CASE(
    "X-Error-Message is shown redacted and without escape characters, in errors and the wire log") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("v1", {{"a.txt", "a\n"}});
  const std::string hostile = "denied for Bearer " + kToken +
                              " \x1b[2J\x1b]0;owned\x07 token=" + kToken + " \xe2\x80\xae";
  hub.fault(FakeHub::refs_path(kRepo), Fault::answer(403, "", {{"X-Error-Message", hostile}}, 1));
  std::vector<std::string> lines;
  auto options = fast_options(hub.endpoint());
  options.token = kToken;
  options.log_wire = true;
  options.log = [&](HubOptions::LogLevel, std::string_view line) { lines.emplace_back(line); };
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE_FALSE(refs.ok());
  const std::string message = refs.error().message();
  INFO(message);
  CHECK(message.find("SENTINEL") == std::string::npos);
  CHECK(message.find('\x1b') == std::string::npos);
  CHECK(message.find('\x07') == std::string::npos);
  CHECK(message.find("\xe2\x80\xae") == std::string::npos);
  CHECK(message.find("denied for Bearer <redacted>") != std::string::npos);
  CHECK(message.find("\\x1b[2J") != std::string::npos);
  bool saw_header = false;
  for (const auto& line : lines) {
    INFO(line);
    CHECK(line.find("SENTINEL") == std::string::npos);
    CHECK(line.find('\x1b') == std::string::npos);
    saw_header |= line.find("X-Error-Message") != std::string::npos;
  }
  CHECK(saw_header);
}
