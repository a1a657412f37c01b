#include "kernels/lockfile/variant_metadata.h"

#include <algorithm>
#include <set>
#include <system_error>

#include "file_read.h"
#include "json_doc.h"
#include "kernels/lockfile/git_url.h"
#include "kernels/lockfile/repo_id.h"
#include "kernels/lockfile/variant_files.h"
#include "lock_json_reader.h"

namespace kernels {
namespace {

using json::Value;

// kernels-common config/name.rs: ^[a-z][-a-z0-9]*[a-z0-9]$
bool is_kernel_name(std::string_view s) {
  if (s.size() < 2 || s.front() < 'a' || s.front() > 'z' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool is_three_numbers(std::string_view s) {
  int parts = 0;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    const std::string_view part = s.substr(start, end - start);
    if (part.empty() ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    ++parts;
    start = end + 1;
  }
  return parts == 3;
}

class MetadataReader : detail::LockJsonReader {
 public:
  using LockJsonReader::LockJsonReader;

  Result<VariantMetadata> read() const {
    auto doc = json::parse(text(), source());
    if (!doc) return std::move(doc).error();
    const Value& root = *doc;
    if (root.type != Value::Type::object) {
      return at(root.offset,
                std::string("expected a metadata object, found ") + json::type_name(root.type));
    }
    VariantMetadata m;
    auto name = string_key(root, "name", true);
    if (!name) return std::move(name).error();
    m.name = **name;
    if (!is_kernel_name(m.name)) {
      return at(root.find("name")->offset,
                "Invalid kernel name " + shown(m.name) +
                    ": it must start with a lowercase letter, end with a letter or digit, and hold "
                    "only lowercase letters, digits and '-'");
    }
    auto id = string_key(root, "id", true);
    if (!id) return std::move(id).error();
    m.id = **id;
    auto version = required(root, "version", Value::Type::number, "metadata");
    if (!version) return std::move(version).error();
    if (!(*version)->as_uint64()) {
      return at((*version)->offset,
                "expected \"version\" to be a non-negative integer, got " + shown(**version));
    }
    m.version = *(*version)->as_uint64();
    auto minver = string_key(root, "kernels-minver", false);
    if (!minver) return std::move(minver).error();
    if (*minver) {
      if (!is_three_numbers(**minver)) {
        return at(root.find("kernels-minver")->offset,
                  "expected \"kernels-minver\" to be a version of three numbers (X.Y.Z), got " +
                      shown(**minver));
      }
      m.kernels_minver = **minver;
    }
    auto license = string_key(root, "license", true);
    if (!license) return std::move(license).error();
    m.license = **license;
    for (auto [key, out] : {std::pair{"upstream", &m.upstream}, std::pair{"source", &m.source}}) {
      auto v = string_key(root, key, false);
      if (!v) return std::move(v).error();
      if (!*v) continue;
      Result<std::string> url = normalize_git_url(**v);
      if (!url) {
        return at(root.find(key)->offset, "\"" + std::string(key) + "\": " + url.error().what);
      }
      *out = std::move(*url);
    }
    auto py = required(root, "python-depends", Value::Type::array, "metadata");
    if (!py) return std::move(py).error();
    for (const Value& d : (*py)->items) {
      if (d.type != Value::Type::string) {
        return at(d.offset,
                  std::string("expected each \"python-depends\" entry to be a string, found ") +
                      json::type_name(d.type));
      }
      m.python_depends.push_back(d.text);
    }
    if (const Value* deps = root.find("kernel-depends")) {
      auto kd = kernel_depends(*deps);
      if (!kd) return std::move(kd).error();
      m.kernel_depends = std::move(*kd);
    }
    auto backend = required(root, "backend", Value::Type::object, "metadata");
    if (!backend) return std::move(backend).error();
    if (auto b = read_backend(**backend, m); !b) return std::move(b).error();
    if (const Value* digest = root.find("digest"); digest && digest->type != Value::Type::null) {
      auto d = read_digest(*digest);
      if (!d) return std::move(d).error();
      m.digest = std::move(*d);
    }
    if (const Value* prov = root.find("provenance"); prov && prov->type != Value::Type::null) {
      if (auto p = read_provenance(*prov); !p) return std::move(p).error();
    }
    return m;
  }

 private:
  // A string key; null counts as absent for an optional one.
  Result<std::optional<std::string>> string_key(const Value& obj, std::string_view key,
                                                bool needed) const {
    const Value* v = obj.find(key);
    if (v == nullptr || (!needed && v->type == Value::Type::null)) {
      if (needed) return at(obj.offset, "missing key \"" + std::string(key) + "\" in metadata");
      return std::optional<std::string>{};
    }
    if (v->type != Value::Type::string) {
      return at(v->offset, "expected \"" + std::string(key) + "\" to be a string, found " +
                               json::type_name(v->type));
    }
    return std::optional<std::string>(v->text);
  }

  Result<std::vector<MetadataDependency>> kernel_depends(const Value& deps) const {
    if (deps.type != Value::Type::array) {
      return at(deps.offset, std::string("expected \"kernel-depends\" to be a list, found ") +
                                 json::type_name(deps.type));
    }
    std::vector<MetadataDependency> out;
    for (const Value& e : deps.items) {
      if (e.type != Value::Type::object) {
        return at(e.offset,
                  std::string("expected each \"kernel-depends\" entry to be an object, found ") +
                      json::type_name(e.type));
      }
      if (auto okk = only_keys(e, {"repo-id", "version", "revision"}, "a \"kernel-depends\" entry");
          !okk) {
        return std::move(okk).error();
      }
      MetadataDependency d;
      auto rid = required(e, "repo-id", Value::Type::string, "a \"kernel-depends\" entry");
      if (!rid) return std::move(rid).error();
      auto r = repo_id(**rid, "repo-id");
      if (!r) return std::move(r).error();
      d.repo_id = *r;
      const Value* ver = e.find("version");
      const Value* rev = e.find("revision");
      if (ver && ver->type == Value::Type::null) ver = nullptr;
      if (rev && rev->type == Value::Type::null) rev = nullptr;
      if (ver && rev) return at(e.offset, "`version` and `revision` are mutually exclusive");
      if (!ver && !rev) return at(e.offset, "either `version` or `revision` must be specified");
      if (ver) {
        if (ver->type != Value::Type::number || !ver->as_uint64()) {
          return at(ver->offset,
                    "expected \"version\" to be a non-negative integer, got " + shown(*ver));
        }
        d.version = *ver->as_uint64();
      } else {
        if (rev->type != Value::Type::string) {
          return at(rev->offset, std::string("expected \"revision\" to be a string, found ") +
                                     json::type_name(rev->type));
        }
        d.revision = rev->text;
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  Result<void> read_backend(const Value& b, VariantMetadata& m) const {
    auto type = required(b, "type", Value::Type::string, "\"backend\"");
    if (!type) return std::move(type).error();
    static const std::set<std::string, std::less<>> kTypes = {"cann",   "cpu",  "cuda", "metal",
                                                              "neuron", "rocm", "tpu",  "xpu"};
    if (!kTypes.count((*type)->text)) {
      return at((*type)->offset,
                "unknown backend type " + shown(**type) +
                    ": expected one of cann, cpu, cuda, metal, neuron, rocm, tpu, xpu");
    }
    m.backend_type = (*type)->text;
    if (const Value* archs = b.find("archs"); archs && archs->type != Value::Type::null) {
      if (archs->type != Value::Type::array) {
        return at(archs->offset, std::string("expected \"archs\" to be a list, found ") +
                                     json::type_name(archs->type));
      }
      for (const Value& a : archs->items) {
        if (a.type != Value::Type::string) {
          return at(a.offset, std::string("expected each \"archs\" entry to be a string, found ") +
                                  json::type_name(a.type));
        }
        m.backend_archs.push_back(a.text);
      }
    }
    return ok();
  }

  Result<VariantDigest> read_digest(const Value& d) const {
    if (d.type != Value::Type::object) {
      return at(d.offset, std::string("expected \"digest\" to be an object, found ") +
                              json::type_name(d.type));
    }
    VariantDigest out;
    auto algorithm = required(d, "algorithm", Value::Type::string, "\"digest\"");
    if (!algorithm) return std::move(algorithm).error();
    if ((*algorithm)->text == "sha256") {
      out.algorithm = DigestAlgorithm::sha256;
    } else if ((*algorithm)->text == "sha512") {
      out.algorithm = DigestAlgorithm::sha512;
    } else {
      return at((*algorithm)->offset, "unknown digest algorithm " + shown(**algorithm) +
                                          ": expected \"sha256\" or \"sha512\"");
    }
    auto files = required(d, "files", Value::Type::object, "\"digest\"");
    if (!files) return std::move(files).error();
    for (const json::Member& f : (*files)->members) {
      if (f.value.type != Value::Type::string) {
        return at(f.value.offset, "expected the digest of " + shown(f.key) +
                                      " to be a string, found " + json::type_name(f.value.type));
      }
      out.files.emplace(f.key, f.value.text);
    }
    return out;
  }

  Result<void> read_provenance(const Value& p) const {
    if (p.type != Value::Type::object) {
      return at(p.offset, std::string("expected \"provenance\" to be an object, found ") +
                              json::type_name(p.type));
    }
    for (const char* part : {"kernel-builder", "kernel"}) {
      const Value* v = p.find(part);
      if (v == nullptr || v->type == Value::Type::null) continue;
      if (v->type != Value::Type::object) {
        return at(v->offset, "expected \"" + std::string(part) + "\" to be an object, found " +
                                 json::type_name(v->type));
      }
      // kernels 0.17 rejects half of a commit/dirty pair ("sha" is an alias of "commit").
      const bool commit = v->find("commit") != nullptr || v->find("sha") != nullptr;
      const bool dirty = v->find("dirty") != nullptr;
      if (commit != dirty || (std::string_view(part) == "kernel" && !commit)) {
        return at(v->offset, "\"" + std::string(part) + "\" needs both \"commit\" and \"dirty\"");
      }
    }
    return ok();
  }
};

const char* kDigestTop[] = {"metadata.json", "metadata.json.sigstore"};

}  // namespace

Result<VariantMetadata> parse_variant_metadata(std::string_view text, std::string_view source) {
  try {
    return MetadataReader(text, source).read();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("metadata reader failed: ") + e.what(),
                      std::string(source));
  }
}

Result<VariantMetadata> read_variant_metadata(const std::filesystem::path& path,
                                              std::string_view source) {
  constexpr std::size_t kMaxMetadataBytes = std::size_t{16} << 20;
  auto bytes = read_small_file(path, kMaxMetadataBytes, ErrorCode::io);
  if (!bytes) return std::move(bytes).error();
  return parse_variant_metadata(*bytes, source.empty() ? std::string_view(path.native()) : source);
}

bool is_digest_covered(std::string_view rel_path) {
  for (const char* top : kDigestTop) {
    if (rel_path == top) return false;
  }
  return !is_bytecode_path(rel_path);
}

std::string DigestViolation::message() const {
  switch (kind) {
    case Kind::missing: return "Missing file: " + path;
    case Kind::mismatch:
      return "File hash mismatch for " + path + ": expected: " + expected + ", got: " + actual;
    case Kind::unknown: return "Unknown file: " + path;
    case Kind::unreadable: return "Cannot read " + path + ": " + actual;
  }
  return path;
}

std::vector<DigestViolation> check_digest_paths(const VariantDigest& digest,
                                                const std::vector<std::string>& rel_paths) {
  std::set<std::string, std::less<>> listed;
  for (const std::string& p : rel_paths) {
    if (is_digest_covered(p)) listed.insert(p);
  }
  std::vector<DigestViolation> out;
  for (const auto& [path, expected] : digest.files) {
    if (!listed.count(path)) out.push_back({DigestViolation::Kind::missing, path, expected, ""});
  }
  for (const std::string& p : listed) {
    if (!digest.files.count(p)) out.push_back({DigestViolation::Kind::unknown, p, "", ""});
  }
  return out;
}

std::optional<DigestViolation> check_digest_file(const VariantDigest& digest,
                                                 std::string_view rel_path,
                                                 const std::filesystem::path& file) {
  auto it = digest.files.find(std::string(rel_path));
  if (it == digest.files.end())
    return DigestViolation{DigestViolation::Kind::unknown, std::string(rel_path), "", ""};
  auto actual = base64_digest_file(file, digest.algorithm);
  if (!actual) {
    return DigestViolation{DigestViolation::Kind::unreadable, std::string(rel_path), it->second,
                           actual.error().what};
  }
  if (*actual != it->second) {
    return DigestViolation{DigestViolation::Kind::mismatch, std::string(rel_path), it->second,
                           *actual};
  }
  return std::nullopt;
}

std::vector<DigestViolation> check_variant_digest(const std::filesystem::path& variant_dir,
                                                  const VariantDigest& digest) {
  namespace fs = std::filesystem;
  std::vector<std::string> found;
  std::vector<DigestViolation> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(variant_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    // lexically: relative() would resolve the snapshot symlinks into blobs/.
    const std::string rel = it->path().lexically_relative(variant_dir).generic_string();
    if (it->is_symlink(ec) && it->is_directory(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;  // follows file symlinks (the cache's snapshots)
    found.push_back(rel);
  }
  if (ec) {
    out.push_back({DigestViolation::Kind::unreadable, variant_dir.string(), "", ec.message()});
    return out;
  }
  std::vector<DigestViolation> paths = check_digest_paths(digest, found);
  std::set<std::string, std::less<>> missing;
  for (const DigestViolation& v : paths) {
    if (v.kind == DigestViolation::Kind::missing) missing.insert(v.path);
  }
  for (const auto& [path, expected] : digest.files) {
    if (missing.count(path)) {
      out.push_back({DigestViolation::Kind::missing, path, expected, ""});
      continue;
    }
    if (auto v = check_digest_file(digest, path, variant_dir / path)) out.push_back(*v);
  }
  for (const DigestViolation& v : paths) {
    if (v.kind == DigestViolation::Kind::unknown) out.push_back(v);
  }
  return out;
}

}  // namespace kernels
