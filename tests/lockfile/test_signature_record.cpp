// The signature record (lockfile/signature_record.h): written and read back field for field, read
// strictly (a missing key, another format, a digest that is not hex are errors naming the key), and
// checked against the bytes the reader holds. The loader's decision over it is in tests_loader
// [signed]; what `download --require-signatures` writes, in tests_cli test_verify_signature.cpp.
#include <catch2/catch.hpp>

#include <string>

#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/signature_record.h"
#include "support.h"

using namespace kernels;

namespace {

SignatureRecord sample() {
  SignatureRecord r;
  r.repo_id = "acme/relu";
  r.commit = std::string(40, 'c');
  r.variant = "torch-cpu";
  r.verified = true;
  r.metadata_sha256 = std::string(64, 'e');
  r.issuer = "https://token.actions.githubusercontent.com";
  r.source_repository = "https://github.com/acme/kernels";
  r.build_signer_uri = "https://github.com/acme/kernels/.github/workflows/b.yaml@refs/heads/main";
  r.subject_alt_name = "\"quoted\" \\ name";
  r.integrated_time = 1760000000;
  r.log_url = "https://rekor.sigstore.dev";
  r.log_index = 123456789012ull;
  r.trusted_root = "built-in";
  return r;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a signature record reads back as written", "[signature_record]") {
  const SignatureRecord w = sample();
  const std::string text = signature_record_text(w);
  CHECK(text.find("\"format\": 2,\n") != std::string::npos);
  auto r = parse_signature_record(text, "record.json");
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  CHECK(r->repo_id == w.repo_id);
  CHECK(r->commit == w.commit);
  CHECK(r->variant == w.variant);
  CHECK(r->verified);
  CHECK(r->metadata_sha256 == w.metadata_sha256);
  CHECK(r->issuer == w.issuer);
  CHECK(r->source_repository == w.source_repository);
  CHECK(r->build_signer_uri == w.build_signer_uri);
  CHECK(r->subject_alt_name == w.subject_alt_name);
  CHECK(r->integrated_time == w.integrated_time);
  CHECK(r->log_url == w.log_url);
  CHECK(r->log_index == w.log_index);
  CHECK(r->trusted_root == w.trusted_root);
}

TEST_CASE("a signature record is read strictly, naming what is wrong", "[signature_record]") {
  const std::string good = signature_record_text(sample());
  struct Bad {
    std::string text;
    std::string says;
  };
  const Bad bad[] = {
      {replaced(good, "\"format\": 2", "\"format\": 1"), "format 1 is not this program's 2"},
      {replaced(good, "\"format\": 2", "\"format\": 3"), "format 3"},
      {replaced(good, "  \"issuer\"", "  \"issuer_\""), "missing \"issuer\""},
      {replaced(good, "\"verified\": true", "\"verified\": \"yes\""),
       "\"verified\" to be a boolean, found a string"},
      {replaced(good, std::string(64, 'e'), std::string(64, 'E')), "64 lowercase hex digits"},
      {replaced(good, "\"log_index\": 123456789012", "\"log_index\": -1"), "non-negative"},
      {"[]", "expected a signature record object"},
      {"{", ""},
  };
  for (const Bad& b : bad) {
    auto r = parse_signature_record(b.text, "record.json");
    INFO(b.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::lockfile_invalid);
    CHECK(r.error().message().find(b.says) != std::string::npos);
    CHECK(r.error().object.rfind("record.json:", 0) == 0);
  }
}

TEST_CASE("check_signature_record: verified only for the bytes the record names",
          "[signature_record]") {
  test::ScratchDir dir;
  const CacheLayout cache(dir.path());
  const std::string metadata = "{\"name\": \"relu\"}";
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(metadata.data()),
                                            metadata.size());
  SignatureRecord r = sample();
  Sha256 sha;
  sha.update(metadata);
  r.metadata_sha256 = sha.finish_hex();

  SignatureCheck none = check_signature_record(cache, r.repo_id, r.commit, r.variant, bytes);
  CHECK(none.state == SignatureCheck::State::no_record);
  CHECK(none.why.hint.find("--require-signatures") != std::string::npos);

  test::spit(cache.signature_record_path(r.repo_id, r.commit, r.variant), signature_record_text(r));
  SignatureCheck ok = check_signature_record(cache, r.repo_id, r.commit, r.variant, bytes);
  REQUIRE(ok.state == SignatureCheck::State::verified);
  CHECK(ok.record->build_signer_uri == r.build_signer_uri);

  const std::string other = metadata + "\n";
  SignatureCheck changed = check_signature_record(
      cache, r.repo_id, r.commit, r.variant,
      std::span(reinterpret_cast<const std::uint8_t*>(other.data()), other.size()));
  CHECK(changed.state == SignatureCheck::State::rejected);
  CHECK(changed.why.code == ErrorCode::integrity_mismatch);
  CHECK(changed.why.what.find("the cached metadata.json hashes to") != std::string::npos);
}
