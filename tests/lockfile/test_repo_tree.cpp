// Tree listings from the Hub and the cache's trees/<commit>.json (huggingface_hub format 1).
#include <catch2/catch.hpp>

#include "kernels/lockfile/repo_tree.h"
#include "support.h"
#include "support/skip.h"
#include "vectors.h"

using namespace kernels;

namespace {

const std::string kOid = "dc08351d4dc0732d9c8af04070ced089b201ce2f";
const std::string kLfs = "097417381d6c7230bd9e3557456d726de6e83245ec8b24f529f60198a67b203a";

RepoTree sample_tree() {
  return {
      {"pytorch_model.bin", true, "ba5d19791be1dd7992e33bd61f20207b0f7f50a5", 440473133,
       LfsInfo{kLfs, 440473133, 134}, "xet-abc"},
      {".gitattributes", true, kOid, 345, std::nullopt, {}},
      {"build", false, "80754af91bfb6d1073585b046fe0a474ce868509", 0, std::nullopt, {}},
  };
}

}  // namespace

TEST_CASE("a real-shaped Hub listing parses, ignoring unknown keys", "[repo_tree]") {
  const std::string json =
      R"([{"type":"file","oid":"dc08351d4dc0732d9c8af04070ced089b201ce2f","size":345,"path":".gitattributes",)"
      R"("lastCommit":{"id":"x","title":"t","date":"2020"},"securityFileStatus":{"status":"safe"}},)"
      R"({"type":"file","oid":"ba5d19791be1dd7992e33bd61f20207b0f7f50a5","size":440473133,"path":"pytorch_model.bin",)"
      R"("lfs":{"oid":"097417381d6c7230bd9e3557456d726de6e83245ec8b24f529f60198a67b203a","size":440473133,"pointerSize":134},"xetHash":"xet-abc"},)"
      R"({"type":"directory","oid":"80754af91bfb6d1073585b046fe0a474ce868509","size":0,"path":"build"}])";
  auto tree = parse_tree_listing(json, "tree.json");
  INFO((tree ? std::string() : tree.error().message()));
  REQUIRE(tree.ok());
  REQUIRE(tree->size() == 3);
  CHECK((*tree)[0].digest().kind == FileDigest::Kind::git_sha1);
  CHECK((*tree)[0].digest().hex == kOid);
  CHECK((*tree)[1].digest().kind == FileDigest::Kind::sha256);
  CHECK((*tree)[1].digest().hex == kLfs);
  CHECK((*tree)[1].content_size() == 440473133u);
  CHECK((*tree)[1].lfs->pointer_size == 134u);
  CHECK((*tree)[1].xet_hash == "xet-abc");
  CHECK_FALSE((*tree)[2].is_file);
}

TEST_CASE("serialize_tree_listing round-trips through parse_tree_listing", "[repo_tree]") {
  auto back = parse_tree_listing(serialize_tree_listing(sample_tree()), "x");
  REQUIRE(back.ok());
  CHECK(*back == sample_tree());
}

TEST_CASE("unsafe paths and malformed oids in a listing are errors", "[repo_tree]") {
  for (const char* path :
       {"../etc/passwd", "/abs", "a//b", "a/./b", "a\\\\b", "", "a/../b", "a/\\u0001"}) {
    const std::string json = std::string(R"([{"type":"file","oid":")") + kOid +
                             R"(","size":1,"path":")" + path + R"("}])";
    INFO(json);
    auto r = parse_tree_listing(json, "tree.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.find("unsafe path") != std::string::npos);
    CHECK(r.error().object == "tree.json:1:2");
  }
  auto bad_oid = parse_tree_listing(R"([{"type":"file","oid":"XYZ","size":1,"path":"a"}])", "t");
  REQUIRE_FALSE(bad_oid.ok());
  CHECK(bad_oid.error().what.find("40 lowercase hex") != std::string::npos);
  auto bad_lfs = parse_tree_listing(std::string(R"([{"type":"file","oid":")") + kOid +
                                        R"(","size":1,"path":"a","lfs":{"oid":"abc","size":1}}])",
                                    "t");
  REQUIRE_FALSE(bad_lfs.ok());
  CHECK(bad_lfs.error().what.find("64 lowercase hex") != std::string::npos);
  auto neg = parse_tree_listing(std::string(R"([{"type":"file","oid":")") + kOid +
                                    R"(","size":-1,"path":"a"}])",
                                "t");
  REQUIRE_FALSE(neg.ok());
  CHECK(neg.error().what.find("non-negative integer") != std::string::npos);
}

// Regression (issue 12, defect 11): a listing that names a path twice was hashed with both
// entries, while the tree cache kept one: `verify` then disagreed with the download.
TEST_CASE("a listing that names a path twice is an error", "[repo_tree]") {
  const std::string entry = std::string(R"({"type":"file","oid":")") + kOid +
                            R"(","size":1,"path":"build/x/a.py"})";
  auto twice = parse_tree_listing("[" + entry + "," + entry + "]", "tree.json");
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().code == kernels::ErrorCode::lockfile_invalid);
  CHECK(twice.error().what.find("listed twice") != std::string::npos);
  auto dir_and_file = parse_tree_listing(R"([{"type":"directory","oid":")" + std::string(kOid) +
                                             R"(","size":0,"path":"build/x/a.py"},)" + entry + "]",
                                         "tree.json");
  CHECK_FALSE(dir_and_file.ok());
}

TEST_CASE("is_safe_repo_path accepts nested relative paths only", "[repo_tree]") {
  CHECK(is_safe_repo_path("build/torch-cuda/__init__.py"));
  CHECK(is_safe_repo_path(".gitattributes"));
  CHECK(is_safe_repo_path("a..b/c"));
  for (const char* bad : {"", "/", "/a", "a/", "a//b", ".", "..", "a/..", "./a", "a\\b", "a\nb"}) {
    INFO(bad);
    CHECK_FALSE(is_safe_repo_path(bad));
  }
  CHECK_FALSE(is_safe_repo_path(std::string("a\0b", 3)));
  CHECK_FALSE(is_safe_repo_path(std::string(300, 'x')));
}

TEST_CASE("trees/<commit>.json is written exactly as huggingface_hub writes it", "[repo_tree]") {
  const std::string expected =
      "{\n"
      " \"format_version\": 1,\n"
      " \"files\": {\n"
      "  \".gitattributes\": {\n"
      "   \"size\": 345,\n"
      "   \"blob_id\": \"" +
      kOid +
      "\"\n"
      "  },\n"
      "  \"pytorch_model.bin\": {\n"
      "   \"size\": 440473133,\n"
      "   \"blob_id\": \"ba5d19791be1dd7992e33bd61f20207b0f7f50a5\",\n"
      "   \"lfs_sha256\": \"" +
      kLfs +
      "\",\n"
      "   \"lfs_size\": 440473133,\n"
      "   \"xet_hash\": \"xet-abc\"\n"
      "  }\n"
      " }\n"
      "}";
  CHECK(serialize_tree_cache(sample_tree()) == expected);
  CHECK(serialize_tree_cache({}) == "{\n \"format_version\": 1,\n \"files\": {}\n}");
}

TEST_CASE("the tree cache matches Python's json.dump(indent=1) for the vector tree",
          "[repo_tree]") {
  if (std::system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
    KERNELS_SKIP("python3 is not available to produce the reference bytes");
  }
  kernels::test::ScratchDir dir;
  auto tree = parse_tree_listing(kernels::test::hash_vectors()["hub_tree_listing_recursive"].dump(),
                                 "vectors");
  REQUIRE(tree.ok());
  kernels::test::spit(dir / "listing.json", serialize_tree_listing(*tree));
  // The to_json rule of huggingface_hub _tree_cache.py, files sorted by path.
  kernels::test::spit(
      dir / "ref.py",
      "import json,sys\n"
      "files={}\n"
      "for e in json.load(open(sys.argv[1])):\n"
      "  if e['type']!='file': continue\n"
      "  info={'size':e['size'],'blob_id':e['oid']}\n"
      "  if 'lfs' in e: info['lfs_sha256']=e['lfs']['oid']; info['lfs_size']=e['lfs']['size']\n"
      "  if 'xetHash' in e: info['xet_hash']=e['xetHash']\n"
      "  files[e['path']]=info\n"
      "data={'format_version':1,'files':{p:files[p] for p in sorted(files)}}\n"
      "sys.stdout.write(json.dumps(data, indent=1))\n");
  const std::string cmd = "python3 " + (dir / "ref.py").string() + " " +
                          (dir / "listing.json").string() + " > " + (dir / "py.json").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(serialize_tree_cache(*tree) == kernels::test::slurp(dir / "py.json"));
}

TEST_CASE("the tree cache round-trips and rejects other format versions", "[repo_tree]") {
  RepoTree files_only = sample_tree();
  files_only.pop_back();
  auto back = parse_tree_cache(serialize_tree_cache(files_only), "c.json");
  REQUIRE(back.ok());
  REQUIRE(back->size() == 2);
  CHECK((*back)[0].path == ".gitattributes");
  CHECK((*back)[1].lfs->sha256 == kLfs);
  CHECK((*back)[1].lfs->size == 440473133u);
  CHECK((*back)[1].xet_hash == "xet-abc");
  auto v2 = parse_tree_cache(R"({"format_version": 2, "files": {}})", "c.json");
  REQUIRE_FALSE(v2.ok());
  CHECK(v2.error().what.find("format_version 2") != std::string::npos);
  auto unsafe = parse_tree_cache(
      std::string(R"({"format_version": 1, "files": {"../x": {"size": 1, "blob_id": ")") + kOid +
          R"("}}})",
      "c.json");
  REQUIRE_FALSE(unsafe.ok());
  CHECK(unsafe.error().what.find("unsafe path") != std::string::npos);
}
