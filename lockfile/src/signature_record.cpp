#include "kernels/lockfile/signature_record.h"

#include "file_read.h"
#include "json_doc.h"
#include "kernels/lockfile/digest.h"

namespace kernels {
namespace {

using json::Value;

constexpr std::size_t kMaxRecordBytes = 64 * 1024;

class RecordReader {
 public:
  RecordReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Error at(std::size_t offset, std::string what) const {
    return make_error(ErrorCode::lockfile_invalid, std::move(what),
                      json::location(text_, source_, offset),
                      "re-run `kernels download --require-signatures` to write it again");
  }

  Result<const Value*> key(const Value& obj, std::string_view name, Value::Type type) const {
    const Value* v = obj.find(name);
    if (v == nullptr) return at(obj.offset, "missing \"" + std::string(name) + "\"");
    if (v->type != type)
      return at(v->offset, "expected \"" + std::string(name) + "\" to be " + json::type_name(type) +
                               ", found " + json::type_name(v->type));
    return v;
  }

  Result<std::string> text(const Value& obj, std::string_view name) const {
    auto v = key(obj, name, Value::Type::string);
    if (!v) return std::move(v).error();
    return (*v)->text;
  }

  Result<std::uint64_t> number(const Value& obj, std::string_view name) const {
    auto v = key(obj, name, Value::Type::number);
    if (!v) return std::move(v).error();
    if (!(*v)->as_uint64())
      return at((*v)->offset,
                "expected \"" + std::string(name) + "\" to be a non-negative integer");
    return *(*v)->as_uint64();
  }

 private:
  std::string_view text_;
  std::string_view source_;
};

SignatureCheck rejected(std::string what, const std::string& object) {
  SignatureCheck c;
  c.state = SignatureCheck::State::rejected;
  c.why = make_error(ErrorCode::integrity_mismatch, std::move(what), object,
                     "run `kernels download --require-signatures` for this project to verify the "
                     "signature and record it again");
  return c;
}

}  // namespace

std::string signature_record_text(const SignatureRecord& r) {
  auto line = [](std::string_view key, const std::string& value, bool last = false) {
    return "  " + json::quote(key) + ": " + value + (last ? "\n" : ",\n");
  };
  return "{\n" + line("format", std::to_string(kSignatureRecordFormat)) +
         line("repo_id", json::quote(r.repo_id)) + line("commit", json::quote(r.commit)) +
         line("variant", json::quote(r.variant)) + line("verified", r.verified ? "true" : "false") +
         line("metadata_sha256", json::quote(r.metadata_sha256)) +
         line("issuer", json::quote(r.issuer)) +
         line("source_repository", json::quote(r.source_repository)) +
         line("build_signer_uri", json::quote(r.build_signer_uri)) +
         line("subject_alt_name", json::quote(r.subject_alt_name)) +
         line("integrated_time", std::to_string(r.integrated_time)) +
         line("log_url", json::quote(r.log_url)) + line("log_index", std::to_string(r.log_index)) +
         line("trusted_root", json::quote(r.trusted_root), true) + "}\n";
}

Result<SignatureRecord> parse_signature_record(std::string_view text, std::string_view source) {
  auto doc = json::parse(text, source);
  if (!doc) return std::move(doc).error();
  const RecordReader in(text, source);
  const Value& root = *doc;
  if (root.type != Value::Type::object)
    return in.at(root.offset, std::string("expected a signature record object, found ") +
                                  json::type_name(root.type));
  auto format = in.number(root, "format");
  if (!format) return std::move(format).error();
  if (*format != kSignatureRecordFormat)
    return in.at(root.find("format")->offset,
                 "format " + std::to_string(*format) + " is not this program's " +
                     std::to_string(kSignatureRecordFormat) +
                     (*format < kSignatureRecordFormat
                          ? " (older records do not name the metadata.json digest)"
                          : ""));
  SignatureRecord r;
  auto verified = in.key(root, "verified", Value::Type::boolean);
  if (!verified) return std::move(verified).error();
  r.verified = (*verified)->boolean;
  struct TextKey {
    std::string_view name;
    std::string* out;
  };
  for (const TextKey& k :
       {TextKey{"repo_id", &r.repo_id}, TextKey{"commit", &r.commit},
        TextKey{"variant", &r.variant}, TextKey{"metadata_sha256", &r.metadata_sha256},
        TextKey{"issuer", &r.issuer}, TextKey{"source_repository", &r.source_repository},
        TextKey{"build_signer_uri", &r.build_signer_uri},
        TextKey{"subject_alt_name", &r.subject_alt_name}, TextKey{"log_url", &r.log_url},
        TextKey{"trusted_root", &r.trusted_root}}) {
    auto v = in.text(root, k.name);
    if (!v) return std::move(v).error();
    *k.out = std::move(*v);
  }
  if (!is_lower_hex(r.metadata_sha256, 64))
    return in.at(root.find("metadata_sha256")->offset,
                 "expected \"metadata_sha256\" to be 64 lowercase hex digits");
  auto time = in.number(root, "integrated_time");
  if (!time) return std::move(time).error();
  r.integrated_time = *time;
  auto index = in.number(root, "log_index");
  if (!index) return std::move(index).error();
  r.log_index = *index;
  return r;
}

SignatureCheck check_signature_record(const CacheLayout& cache, std::string_view repo_id,
                                      std::string_view commit, std::string_view variant,
                                      std::span<const std::uint8_t> metadata_json) {
  const std::filesystem::path path = cache.signature_record_path(repo_id, commit, variant);
  const std::string object = path.string();
  Result<std::string> text = read_small_file(path, kMaxRecordBytes, ErrorCode::offline_not_cached);
  if (!text && text.error().code == ErrorCode::offline_not_cached) {
    SignatureCheck c;
    c.state = SignatureCheck::State::no_record;
    c.why = make_error(ErrorCode::integrity_mismatch,
                       "no verified signature is recorded for " + std::string(repo_id) + "@" +
                           std::string(commit) + " variant " + std::string(variant),
                       object,
                       "run `kernels download --require-signatures` (or set "
                       "[tool.kernels.signatures] require = true) so the signature is verified "
                       "and recorded; a variant without metadata.json.sigstore cannot be");
    return c;
  }
  if (!text) return rejected("the record cannot be read: " + text.error().message(), object);
  Result<SignatureRecord> record = parse_signature_record(*text, object);
  if (!record)
    return rejected("the record is not valid: " + record.error().what, record.error().object);
  auto differs = [&](std::string_view what, const std::string& found, std::string_view want) {
    return rejected("the record is for " + std::string(what) + " " + printable_bytes(found) +
                        ", not " + std::string(want),
                    object);
  };
  if (record->repo_id != repo_id) return differs("repo", record->repo_id, repo_id);
  if (record->commit != commit) return differs("commit", record->commit, commit);
  if (record->variant != variant) return differs("variant", record->variant, variant);
  if (!record->verified) return rejected("the record does not say the signature verified", object);
  Sha256 sha;
  sha.update(metadata_json);
  const std::string held = sha.finish_hex();
  if (record->metadata_sha256 != held)
    return rejected("the record vouches for a metadata.json with SHA-256 " +
                        record->metadata_sha256 + ", the cached metadata.json hashes to " + held,
                    object);
  SignatureCheck c;
  c.state = SignatureCheck::State::verified;
  c.record = std::move(*record);
  return c;
}

}  // namespace kernels
