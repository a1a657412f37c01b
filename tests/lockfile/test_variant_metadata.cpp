// metadata.json as kernels 0.17.2 parses it, and its per-file digest (hf-kernels-017.md §2.1,
// §2.3): the rule for which files are covered, the base64 digests, and kernels' violation texts.
#include <catch2/catch.hpp>

#include "kernels/lockfile/variant_metadata.h"
#include "support.h"

using namespace kernels;
using kernels::test::hf_fixtures;
using kernels::test::slurp;
using kernels::test::spit;

namespace {

std::string meta_with(const std::string& extra) {
  return R"({"name": "relu", "id": "_relu_cuda_1a2b3c4", "version": 1, "license": "MIT",
             "python-depends": [], "backend": {"type": "cuda", "archs": ["9.0a"]})" +
         extra + "}";
}

std::string error_of(const std::string& text) {
  auto m = parse_variant_metadata(text);
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().code == ErrorCode::lockfile_invalid);
  return m.error().message();
}

}  // namespace

TEST_CASE("base64 SHA-256/512 match kernels' own test vectors", "[lockfile][metadata]") {
  CHECK(base64_digest("hello world", DigestAlgorithm::sha256) ==
        "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
  CHECK(base64_digest("hello world", DigestAlgorithm::sha512) ==
        "MJ7MSJwS1utMxA9QyQLytNDtd+5RGnx6m808qG1M2G+YndNbxf9JlnDaNCVbRbDP2DDoH2Bdz33FVC6TrpzXbw==");
  CHECK(base64_digest("", DigestAlgorithm::sha256) ==
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST_CASE("a real metadata.json from the Hub parses with its digest", "[lockfile][metadata]") {
  const auto path = hf_fixtures() /
                    "kernels@8ac69fc5/kernels-data/tests/data/legacy-sha-provenance.json";
  auto m = parse_variant_metadata(slurp(path), path.string());
  INFO((m ? std::string() : m.error().message()));
  REQUIRE(m.ok());
  CHECK(m->name == "einops");
  CHECK(m->id == "_einops_cpu_d45adda");
  CHECK(m->backend_type == "cpu");
  CHECK(m->upstream == "https://github.com/arogozhnikov/einops.git");
  REQUIRE(m->digest);
  CHECK(m->digest->algorithm == DigestAlgorithm::sha256);
  CHECK(m->digest->files.size() == 18);
  CHECK(m->digest->files.at("experimental/__init__.py") ==
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST_CASE("metadata.json is refused where kernels 0.17.2 refuses it, and read where it reads it",
          "[lockfile][metadata]") {
  CHECK(parse_variant_metadata(meta_with(R"(, "future-key": {"x": 1}, "kernels-minver": "0.17.0")"))
            .ok());
  auto deps = parse_variant_metadata(meta_with(
      R"(, "kernel-depends": [{"repo-id": "acme/relu", "version": 3}, {"repo-id": "acme/x", "revision": "abc"}])"));
  REQUIRE(deps.ok());
  REQUIRE(deps->kernel_depends.size() == 2);
  CHECK(deps->kernel_depends[0].version == 3u);
  CHECK(deps->kernel_depends[1].revision == "abc");
  CHECK(parse_variant_metadata(R"({"name": "relu", "id": "x", "version": 1, "license": "",
      "python-depends": [], "backend": {"type": "tpu"}})")
            .ok());

  CHECK_THAT(error_of(meta_with(R"(, "kernels-minver": "0.17")")),
             Catch::Contains("three numbers"));
  CHECK_THAT(error_of(meta_with(R"(, "kernels-minver": "0.17.0rc1")")),
             Catch::Contains("three numbers"));
  CHECK_THAT(error_of(meta_with(R"(, "kernels-minver": 17)")), Catch::Contains("to be a string"));
  CHECK_THAT(error_of(meta_with(R"(, "kernel-depends": null)")), Catch::Contains("to be a list"));
  CHECK_THAT(error_of(
                 meta_with(R"(, "kernel-depends": [{"repo-id": "a/b", "version": 1, "x": 1}])")),
             Catch::Contains("unknown key \"x\""));
  CHECK_THAT(error_of(meta_with(
                 R"(, "kernel-depends": [{"repo-id": "a/b", "version": 1, "revision": "r"}])")),
             Catch::Contains("mutually exclusive"));
  CHECK_THAT(error_of(meta_with(R"(, "digest": {"algorithm": "SHA256", "files": {}})")),
             Catch::Contains("unknown digest algorithm"));
  CHECK_THAT(error_of(meta_with(
                 R"(, "provenance": {"kernel-builder": {"version": "1", "commit": "abc"}})")),
             Catch::Contains("needs both"));
  CHECK_THAT(error_of(R"({"name": "Bad_Name", "id": "x", "version": 1, "license": "",
      "python-depends": [], "backend": {"type": "cuda"}})"),
             Catch::Contains("Invalid kernel name"));
  CHECK_THAT(error_of(R"({"name": "relu", "id": "x", "version": 1, "license": "",
      "python-depends": [], "backend": {"type": "gpu"}})"),
             Catch::Contains("unknown backend type"));
  CHECK_THAT(error_of(R"({"name": "relu", "version": 1, "license": "",
      "python-depends": [], "backend": {"type": "cuda"}})"),
             Catch::Contains("missing key \"id\""));
}

TEST_CASE("the digest covers what kernels hashes: metadata.json only at the top, no bytecode",
          "[lockfile][metadata]") {
  CHECK_FALSE(is_digest_covered("metadata.json"));
  CHECK_FALSE(is_digest_covered("metadata.json.sigstore"));
  CHECK(is_digest_covered("sub/metadata.json"));
  CHECK_FALSE(is_digest_covered("x.pyc"));
  CHECK_FALSE(is_digest_covered("__pycache__/x.py"));
  CHECK(is_digest_covered("_ops.py"));
}

TEST_CASE("a variant directory is checked against its digest with kernels' messages, in its order",
          "[lockfile][metadata]") {
  // The observed 0.17.2 vector (hf-kernels-017.md §2.3).
  kernels::test::ScratchDir dir;
  const auto v = dir / "torch-cuda";
  spit(v / "_ops.py", "import torch\n");
  spit(v / "sub/a.py", "");
  spit(v / "B.txt", "B");
  spit(v / "_.txt", "under");
  spit(v / "metadata.json", "{}");
  spit(v / "__pycache__/x.pyc", "bytecode");
  VariantDigest digest;
  digest.files = {{"B.txt", "335w5QIVRPSDS77mSp43if68S+gUcN9inK1t2wMyClw="},
                  {"_.txt", "12d0imA3mchTGdugKlg7P9viiuX4Ky6HLWu2bPEE5iw="},
                  {"_ops.py", "uRo7xeIGTQJaiuEiVVyWlI7FtIldU9gJxLZrcaSRUTM="},
                  {"sub/a.py", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}};
  CHECK(check_variant_digest(v, digest).empty());
  CHECK(check_digest_paths(digest, {"B.txt", "_.txt", "_ops.py", "sub/a.py", "metadata.json"})
            .empty());

  spit(v / "B.txt", "changed");
  spit(v / "new.txt", "x");
  std::filesystem::remove(v / "sub/a.py");
  std::vector<std::string> messages;
  for (const DigestViolation& d : check_variant_digest(v, digest)) messages.push_back(d.message());
  CHECK(messages == std::vector<std::string>{"File hash mismatch for B.txt: expected: "
                                             "335w5QIVRPSDS77mSp43if68S+gUcN9inK1t2wMyClw=, got: " +
                                                 base64_digest("changed", DigestAlgorithm::sha256),
                                             "Missing file: sub/a.py", "Unknown file: new.txt"});
  auto one = check_digest_file(digest, "_ops.py", v / "_ops.py");
  CHECK_FALSE(one);
  auto other = check_digest_file(digest, "new.txt", v / "new.txt");
  REQUIRE(other);
  CHECK(other->kind == DigestViolation::Kind::unknown);
}
