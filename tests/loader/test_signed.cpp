// KERNELS_REQUIRE_SIGNED=1 over the fake driver: a bundle serves only when the cache records a
// verified signature for exactly its locked commit and variant and for the metadata.json bytes the
// lock verifies (lockfile/signature_record.h); otherwise the built-in kernels serve with one
// warning naming the reason (unsigned, signature_unverified). The record is written with the
// function `kernels download --require-signatures` writes it with; tests_cli checks that download
// writes a record this check accepts ("download --require-signatures: ...").
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/signature_record.h"
#include "loader/harness.h"

using namespace kernels;
using namespace kernels::loader;
using namespace kernels::loader::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kVariant = "cubin-cu130-sm90a";
constexpr const char* kRepo = "kernels-community/attention-fa3";
constexpr const char* kSigner =
    "https://github.com/huggingface/kernels-community/.github/workflows/build.yaml@refs/heads/main";

const std::string kMetadata =
    R"({"name": "attention-fa3", "id": "_attention_fa3_0123abc", "version": 1})";

std::vector<BundleFile> signed_bundle_files(const ManifestSpec& spec = {}) {
  std::vector<BundleFile> files = bundle_files(spec);
  files.push_back({"metadata.json", std::vector<std::uint8_t>(kMetadata.begin(), kMetadata.end())});
  return files;
}

SignatureRecord record_for(const CachedRepo& repo, const std::string& metadata = kMetadata) {
  SignatureRecord r;
  r.repo_id = repo.repo_id;
  r.commit = repo.sha;
  r.variant = kVariant;
  r.verified = true;
  Sha256 sha;
  sha.update(metadata);
  r.metadata_sha256 = sha.finish_hex();
  r.issuer = "https://token.actions.githubusercontent.com";
  r.source_repository = "https://github.com/huggingface/kernels-community";
  r.build_signer_uri = kSigner;
  r.subject_alt_name = kSigner;
  r.integrated_time = 1760000000;
  r.log_url = "https://rekor.sigstore.dev";
  r.log_index = 42;
  r.trusted_root = "built-in";
  return r;
}

void write_record(const Harness& h, const CachedRepo& repo, const std::string& text,
                  const std::string& commit = "") {
  const fs::path path = CacheLayout(h.cache()).signature_record_path(repo.repo_id,
                                                                     commit.empty() ? repo.sha
                                                                                    : commit,
                                                                     kVariant);
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

DeviceSource decide(Harness& h) {
  h.env["KERNELS_REQUIRE_SIGNED"] = "1";
  auto l = h.make();
  REQUIRE(l.ok());
  auto s = (*l)->device_source(0, 3);
  REQUIRE(s.ok());
  return *s;
}

// The built-in kernels serve, and the host heard exactly one warning, naming `reason`.
void check_fallback(Harness& h, const DeviceSource& s, FallbackReason reason,
                    const std::string& needle) {
  INFO(s.why.message());
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == reason);
  CHECK(s.why.code == ErrorCode::integrity_mismatch);
  CHECK(s.why.message().find(needle) != std::string::npos);
  CHECK(h.warnings() == 1);
  CHECK(h.warnings_containing("(" + std::string(fallback_reason_name(reason)) + ")") == 1);
}

}  // namespace

TEST_CASE("KERNELS_REQUIRE_SIGNED: a variant with a matching verified record serves",
          "[loader][signed]") {
  Harness h;
  const CachedRepo repo = add_repo(h.cache(), kRepo, {{kVariant, signed_bundle_files()}});
  write_lock(h.default_lock(), {repo});
  write_record(h, repo, signature_record_text(record_for(repo)));
  const DeviceSource s = decide(h);
  INFO(s.why.message());
  CHECK(s.source == Source::bundle);
  CHECK(s.reason == FallbackReason::none);
  CHECK(s.sha == repo.sha);
  CHECK(s.signer == kSigner);
  CHECK(h.warnings() == 0);
  bool said_signed = false;
  for (const LogLine& line : h.log())
    said_signed |= line.text.find(std::string("signed by ") + kSigner) != std::string::npos;
  CHECK(said_signed);
}

TEST_CASE("KERNELS_REQUIRE_SIGNED: without a record or metadata.json, unsigned",
          "[loader][signed]") {
  Harness h;
  SECTION("no record") {
    const CachedRepo repo = add_repo(h.cache(), kRepo, {{kVariant, signed_bundle_files()}});
    write_lock(h.default_lock(), {repo});
    check_fallback(h, decide(h), FallbackReason::unsigned_bundle,
                   "no verified signature is recorded for " + std::string(kRepo) + "@" + repo.sha);
  }
  SECTION("the variant has no metadata.json") {
    const CachedRepo repo = h.publish_fa3();
    write_record(h, repo, signature_record_text(record_for(repo)));
    check_fallback(h, decide(h), FallbackReason::unsigned_bundle, "has no metadata.json");
  }
  SECTION("without KERNELS_REQUIRE_SIGNED the same unsigned bundle serves") {
    h.publish_fa3();
    auto l = h.make();
    REQUIRE(l.ok());
    auto s = (*l)->device_source(0, 3);
    REQUIRE(s.ok());
    CHECK(s->source == Source::bundle);
    CHECK(s->signer.empty());
  }
}

TEST_CASE(
    "KERNELS_REQUIRE_SIGNED: a record that does not vouch for these bytes, signature_unverified",
    "[loader][signed]") {
  Harness h;
  const CachedRepo repo = add_repo(h.cache(), kRepo, {{kVariant, signed_bundle_files()}});
  write_lock(h.default_lock(), {repo});
  SignatureRecord r = record_for(repo);
  SECTION("the record names another metadata.json (tampered record or changed metadata)") {
    r = record_for(repo, kMetadata + " ");
    write_record(h, repo, signature_record_text(r));
    check_fallback(h, decide(h), FallbackReason::signature_unverified,
                   "the cached metadata.json hashes to");
  }
  SECTION("the record of another commit, copied to this commit's place") {
    r.commit = std::string(40, 'a');
    write_record(h, repo, signature_record_text(r));
    check_fallback(h, decide(h), FallbackReason::signature_unverified,
                   "the record is for commit " + std::string(40, 'a') + ", not " + repo.sha);
  }
  SECTION("a record only for another commit is no record for this one") {
    write_record(h, repo, signature_record_text(r), std::string(40, 'b'));
    check_fallback(h, decide(h), FallbackReason::unsigned_bundle, "no verified signature");
  }
  SECTION("the record of another variant") {
    r.variant = "cubin-cu130-sm100a";
    write_record(h, repo, signature_record_text(r));
    check_fallback(h, decide(h), FallbackReason::signature_unverified,
                   "the record is for variant cubin-cu130-sm100a");
  }
  SECTION("a record that says not verified") {
    r.verified = false;
    write_record(h, repo, signature_record_text(r));
    check_fallback(h, decide(h), FallbackReason::signature_unverified,
                   "does not say the signature verified");
  }
  SECTION("a format 1 record (no metadata digest)") {
    std::string text = signature_record_text(r);
    text.replace(text.find("\"format\": 2"), 11, "\"format\": 1");
    write_record(h, repo, text);
    check_fallback(h, decide(h), FallbackReason::signature_unverified, "format 1");
  }
  SECTION("a record that is not JSON") {
    write_record(h, repo, "{\"format\": 2,");
    check_fallback(h, decide(h), FallbackReason::signature_unverified, "the record is not valid");
  }
}

TEST_CASE("KERNELS_REQUIRE_SIGNED: a signed bundle that fails a later check names no signer",
          "[loader][signed]") {
  Harness h;
  const CachedRepo repo = add_repo(h.cache(), kRepo,
                                   {{kVariant, signed_bundle_files({.params_abi = 999})}});
  write_lock(h.default_lock(), {repo});
  write_record(h, repo, signature_record_text(record_for(repo)));
  const DeviceSource s = decide(h);
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == FallbackReason::abi_mismatch);
  CHECK(s.signer.empty());
  CHECK(h.warnings() == 1);
}
