// kernels.lock read/write: byte-identical to the Python kernels package.
#include <cstdio>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/lockfile/lockfile.h"
#include "support.h"
#include "support/skip.h"

using namespace kernels;
using kernels::test::hf_fixtures;
using kernels::test::slurp;

namespace {

std::vector<std::filesystem::path> real_lockfiles() {
  return {
      hf_fixtures() / "kernels@8ac69fc5/kernels/tests/kernel_locking/kernels.lock",
      hf_fixtures() / "kernels@8ac69fc5/kernels/tests/layer_locking/kernels.lock",
      hf_fixtures() / "kernels@v0.12.3/kernels/tests/kernel_locking/kernels.lock",
      hf_fixtures() / "kernels@v0.12.3/kernels/tests/layer_locking/kernels.lock",
      hf_fixtures() / "kernels@v0.11.7/tests/kernel_locking/kernels.lock",
      hf_fixtures() / "kernels@v0.11.7/tests/layer_locking/kernels.lock",
  };
}

const char* kSha = "d649efb56fb249ac8f7a57fa1866728ad0c60e52";
const char* kHash = "sha256-d39147b57a44ceda745fb101e028e87030c33b8375a049b75ab9ec5dd606fa64";

}  // namespace

TEST_CASE("every real kernels.lock fixture round-trips byte for byte", "[lockfile]") {
  for (const auto& path : real_lockfiles()) {
    INFO("fixture " << path);
    REQUIRE(std::filesystem::is_regular_file(path));
    const std::string bytes = slurp(path);
    auto lock = parse_lockfile(bytes, path.string());
    INFO((lock ? std::string() : lock.error().message()));
    REQUIRE(lock.ok());
    CHECK(lock->form == Lockfile::Form::repo_array);
    CHECK(serialize_lockfile(*lock) == bytes);
  }
}

TEST_CASE("the 8ac69fc5 kernel_locking lock parses to the expected entries", "[lockfile]") {
  auto lock = read_lockfile(hf_fixtures() /
                            "kernels@8ac69fc5/kernels/tests/kernel_locking/kernels.lock");
  REQUIRE(lock.ok());
  REQUIRE(lock->kernels.size() == 2);
  CHECK(lock->kernels[0].repo_id == "kernels-community/relu");
  CHECK(lock->kernels[0].sha == kSha);
  CHECK(lock->kernels[0].variants.size() == 52);
  CHECK(lock->kernels[0].variants.at("torch210-cpu-aarch64-darwin").hash == kHash);
  CHECK(lock->kernels[1].repo_id == "kernels-test/versions");
  CHECK(lock->kernels[1].variants.size() == 4);
  CHECK(lock->find("kernels-test/versions") == &lock->kernels[1]);
  CHECK(lock->find("kernels-test/none") == nullptr);
}

TEST_CASE("an empty lock is written as [] and an empty variants map as {}", "[lockfile]") {
  CHECK(serialize_lockfile(Lockfile{}) == "[]");
  Lockfile lock;
  lock.kernels.push_back({"org/name", kSha, {}, std::nullopt});
  CHECK(serialize_lockfile(lock) == "[\n  {\n    \"repo_id\": \"org/name\",\n    \"sha\": \"" +
                                        std::string(kSha) + "\",\n    \"variants\": {}\n  }\n]");
  auto back = parse_lockfile(serialize_lockfile(lock));
  REQUIRE(back.ok());
  CHECK(back->kernels[0].variants.empty());
  auto empty = parse_lockfile("[]");
  REQUIRE(empty.ok());
  CHECK(empty->kernels.empty());
}

TEST_CASE("variant keys are written sorted bytewise whatever the insertion order", "[lockfile]") {
  Lockfile lock;
  KernelLock k{"org/name", kSha, {}, std::nullopt};
  for (const char* v : {"torch-universal", "Zed", "torch_x", "torch-cuda", "a"}) {
    k.variants.emplace(v, VariantLock{kHash});
  }
  lock.kernels.push_back(k);
  const std::string out = serialize_lockfile(lock);
  // Bytewise: 'Z' (0x5A) < 'a' (0x61) < 't'; "torch-" (0x2D) < "torch_" (0x5F).
  const auto z = out.find("\"Zed\""), a = out.find("\"a\""), tc = out.find("\"torch-cuda\""),
             tu = out.find("\"torch-universal\""), tx = out.find("\"torch_x\"");
  CHECK(z < a);
  CHECK(a < tc);
  CHECK(tc < tu);
  CHECK(tu < tx);
}

TEST_CASE("strings are escaped exactly like Python json.dump(ensure_ascii=True)", "[lockfile]") {
  Lockfile lock;
  KernelLock k{"org/name", kSha, {}, std::nullopt};
  // U+00E9, U+1F600 (surrogate pair), DEL, a control character, quote and backslash.
  k.variants.emplace(std::string("v\xC3\xA9-\xF0\x9F\x98\x80-\x7F-\x01-\"-\\-/"),
                     VariantLock{kHash});
  lock.kernels.push_back(k);
  const std::string out = serialize_lockfile(lock);
  CHECK(out.find("\"v\\u00e9-\\ud83d\\ude00-\\u007f-\\u0001-\\\"-\\\\-/\": {") !=
        std::string::npos);
}

TEST_CASE("serializer matches Python's json.dump(indent=2) on generated locks", "[lockfile]") {
  if (std::system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
    KERNELS_SKIP("python3 is not available to produce the reference bytes");
  }
  kernels::test::ScratchDir dir;
  Lockfile lock;
  for (int i = 0; i < 3; ++i) {
    KernelLock k{"org-" + std::to_string(i) + "/kernel_" + std::to_string(i),
                 kSha,
                 {},
                 std::nullopt};
    for (int j = 0; j < i * 2; ++j) {
      k.variants.emplace("torch2" + std::to_string(j) + "-cxx11-cu12" + std::to_string(j) +
                             "-x86_64-linux",
                         VariantLock{kHash});
    }
    lock.kernels.push_back(k);
  }
  // Keys with every escaping class: controls, DEL, quotes, Latin-1, BMP and astral code points.
  std::mt19937 rng(2026);
  const std::vector<std::pair<char32_t, char32_t>> ranges = {{0x01, 0x1F},     {0x20, 0x7F},
                                                             {0x80, 0x7FF},    {0x800, 0xD7FF},
                                                             {0xE000, 0xFFFD}, {0x10000, 0x10FFFF}};
  KernelLock odd{"org/odd", kSha, {}, std::nullopt};
  for (int n = 0; n < 200; ++n) {
    std::string key;
    for (int c = 0; c < 6; ++c) {
      const auto& [lo, hi] = ranges[rng() % ranges.size()];
      const char32_t cp = lo + rng() % (hi - lo + 1);
      if (cp < 0x80) {
        key += static_cast<char>(cp);
      } else if (cp < 0x800) {
        key += static_cast<char>(0xC0 | (cp >> 6));
        key += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        key += static_cast<char>(0xE0 | (cp >> 12));
        key += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        key += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        key += static_cast<char>(0xF0 | (cp >> 18));
        key += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        key += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        key += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    odd.variants.emplace(key, VariantLock{kHash});
  }
  lock.kernels.push_back(odd);
  const std::string ours = serialize_lockfile(lock);
  kernels::test::spit(dir / "ours.json", ours);
  const std::string script =
      "import json,sys\n"
      "d=json.load(open(sys.argv[1]))\n"
      "for e in d: e['variants']=dict(sorted(e['variants'].items()))\n"
      "sys.stdout.write(json.dumps(d, indent=2))\n";
  kernels::test::spit(dir / "ref.py", script);
  const std::string cmd = "python3 " + (dir / "ref.py").string() + " " +
                          (dir / "ours.json").string() + " > " + (dir / "py.json").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(kernels::test::slurp(dir / "py.json") == ours);
}

TEST_CASE("the kernels-data {dependency, lock} list form is read", "[lockfile]") {
  const std::string text = R"([
  {"dependency": {"repo-id": "kernels-community/relu", "version": 1},
   "lock": {"commit": "d649efb56fb249ac8f7a57fa1866728ad0c60e52"}},
  {"dependency": {"repo-id": "kernels-test/versions", "version": 2},
   "lock": {"commit": "f609e51b856b3d874b0ae8445913e200f02c1735"}}
])";
  auto lock = parse_lockfile(text);
  INFO((lock ? std::string() : lock.error().message()));
  REQUIRE(lock.ok());
  CHECK(lock->form == Lockfile::Form::dependency_list);
  REQUIRE(lock->kernels.size() == 2);
  CHECK(lock->kernels[0].repo_id == "kernels-community/relu");
  CHECK(lock->kernels[0].sha == kSha);
  CHECK(lock->kernels[0].version == 1);
  CHECK(lock->kernels[1].version == 2);
  CHECK(lock->kernels[1].variants.empty());
}

TEST_CASE("entry-level unknown keys are ignored, as Python's KernelLock.from_json does",
          "[lockfile]") {
  const std::string text = std::string(R"([{"repo_id": "org/name", "sha": ")") + kSha +
                           R"(", "future": {"x": [1, 2]}, "variants": {}}])";
  auto lock = parse_lockfile(text);
  INFO((lock ? std::string() : lock.error().message()));
  REQUIRE(lock.ok());
  CHECK(lock->kernels[0].repo_id == "org/name");
}

TEST_CASE("a variant without hash_type gets the git_lfs_concat default", "[lockfile]") {
  const std::string text = std::string(R"([{"repo_id": "org/name", "sha": ")") + kSha +
                           R"(", "variants": {"torch-cuda": {"hash": ")" + kHash + R"("}}}])";
  auto lock = parse_lockfile(text);
  REQUIRE(lock.ok());
  CHECK(lock->kernels[0].variants.at("torch-cuda").hash_type == "git_lfs_concat");
}

TEST_CASE("write_lockfile then read_lockfile gives the same lock and the same bytes",
          "[lockfile]") {
  kernels::test::ScratchDir dir;
  auto lock = read_lockfile(hf_fixtures() /
                            "kernels@8ac69fc5/kernels/tests/kernel_locking/kernels.lock");
  REQUIRE(lock.ok());
  const auto path = dir / "kernels.lock";
  REQUIRE(write_lockfile(path, *lock).ok());
  auto back = read_lockfile(path);
  REQUIRE(back.ok());
  CHECK(back->kernels == lock->kernels);
  CHECK(slurp(path) == serialize_lockfile(*lock));
  CHECK(kernels::test::count_files_containing(dir.path(), ".incomplete") == 0);
}

TEST_CASE("a missing kernels.lock is lockfile_missing with a hint", "[lockfile]") {
  kernels::test::ScratchDir dir;
  auto lock = read_lockfile(dir / "kernels.lock");
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().code == ErrorCode::lockfile_missing);
  CHECK(lock.error().hint.find("kernels lock") != std::string::npos);
}

TEST_CASE("validators: commit sha, variant hash and repo id", "[lockfile]") {
  CHECK(is_commit_sha(kSha));
  CHECK_FALSE(is_commit_sha("D649EFB56FB249AC8F7A57FA1866728AD0C60E52"));
  CHECK_FALSE(is_commit_sha("d649efb"));
  CHECK(is_variant_hash(kHash));
  CHECK_FALSE(is_variant_hash(std::string(kHash).substr(7)));
  CHECK_FALSE(is_variant_hash(std::string(kHash) + "0"));
  for (const char* good : {"kernels-community/relu", "org/name", "a_b/c.d", "A1/b-2"}) {
    INFO(good);
    CHECK(is_repo_id(good));
  }
  for (const char* bad :
       {"name", "/name", "org/", "a/b/c", "org--x/name", "org/na..me", "-org/name", "org/name-",
        "../etc", "org/.hidden", "or g/name", "org/na\\me", ""}) {
    INFO(bad);
    CHECK_FALSE(is_repo_id(bad));
  }
}
