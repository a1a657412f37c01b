// TLS: the CA options reach libcurl (a self-signed loopback server is trusted only through them),
// certificate failures are not retried, and an https -> http redirect is refused.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "hub_test_support.h"
#include "support/skip.h"

using namespace kernels;
using namespace kernels::hub_test;

namespace {

constexpr const char* kRepo = "org/tls";

// A self-signed certificate for 127.0.0.1, made with the openssl tool; false when it cannot be.
bool make_certificate(const fs::path& dir) {
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout '" +
      (dir / "key.pem").string() + "' -out '" + (dir / "cert.pem").string() + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0 && fs::exists(dir / "cert.pem");
}

struct TlsHub {
  TempDir dir;
  bool ready = false;
  std::unique_ptr<FakeHub> hub;
  TlsHub() {
    if (!make_certificate(dir.path())) return;
    FakeHub::Options options;
    options.tls_cert_file = (dir / "cert.pem").string();
    options.tls_key_file = (dir / "key.pem").string();
    hub = std::make_unique<FakeHub>(options);
    ready = hub->port() > 0;
    if (ready) {
      hub->add_repo(kRepo).branch("v1",
                                  {{"a.txt", "alpha\n"}, {"k.so", random_bytes(3000, 4), true}});
    }
  }
  std::string cert() const { return (dir / "cert.pem").string(); }
};

}  // namespace

TEST_CASE("TLS: the server is trusted through ca_file, and SSL_CERT_FILE reaches ca_file") {
  TlsHub t;
  if (!t.ready) KERNELS_SKIP("cannot make a self-signed certificate (openssl tool missing?)");
  REQUIRE(t.hub->endpoint().rfind("https://", 0) == 0);
  auto env = clean_hub_env();
  env.set("HF_ENDPOINT", t.hub->endpoint());
  env.set("SSL_CERT_FILE", t.cert());
  auto from_env = cli::hub_options_from_env();
  REQUIRE(from_env.ok());
  CHECK(from_env->ca_source == "SSL_CERT_FILE");
  auto options = fast_options(t.hub->endpoint());
  options.ca_file = from_env->ca_file;
  options.ca_source = from_env->ca_source;
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE(refs.ok());
  CHECK(refs->versions().count(1) == 1);
}

TEST_CASE("TLS: an untrusted certificate fails at once with a network error, no retry") {
  TlsHub t;
  if (!t.ready) KERNELS_SKIP("cannot make a self-signed certificate (openssl tool missing?)");
  TempDir other;
  if (!make_certificate(other.path())) KERNELS_SKIP("cannot make a second certificate");
  auto options = fast_options(t.hub->endpoint());
  options.ca_file = (other / "cert.pem").string();  // a valid CA file that did not sign the server
  options.ca_source = "SSL_CERT_FILE";
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE_FALSE(refs.ok());
  CHECK(refs.error().code == ErrorCode::network);
  CHECK_THAT(refs.error().hint, Catch::Contains("SSL_CERT_FILE"));
  CHECK(client->stats().requests == 1);
  CHECK(t.hub->request_count() == 0);
}

TEST_CASE("TLS: a redirect from https to plain http is refused") {
  TlsHub t;
  if (!t.ready) KERNELS_SKIP("cannot make a self-signed certificate (openssl tool missing?)");
  auto options = fast_options(t.hub->endpoint());
  options.ca_file = t.cert();
  auto client = make_client(options);
  auto commit = t.hub->repo(kRepo).commit("v1");
  auto r = request_for(*client, kRepo, commit, "k.so", t.dir.path());
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::http_permanent);
  CHECK_THAT(results[0].error().what, Catch::Contains("https to plain http"));
  CHECK(t.hub->request_count(FakeHub::lfs_path(r.digest.hex)) == 0);
}
