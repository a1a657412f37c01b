#include "kernels/lockfile/lock_hashes.h"

#include "file_read.h"
#include "json_doc.h"
#include "kernels/lockfile/atomic.h"
#include "lock_json_reader.h"

namespace kernels {
namespace {

class HashesReader : detail::LockJsonReader {
 public:
  using LockJsonReader::LockJsonReader;

  Result<LockHashes> read() const {
    auto doc = json::parse(text(), source());
    if (!doc) return std::move(doc).error();
    const json::Value& root = *doc;
    if (root.type != json::Value::Type::object) {
      return at(root.offset, std::string("expected an object {\"version\", \"kernels\"}, found ") +
                                 json::type_name(root.type));
    }
    if (auto okk = only_keys(root, {"version", "kernels"}, "the hashes sidecar"); !okk) {
      return std::move(okk).error();
    }
    auto version = required(root, "version", json::Value::Type::number, "the hashes sidecar");
    if (!version) return std::move(version).error();
    if ((*version)->as_uint64() != std::optional<std::uint64_t>(kLockHashesVersion)) {
      return at((*version)->offset,
                "unknown sidecar version " + shown(**version) + ": expected " +
                    std::to_string(kLockHashesVersion),
                "this file was written by a newer tool; upgrade kernels");
    }
    auto kernels = required(root, "kernels", json::Value::Type::array, "the hashes sidecar");
    if (!kernels) return std::move(kernels).error();
    LockHashes out;
    for (const json::Value& e : (*kernels)->items) {
      if (e.type != json::Value::Type::object) {
        return at(e.offset, std::string("expected an object for each locked commit, found ") +
                                json::type_name(e.type));
      }
      if (auto okk = only_keys(e, {"repo-id", "commit", "variants"}, "a locked commit"); !okk) {
        return std::move(okk).error();
      }
      auto rid = required(e, "repo-id", json::Value::Type::string, "a locked commit");
      if (!rid) return std::move(rid).error();
      auto r = repo_id(**rid, "repo-id");
      if (!r) return std::move(r).error();
      auto cm = required(e, "commit", json::Value::Type::string, "a locked commit");
      if (!cm) return std::move(cm).error();
      auto c = commit(**cm, "commit", false);
      if (!c) return std::move(c).error();
      auto variants = required(e, "variants", json::Value::Type::object, "a locked commit");
      if (!variants) return std::move(variants).error();
      auto v = variant_locks(**variants);
      if (!v) return std::move(v).error();
      if (!out.commits.emplace(std::pair{*r, *c}, std::move(*v)).second) {
        return at(e.offset, "duplicate entry for " + shown(*r + "@" + *c),
                  "run `kernels lock` again to rewrite the sidecar");
      }
    }
    return out;
  }
};

}  // namespace

std::filesystem::path lock_hashes_path(const std::filesystem::path& lockfile) {
  std::filesystem::path p = lockfile;
  p += ".hashes";
  return p;
}

Result<LockHashes> parse_lock_hashes(std::string_view text, std::string_view source) {
  try {
    return HashesReader(text, source).read();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("sidecar reader failed: ") + e.what(),
                      std::string(source));
  }
}

Result<std::optional<LockHashes>> read_lock_hashes(const std::filesystem::path& path) {
  auto bytes = read_small_file(path, kMaxLockfileBytes, ErrorCode::lockfile_missing);
  if (!bytes) {
    if (bytes.error().code == ErrorCode::lockfile_missing) return std::optional<LockHashes>{};
    return std::move(bytes).error();
  }
  auto hashes = parse_lock_hashes(*bytes, path.string());
  if (!hashes) return std::move(hashes).error();
  return std::optional<LockHashes>(std::move(*hashes));
}

LockHashes lock_hashes_of(const Lockfile& lock) {
  LockHashes out;
  for (const KernelLock& k : lock.kernels) {
    if (!k.variants.empty()) out.commits[{k.repo_id, k.sha}] = k.variants;
  }
  return out;
}

void apply_lock_hashes(Lockfile& lock, const LockHashes& hashes) {
  for (KernelLock& k : lock.kernels) {
    if (auto it = hashes.commits.find({k.repo_id, k.sha}); it != hashes.commits.end()) {
      k.variants = it->second;
    }
  }
}

std::string serialize_lock_hashes(const LockHashes& hashes) {
  std::string out = "{\n  \"version\": " + std::to_string(kLockHashesVersion) +
                    ",\n  \"kernels\": [";
  std::size_t i = 0;
  for (const auto& [key, variants] : hashes.commits) {
    out += i++ == 0 ? "\n" : ",\n";
    out += "    {\n      \"repo-id\": " + json::quote(key.first) + ",\n";
    out += "      \"commit\": " + json::quote(key.second) + ",\n";
    out += "      \"variants\": {";
    std::size_t j = 0;
    for (const auto& [name, v] : variants) {
      out += j++ == 0 ? "\n" : ",\n";
      out += "        " + json::quote(name) + ": {\"hash\": " + json::quote(v.hash) +
             ", \"hash_type\": " + json::quote(v.hash_type) + "}";
    }
    out += variants.empty() ? "}\n    }" : "\n      }\n    }";
  }
  out += hashes.commits.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

Result<void> write_lock_hashes(const std::filesystem::path& path, const LockHashes& hashes) {
  return write_atomic(path, serialize_lock_hashes(hashes));
}

}  // namespace kernels
