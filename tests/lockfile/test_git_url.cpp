// The upstream/source URLs of metadata.json as kernels 0.17.2 reads and shows them (git_url.h).
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "kernels/lockfile/git_url.h"
#include "kernels/lockfile/variant_metadata.h"

using namespace kernels;

namespace {

// Vectors observed with kernels 0.17.2 (Metadata.from_bytes(...).upstream, oracle venv of
// scripts/setup-python-oracle.sh), 2026-11-28.
const std::vector<std::pair<std::string, std::string>> kNormalised = {
    {"https://GitHub.com/a/b", "https://github.com/a/b"},
    {"git@github.com:o/r.git", "ssh://git@github.com/o/r.git"},
    {"https://github.com", "https://github.com/"},
    {"HTTPS://github.com/A/B", "https://github.com/A/B"},
    {"https://github.com:443/a", "https://github.com/a"},
    {"http://github.com:80/a", "http://github.com/a"},
    {"https://github.com:8443/a", "https://github.com:8443/a"},
    {"ssh://Git@GitHub.com/o/r.git", "ssh://Git@GitHub.com/o/r.git"},
    {"git+ssh://git@GitHub.com/o/r.git", "git+ssh://git@GitHub.com/o/r.git"},
    {"git://GitHub.com/x", "git://GitHub.com/x"},
    {"https://github.com/a/../b", "https://github.com/b"},
    {"https://github.com/a b", "https://github.com/a%20b"},
    {"https://github.com/a?q=1#f", "https://github.com/a?q=1#f"},
    {"user@gitlab.com:group/project.git", "ssh://user@gitlab.com/group/project.git"},
    {"https://user:pw@github.com/a", "https://user:pw@github.com/a"},
    {"https://u@s@h/p", "https://u%40s@h/p"},
    {"https://:@h/p", "https://h/p"},
    {"https://Ho%41st/x", "https://hoast/x"},
    {"https://h/%2e%2E/x", "https://h/x"},
    {"https://h/a/..", "https://h/"},
    {"ssh://h", "ssh://h"},
    {"ssh:foo", "ssh:foo"},
    {"https:github.com/a", "https://github.com/a"},
    {"https://h:0443/a", "https://h/a"},
    {"https://1.2.3/a", "https://1.2.0.3/a"},
    {"https://010.1.1.1/a", "https://8.1.1.1/a"},
    {"https://0x7f.1/a", "https://127.0.0.1/a"},
    {"http://[0:0::1]/", "http://[::1]/"},
    {"http://[::ffff:1.2.3.4]/", "http://[::ffff:102:304]/"},
    {"https://h/a^|'b\"c<>`{}~", "https://h/a^|'b%22c%3C%3E%60%7B%7D~"},
    {"https://h/p?a b\"<>'`{}^|", "https://h/p?a%20b%22%3C%3E%27`{}^|"},
    {"ssh://h/p?a b\"'", "ssh://h/p?a%20b%22'"},
    {"https://h/p#a b\"<>`{}^|", "https://h/p#a%20b%22%3C%3E%60{}^|"},
    {"ssh://Ho%41st/x", "ssh://Ho%41st/x"},
    {"ssh://h/a:/../b", "ssh://h/a:/b"},
    {"ssh://h:22\\x", "ssh://h:22/\\x"},
    {"git@h:a b", "ssh://git@h/a%20b"},
};
// (url, "unsupported" | "invalid")
const std::vector<std::pair<std::string, std::string>> kRefused = {
    {"github.com:o/r", "unsupported"}, {"ftp://x/y", "unsupported"},     {"not a url", "invalid"},
    {"git@host:/abs", "invalid"},      {"https://h:99999/a", "invalid"}, {"ssh://h:x/a", "invalid"},
    {"https://a.1/x", "invalid"},      {"https://a b/x", "invalid"},     {"ssh://h@:/x", "invalid"},
    {"file:///x", "unsupported"},
};

}  // namespace

TEST_CASE("git URLs are normalised as kernels 0.17.2 shows them", "[lockfile][git_url]") {
  for (const auto& [url, expected] : kNormalised) {
    INFO("url: " << url);
    Result<std::string> got = normalize_git_url(url);
    REQUIRE(got.ok());
    CHECK(*got == expected);
  }
}

TEST_CASE("git URLs are refused where kernels 0.17.2 refuses them, with its reason",
          "[lockfile][git_url]") {
  for (const auto& [url, why] : kRefused) {
    INFO("url: " << url);
    Result<std::string> got = normalize_git_url(url);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::lockfile_invalid);
    if (why == "unsupported") {
      CHECK_THAT(got.error().what, Catch::Contains("unsupported scheme `") &&
                                       Catch::Contains("expected one of: https, http, git, ssh, "
                                                       "git+ssh, git+https, git+http"));
    } else {
      CHECK(got.error().what == "invalid git URL `" + url + "`");
    }
  }
}

TEST_CASE("metadata.json carries upstream and source normalised, and refuses a bad one",
          "[lockfile][git_url][metadata]") {
  const std::string head = R"({"name": "relu", "id": "_relu", "version": 1, "license": "MIT",
      "python-depends": [], "backend": {"type": "cuda"})";
  auto m = parse_variant_metadata(
      head + R"(, "upstream": "https://GitHub.com/Org/Repo", "source": "git@hf.co:k/r.git"})");
  REQUIRE(m.ok());
  CHECK(m->upstream == "https://github.com/Org/Repo");
  CHECK(m->source == "ssh://git@hf.co/k/r.git");
  auto absent = parse_variant_metadata(head + R"(, "upstream": null})");
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->upstream);
  auto bad = parse_variant_metadata(head + R"(, "source": "ftp://x/y"})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::lockfile_invalid);
  CHECK_THAT(bad.error().message(), Catch::Contains("\"source\": unsupported scheme `ftp`"));
}
