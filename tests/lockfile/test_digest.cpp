// Streaming SHA-256 and git blob SHA-1 on OpenSSL EVP.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "kernels/lockfile/digest.h"
#include "support.h"
#include "vectors.h"

using namespace kernels;

TEST_CASE("SHA-256 of known inputs (FIPS 180-2 vectors)", "[digest]") {
  Sha256 empty;
  CHECK(empty.finish_hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.update(std::string_view("abc"));
  CHECK(abc.finish_hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("streaming in uneven chunks equals hashing at once", "[digest]") {
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 7));
  Sha256 once;
  once.update(data);
  GitBlobSha1 git_once(data.size());
  git_once.update(data);
  Sha256 chunked;
  GitBlobSha1 git_chunked(data.size());
  std::size_t pos = 0, step = 1;
  while (pos < data.size()) {
    const std::size_t n = std::min(step, data.size() - pos);
    chunked.update(std::string_view(data).substr(pos, n));
    git_chunked.update(std::string_view(data).substr(pos, n));
    pos += n;
    step = step * 3 + 1;
  }
  CHECK(chunked.finish_hex() == once.finish_hex());
  CHECK(*git_chunked.finish_hex() == *git_once.finish_hex());
}

TEST_CASE("git blob sha1 vectors of the fixtures", "[digest]") {
  for (const auto& [content, expected] :
       kernels::test::hash_vectors()["git_blob_sha1_vectors"].items()) {
    INFO("content: " << content);
    GitBlobSha1 h(content.size());
    h.update(content);
    auto hex = h.finish_hex();
    REQUIRE(hex.ok());
    CHECK(*hex == expected.get<std::string>());
  }
}

TEST_CASE("git blob sha1 fails when fed a different size than announced", "[digest]") {
  GitBlobSha1 h(5);
  h.update(std::string_view("abc"));
  auto r = h.finish();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().what.find("fed 3 bytes, expected 5") != std::string::npos);
}

TEST_CASE("hex helpers", "[digest]") {
  const std::uint8_t bytes[] = {0x00, 0xAB, 0xff};
  CHECK(to_hex(bytes) == "00abff");
  CHECK(*hex_to_bytes("00ABff") == std::string("\x00\xab\xff", 3));
  CHECK_FALSE(hex_to_bytes("abc").ok());
  CHECK_FALSE(hex_to_bytes("zz").ok());
  CHECK(is_lower_hex("00abff", 6));
  CHECK_FALSE(is_lower_hex("00ABFF", 6));
  CHECK_FALSE(is_lower_hex("00abff", 5));
}

TEST_CASE("FileDigest::from_etag decides the kind from the length", "[digest]") {
  CHECK(FileDigest::from_etag(std::string(40, 'a'))->kind == FileDigest::Kind::git_sha1);
  CHECK(FileDigest::from_etag(std::string(64, 'b'))->kind == FileDigest::Kind::sha256);
  CHECK_FALSE(FileDigest::from_etag(std::string(63, 'b')).ok());
  CHECK_FALSE(FileDigest::from_etag(std::string(40, 'A')).ok());
  CHECK_FALSE(FileDigest::from_etag("../../etc/passwd").ok());
}

TEST_CASE("check_bytes and check_file name both digests on a mismatch", "[digest]") {
  const std::string hello = "hello world";
  const FileDigest git{FileDigest::Kind::git_sha1, "95d09f2b10159347eece71399a7e2e907ea3df4f"};
  const auto span = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(
                                                      hello.data()),
                                                  hello.size());
  CHECK(check_bytes(span, git, "hello").ok());
  const FileDigest sha{FileDigest::Kind::sha256, std::string(64, '0')};
  auto bad = check_bytes(span, sha, "hello");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::integrity_mismatch);
  CHECK(bad.error().what.find("expected " + std::string(64, '0')) != std::string::npos);
  CHECK(bad.error().what.find(
            "got b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9") !=
        std::string::npos);

  kernels::test::ScratchDir dir;
  kernels::test::spit(dir / "f", hello);
  CHECK(check_file(dir / "f", git).ok());
  CHECK(*sha256_file(dir / "f") ==
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  CHECK(*git_blob_sha1_file(dir / "f") == git.hex);
  auto mismatch = check_file(dir / "f", sha);
  REQUIRE_FALSE(mismatch.ok());
  CHECK(mismatch.error().object == (dir / "f").string());
}

TEST_CASE("check_fd hashes an open file like check_file and refuses a FIFO", "[digest]") {
  const std::string hello = "hello world";
  const FileDigest git{FileDigest::Kind::git_sha1, "95d09f2b10159347eece71399a7e2e907ea3df4f"};
  const FileDigest sha{FileDigest::Kind::sha256,
                       "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"};
  kernels::test::ScratchDir dir;
  kernels::test::spit(dir / "f", hello);
  for (const FileDigest& d : {git, sha}) {
    const int fd = ::open((dir / "f").c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(check_fd(fd, d, "shown").ok());
    ::close(fd);
  }
  const int fd = ::open((dir / "f").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  auto wrong = check_fd(fd, FileDigest{FileDigest::Kind::sha256, std::string(64, '0')}, "shown");
  ::close(fd);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == ErrorCode::integrity_mismatch);
  CHECK(wrong.error().object == "shown");
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  const int fifo = ::open((dir / "fifo").c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(fifo >= 0);
  auto refused = check_fd(fifo, sha, "fifo");
  ::close(fifo);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().what == "not a regular file");
}

TEST_CASE("file hashing refuses FIFOs and reports missing files", "[digest]") {
  kernels::test::ScratchDir dir;
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  auto fifo = sha256_file(dir / "fifo");
  REQUIRE_FALSE(fifo.ok());
  CHECK(fifo.error().what == "not a regular file");
  auto missing = git_blob_sha1_file(dir / "none");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::io);
}

TEST_CASE("ContentDigest fed in chunks gives the digest of the kind it was made for", "[digest]") {
  for (const auto& [content, expected] :
       kernels::test::hash_vectors()["git_blob_sha1_vectors"].items()) {
    INFO("content: " << content);
    ContentDigest git(FileDigest::Kind::git_sha1, content.size());
    ContentDigest sha(FileDigest::Kind::sha256, content.size());
    for (std::size_t i = 0; i < content.size(); i += 3) {
      git.update(std::string_view(content).substr(i, 3));
      sha.update(std::string_view(content).substr(i, 3));
    }
    Sha256 whole;
    whole.update(content);
    CHECK(*git.finish_hex() == expected.get<std::string>());
    CHECK(*sha.finish_hex() == whole.finish_hex());
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(content.data()),
                                              content.size());
    CHECK(ContentDigest::of(bytes, FileDigest::Kind::git_sha1) == expected.get<std::string>());
  }
}

TEST_CASE("ContentDigest of a git sha1 fails when the size was not what it was told", "[digest]") {
  ContentDigest h(FileDigest::Kind::git_sha1, 5);
  h.update(std::string_view("abc"));
  CHECK_FALSE(h.finish_hex().ok());
}
