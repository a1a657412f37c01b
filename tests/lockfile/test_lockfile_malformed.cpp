// Strict kernels.lock parsing (fetch-reliability.md b.1): every malformed input is a
// lockfile_invalid Error naming <file>:<line>:<column> and saying what was expected; nothing
// crashes, throws out of the library or hangs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/lockfile/lockfile.h"
#include "support.h"

using namespace kernels;

namespace {

const std::string kSha = "d649efb56fb249ac8f7a57fa1866728ad0c60e52";
const std::string kHex64 = "d39147b57a44ceda745fb101e028e87030c33b8375a049b75ab9ec5dd606fa64";
const std::string kHash = "sha256-" + kHex64;

std::string variant(const std::string& body) {
  return R"([{"repo_id": "org/name", "sha": ")" + kSha + R"(", "variants": {"torch-cuda": )" +
         body + "}}]";
}
std::string entry_with_sha(const std::string& sha_json) {
  return R"([{"repo_id": "org/name", "sha": )" + sha_json + R"(, "variants": {}}])";
}
std::string good_entry(const std::string& repo = "org/name") {
  return R"({"repo_id": ")" + repo + R"(", "sha": ")" + kSha + R"(", "variants": {}})";
}

// "<line>:<column>" of the nth occurrence of `marker` (column in code points, 1-based).
std::string pos_of(const std::string& text, const std::string& marker, int nth = 1) {
  std::size_t off = std::string::npos;
  for (int i = 0; i < nth; ++i) off = text.find(marker, off == std::string::npos ? 0 : off + 1);
  if (off == std::string::npos) return "marker not found";
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < off; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

struct Case {
  const char* name;
  std::string text;
  std::string at;    // expected "<line>:<column>"
  const char* says;  // a phrase the message must contain
};

void check_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO("case: " << c.name);
    auto r = parse_lockfile(c.text, "kernels.lock");
    REQUIRE_FALSE(r.ok());
    INFO("message: " << r.error().message());
    CHECK(r.error().code == ErrorCode::lockfile_invalid);
    CHECK(r.error().object == "kernels.lock:" + c.at);
    CHECK(r.error().what.find(c.says) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("malformed encodings: empty, BOM, UTF-16, NUL, invalid UTF-8", "[lockfile][malformed]") {
  using namespace std::string_literals;
  const std::string nul_mid = "[\n  {\"repo_id\": \"org/na\0me\"}\n]"s;
  const std::string bad_utf8 = "[\"\xC3\x28\"]";
  check_cases({
      {"empty file", "", "1:1", "empty"},
      {"whitespace only", "  \n\t ", "2:3", "empty"},
      {"UTF-8 BOM", "\xEF\xBB\xBF[]", "1:1", "byte order mark"},
      {"UTF-16 LE with BOM", std::string("\xFF\xFE[\0]\0", 6), "1:1", "UTF-16"},
      {"UTF-16 BE with BOM", std::string("\xFE\xFF\0[\0]", 6), "1:1", "UTF-16"},
      {"UTF-16 LE without BOM", std::string("[\0]\0", 4), "1:2", "NUL byte"},
      {"NUL byte in the middle", nul_mid, pos_of(nul_mid, std::string(1, '\0')), "NUL byte"},
      {"invalid UTF-8 in a string", bad_utf8, "1:3", "invalid UTF-8"},
      {"lone surrogate escape", R"(["\ud800"])", "1:3", "surrogate"},
  });
}

TEST_CASE("malformed syntax: garbage, two documents, trailing commas, bad tokens",
          "[lockfile][malformed]") {
  const std::string two_docs = "[]\n[]";
  check_cases({
      {"trailing garbage", "[] x", "1:4", "after the end of the JSON document"},
      {"two documents", two_docs, "2:1", "after the end of the JSON document"},
      {"trailing comma in array", "[1,]", "1:4", "trailing comma"},
      {"trailing comma in object", R"([{"a": 1,}])", "1:10", "trailing comma"},
      {"unterminated array", "[", "1:2", "end of file"},
      {"unterminated string", "[\"abc", "1:6", "unterminated string"},
      {"single quotes", "['a']", "1:2", "expected a value"},
      {"NaN literal", "[NaN]", "1:2", "expected a value"},
      {"leading zero", "[01]", "1:2", "leading zeros"},
      {"raw control character", "[\"a\tb\"]", "1:4", "control character"},
      {"bad escape", R"(["\x41"])", "1:3", "invalid escape"},
      {"comment", "[] // c", "1:4", "after the end"},
  });
}

TEST_CASE("duplicate keys are errors at every level", "[lockfile][malformed]") {
  const std::string dup_entry = R"([{"repo_id": "org/name", "sha": ")" + kSha + R"(", "sha": ")" +
                                kSha + R"(", "variants": {}}])";
  const std::string dup_variant_key = variant(R"({"hash": ")" + kHash + R"(", "hash": ")" + kHash +
                                              R"("})");
  const std::string dup_variant_name = R"([{"repo_id": "org/name", "sha": ")" + kSha +
                                       R"(", "variants": {"torch-cuda": {"hash": ")" + kHash +
                                       R"("}, "torch-cuda": {"hash": ")" + kHash + R"("}}}])";
  const std::string dup_dep = R"([{"dependency": {"repo-id": "a/b", "repo-id": "a/c", "version": 1},
 "lock": {"commit": ")" + kSha +
                              R"("}}])";
  check_cases({
      {"duplicate sha in an entry", dup_entry, pos_of(dup_entry, "\"sha\"", 2),
       "duplicate key \"sha\""},
      {"duplicate hash in a variant", dup_variant_key, pos_of(dup_variant_key, "\"hash\"", 2),
       "duplicate key \"hash\""},
      {"duplicate variant name", dup_variant_name, pos_of(dup_variant_name, "\"torch-cuda\"", 2),
       "duplicate key \"torch-cuda\""},
      {"duplicate key in a dependency", dup_dep, pos_of(dup_dep, "\"repo-id\"", 2),
       "duplicate key \"repo-id\""},
  });
  auto r = parse_lockfile(dup_entry, "kernels.lock");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().what.find("first at kernels.lock:" + pos_of(dup_entry, "\"sha\"")) !=
        std::string::npos);
}

TEST_CASE("duplicate repo entries are rejected, naming the first one", "[lockfile][malformed]") {
  const std::string text = "[\n" + good_entry() + ",\n" + good_entry("other/kernel") + ",\n" +
                           good_entry() + "\n]";
  check_cases({{"same repo twice", text, "4:1",
                "duplicate entry for \"org/name\" (first at kernels.lock:2:1)"}});
}

TEST_CASE("wrong types and missing keys say what is expected", "[lockfile][malformed]") {
  const std::string obj = R"({"repo_id": "org/name"})";
  const std::string num_repo = R"([{"repo_id": 7, "sha": ")" + kSha + R"(", "variants": {}}])";
  const std::string arr_variants = R"([{"repo_id": "org/name", "sha": ")" + kSha +
                                   R"(", "variants": []}])";
  const std::string missing_sha = R"([{"repo_id": "org/name", "variants": {}}])";
  const std::string num_hash = variant(R"({"hash": 12})");
  const std::string str_variant = variant(R"("sha256-x")");
  const std::string null_hash_type = variant(R"({"hash": ")" + kHash + R"(", "hash_type": null})");
  check_cases({
      {"top-level object", obj, "1:1", "expected a JSON array"},
      {"entry is a string", R"(["org/name"])", "1:2", "expected an object for each locked kernel"},
      {"repo_id is a number", num_repo, pos_of(num_repo, "7"),
       "expected \"repo_id\" to be a string"},
      {"variants is an array", arr_variants, pos_of(arr_variants, "[]"),
       "expected \"variants\" to be an object"},
      {"sha missing", missing_sha, "1:2", "missing key \"sha\""},
      {"hash is a number", num_hash, pos_of(num_hash, "12"), "expected \"hash\" to be a string"},
      {"variant is a string", str_variant, pos_of(str_variant, "\"sha256-x\""),
       "to be an object {\"hash\", \"hash_type\"}"},
      {"hash_type is null", null_hash_type, pos_of(null_hash_type, "null"),
       "expected \"hash_type\" to be a string"},
  });
}

TEST_CASE("bad values: sha, hash, hash_type, repo id, variant names, unknown variant keys",
          "[lockfile][malformed]") {
  std::vector<Case> cases;
  auto sha_case = [&](const char* name, const std::string& sha) {
    const std::string t = entry_with_sha("\"" + sha + "\"");
    cases.push_back({name, t, pos_of(t, "\"" + sha + "\""), "40 lowercase hex"});
  };
  sha_case("uppercase sha", "D649EFB56FB249AC8F7A57FA1866728AD0C60E52");
  sha_case("short sha", "d649efb");
  sha_case("41-digit sha", kSha + "0");
  sha_case("non-hex sha", "g649efb56fb249ac8f7a57fa1866728ad0c60e52");
  auto hash_case = [&](const char* name, const std::string& hash) {
    const std::string t = variant(R"({"hash": ")" + hash + R"("})");
    cases.push_back(
        {name, t, pos_of(t, "\"" + hash + "\""), "\"sha256-\" followed by 64 lowercase hex"});
  };
  hash_case("hash without prefix", kHex64);
  hash_case("63 hex digits", "sha256-" + kHex64.substr(1));
  hash_case("65 hex digits", kHash + "0");
  hash_case("uppercase hex", "sha256-" + std::string(64, 'A'));
  hash_case("0x prefix", "sha256-0x" + kHex64.substr(2));
  hash_case("surrounding whitespace", " " + kHash + " ");
  hash_case("other algorithm", "sha512-" + kHex64);
  hash_case("SRI base64", "sha256-2RFHtXpEzO10X7EB4CjocDDDO4N1oEm3WrnsXdYG+mQ=");
  const std::string md5 = variant(R"({"hash": ")" + kHash + R"(", "hash_type": "md5"})");
  cases.push_back({"unknown hash_type", md5, pos_of(md5, "\"md5\""), "unknown hash_type \"md5\""});
  const std::string extra = variant(R"({"hash": ")" + kHash + R"(", "size": 3})");
  cases.push_back({"unknown key in a variant", extra, pos_of(extra, "\"size\""),
                   "unknown key \"size\" in variant \"torch-cuda\""});
  const std::string bad_repo = R"([{"repo_id": "../etc/passwd", "sha": ")" + kSha +
                               R"(", "variants": {}}])";
  cases.push_back({"traversal repo id", bad_repo, pos_of(bad_repo, "\"../etc"), "Hub repo id"});
  const std::string bad_variant = R"([{"repo_id": "org/name", "sha": ")" + kSha +
                                  R"(", "variants": {"../../x": {"hash": ")" + kHash + R"("}}}])";
  cases.push_back({"traversal variant name", bad_variant, pos_of(bad_variant, "\"../../x\""),
                   "expected a variant name"});
  check_cases(cases);
}

TEST_CASE("the list form is strict: unknown keys, bad commits and versions, mixed forms",
          "[lockfile][malformed]") {
  const std::string unknown = R"([{"dependency": {"repo-id": "a/b", "version": 1, "extra": 1},
 "lock": {"commit": ")" + kSha +
                              R"("}}])";
  const std::string bad_commit =
      R"([{"dependency": {"repo-id": "a/b", "version": 1}, "lock": {"commit": "abc"}}])";
  const std::string neg =
      R"([{"dependency": {"repo-id": "a/b", "version": -1}, "lock": {"commit": ")" + kSha +
      R"("}}])";
  const std::string flt =
      R"([{"dependency": {"repo-id": "a/b", "version": 1.5}, "lock": {"commit": ")" + kSha +
      R"("}}])";
  const std::string mixed =
      "[" + good_entry() +
      R"(, {"dependency": {"repo-id": "a/b", "version": 1}, "lock": {"commit": ")" + kSha +
      R"("}}])";
  check_cases({
      {"unknown key in dependency", unknown, pos_of(unknown, "\"extra\""),
       "unknown key \"extra\" in \"dependency\""},
      {"short commit", bad_commit, pos_of(bad_commit, "\"abc\""), "full commit id"},
      {"negative version", neg, pos_of(neg, "-1"), "non-negative integer"},
      {"float version", flt, pos_of(flt, "1.5"), "non-negative integer"},
      {"mixed forms", mixed, pos_of(mixed, "{\"dependency\""), "mixes the two lockfile forms"},
  });
}

TEST_CASE("10^5 levels of nesting fail fast with a bounded stack", "[lockfile][malformed]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const auto t0 = std::chrono::steady_clock::now();
  auto r = parse_lockfile(deep, "kernels.lock");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().what.find("nesting deeper than") != std::string::npos);
  CHECK(r.error().object == "kernels.lock:1:65");
  CHECK(ms < 2000);  // generous bound: the parse stops at depth 65
}

TEST_CASE("a 10^6-element array is rejected in bounded time", "[lockfile][malformed]") {
  std::string big = "[";
  for (int i = 0; i < 1000000; ++i) big += i ? ",{}" : "{}";
  big += "]";
  const auto t0 = std::chrono::steady_clock::now();
  auto r = parse_lockfile(big, "kernels.lock");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::lockfile_invalid);
  CHECK(r.error().what.find("JSON values") != std::string::npos);  // the value cap, not OOM
  CHECK(ms < 10000);  // ~3 MB of input; the bound only catches quadratic behaviour
}

TEST_CASE("every truncation and byte flip of a real lock returns an Error, never throws",
          "[lockfile][malformed]") {
  const std::string bytes = kernels::test::slurp(
      kernels::test::hf_fixtures() / "kernels@8ac69fc5/kernels/tests/layer_locking/kernels.lock");
  REQUIRE(parse_lockfile(bytes).ok());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = parse_lockfile(std::string_view(bytes).substr(0, n));
    INFO("prefix of " << n << " bytes");
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.error().code == ErrorCode::lockfile_invalid);
  }
  std::mt19937 rng(12345);
  int failures = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string m = bytes;
    m[rng() % m.size()] = static_cast<char>(rng() & 0xFF);
    auto r = parse_lockfile(m);
    if (!r.ok()) {
      REQUIRE(r.error().code == ErrorCode::lockfile_invalid);
      REQUIRE(r.error().object.rfind("kernels.lock:", 0) == 0);
      ++failures;
    }
  }
  CHECK(failures > 0);
}

TEST_CASE("hostile files: FIFO, /dev/zero, a directory and an oversized file do not hang",
          "[lockfile][malformed]") {
  kernels::test::ScratchDir dir;
  const auto fifo = dir / "fifo.lock";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto r = read_lockfile(fifo);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().what.find("a FIFO") != std::string::npos);

  auto z = read_lockfile("/dev/zero");
  REQUIRE_FALSE(z.ok());
  CHECK(z.error().what.find("character device") != std::string::npos);

  auto d = read_lockfile(dir.path());
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().what.find("a directory") != std::string::npos);

  const auto huge = dir / "huge.lock";
  {
    const int fd = ::open(huge.c_str(), O_WRONLY | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(kMaxLockfileBytes) + 1) == 0);  // sparse
    ::close(fd);
  }
  auto h = read_lockfile(huge);
  REQUIRE_FALSE(h.ok());
  CHECK(h.error().code == ErrorCode::lockfile_invalid);
  CHECK(h.error().what.find("limit") != std::string::npos);
}

TEST_CASE("a lockfile reached through a symlink is read", "[lockfile][malformed]") {
  kernels::test::ScratchDir dir;
  kernels::test::spit(dir / "real.lock", "[" + good_entry() + "]");
  std::filesystem::create_symlink("real.lock", dir / "kernels.lock");
  auto r = read_lockfile(dir / "kernels.lock");
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  CHECK(r->kernels.size() == 1);
}
