#include "kernels/lockfile/lockfile.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "file_read.h"
#include "json_doc.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/lock_hashes.h"
#include "lock_json_reader.h"

namespace kernels {

bool is_commit_sha(std::string_view s) { return is_lower_hex(s, 40); }

bool is_variant_hash(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256-";
  return s.substr(0, kPrefix.size()) == kPrefix && is_lower_hex(s.substr(kPrefix.size()), 64);
}

namespace detail {

namespace {

// Variant names become directory names under build/: one safe path component.
bool is_variant_dir_name(std::string_view v) {
  if (v.empty() || v.size() > 200 || v == "." || v == "..") return false;
  for (char c : v) {
    const bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || c == '.' || c == '+';
    if (!okc) return false;
  }
  return true;
}

bool is_hex_any_case(std::string_view s, std::size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

}  // namespace

std::string LockJsonReader::shown(std::string_view s) {
  constexpr std::size_t kMax = 80;
  if (s.size() <= kMax) return json::quote_ascii(s);
  return json::quote_ascii(s.substr(0, kMax)) + "...";
}

std::string LockJsonReader::shown(const json::Value& v) {
  if (v.type == json::Value::Type::string) return shown(v.text);
  if (v.type == json::Value::Type::number) return v.text;
  return json::type_name(v.type);
}

Error LockJsonReader::at(std::size_t offset, std::string what, std::string hint) const {
  return make_error(ErrorCode::lockfile_invalid, std::move(what),
                    json::location(text_, source_, offset), std::move(hint));
}

Result<const json::Value*> LockJsonReader::required(const json::Value& obj, std::string_view key,
                                                    json::Value::Type type,
                                                    std::string_view where) const {
  const json::Value* v = obj.find(key);
  if (v == nullptr) {
    return at(obj.offset, "missing key \"" + std::string(key) + "\" in " + std::string(where));
  }
  if (v->type != type) {
    return at(v->offset, "expected \"" + std::string(key) + "\" to be " + json::type_name(type) +
                             ", found " + json::type_name(v->type));
  }
  return v;
}

Result<void> LockJsonReader::only_keys(const json::Value& obj,
                                       std::initializer_list<std::string_view> keys,
                                       std::string_view where) const {
  for (const json::Member& m : obj.members) {
    bool known = false;
    for (auto k : keys) known = known || m.key == k;
    if (!known) {
      std::string list;
      for (auto k : keys) list += (list.empty() ? "\"" : ", \"") + std::string(k) + "\"";
      return at(m.key_offset, "unknown key " + shown(m.key) + " in " + std::string(where) +
                                  ": expected only " + list);
    }
  }
  return ok();
}

Result<std::string> LockJsonReader::repo_id(const json::Value& v, std::string_view key) const {
  if (!is_repo_id(v.text)) {
    return at(v.offset, "expected \"" + std::string(key) +
                            "\" to be a Hub repo id \"org/name\" (letters, digits, '-', '_', "
                            "'.'; no \"--\" or \"..\"), got " +
                            shown(v));
  }
  return v.text;
}

Result<std::string> LockJsonReader::commit(const json::Value& v, std::string_view key,
                                           bool lower_case) const {
  if (lower_case && is_hex_any_case(v.text, 40)) {
    std::string c = v.text;
    for (char& ch : c) ch = static_cast<char>(ch >= 'A' && ch <= 'F' ? ch - 'A' + 'a' : ch);
    return c;
  }
  if (is_commit_sha(v.text)) return v.text;
  if (lower_case && is_hex_any_case(v.text, 64)) {
    return at(v.offset, "SHA-256 commit ids (64 hex digits) are not supported: " + shown(v),
              "this tool's cache layout holds 40-hex (SHA-1) commits, as the Hub serves");
  }
  return at(v.offset, "expected \"" + std::string(key) + "\" to be a full commit id (40 " +
                          (lower_case ? "" : "lowercase ") + "hex digits), got " + shown(v));
}

Result<std::map<std::string, VariantLock>> LockJsonReader::variant_locks(
    const json::Value& variants) const {
  std::map<std::string, VariantLock> out;
  for (const json::Member& m : variants.members) {
    if (!is_variant_dir_name(m.key)) {
      return at(m.key_offset,
                "expected a variant name (one directory name under build/, e.g. "
                "\"torch210-cxx11-cu128-x86_64-linux\"), got " +
                    shown(m.key));
    }
    const std::string where = "variant " + shown(m.key);
    if (m.value.type != json::Value::Type::object) {
      return at(m.value.offset, "expected " + where +
                                    " to be an object {\"hash\", \"hash_type\"}, found " +
                                    json::type_name(m.value.type));
    }
    if (auto okk = only_keys(m.value, {"hash", "hash_type"}, where); !okk) {
      return std::move(okk).error();
    }
    VariantLock vl;
    auto hash = required(m.value, "hash", json::Value::Type::string, where);
    if (!hash) return std::move(hash).error();
    if (!is_variant_hash((*hash)->text)) {
      return at((*hash)->offset,
                "expected \"hash\" to be \"sha256-\" followed by 64 lowercase hex digits, got " +
                    shown(**hash));
    }
    vl.hash = (*hash)->text;
    if (const json::Value* ht = m.value.find("hash_type")) {
      if (ht->type != json::Value::Type::string) {
        return at(ht->offset, std::string("expected \"hash_type\" to be a string, found ") +
                                  json::type_name(ht->type));
      }
      if (ht->text != kHashTypeGitLfsConcat) {
        return at(ht->offset,
                  "unknown hash_type " + shown(*ht) + ": expected \"" +
                      std::string(kHashTypeGitLfsConcat) + "\"",
                  "this lockfile was written by a newer tool; upgrade kernels");
      }
      vl.hash_type = ht->text;
    }
    out.emplace(m.key, std::move(vl));
  }
  return out;
}

}  // namespace detail

namespace {

class LockReader : detail::LockJsonReader {
 public:
  using LockJsonReader::LockJsonReader;

  Result<Lockfile> read() {
    auto doc = json::parse(text(), source());
    if (!doc) return std::move(doc).error();
    const json::Value& root = *doc;
    if (root.type != json::Value::Type::array) {
      return at(
          root.offset,
          std::string("expected a JSON array of locked kernels, found ") +
              json::type_name(root.type),
          "kernels.lock is a list: [ {\"repo_id\": ..., \"sha\": ..., \"variants\": {...}} ]");
    }
    Lockfile lock;
    std::map<std::string, std::size_t, std::less<>> first_offset;
    for (std::size_t i = 0; i < root.items.size(); ++i) {
      const json::Value& e = root.items[i];
      if (e.type != json::Value::Type::object) {
        return at(e.offset, std::string("expected an object for each locked kernel, found ") +
                                json::type_name(e.type));
      }
      const bool list_form = e.find("dependency") != nullptr || e.find("lock") != nullptr;
      const auto form = list_form ? Lockfile::Form::dependency_list : Lockfile::Form::repo_array;
      if (i == 0) {
        lock.form = form;
      } else if (form != lock.form) {
        return at(e.offset, "entry mixes the two lockfile forms: expected every entry to be " +
                                std::string(lock.form == Lockfile::Form::repo_array
                                                ? "{\"repo_id\", \"sha\", \"variants\"}"
                                                : "{\"dependency\", \"lock\"}"));
      }
      auto k = list_form ? read_dependency_entry(e) : read_repo_entry(e);
      if (!k) return std::move(k).error();
      // Format 1 holds one entry per repo; format 2 one per dependency key (a repo may be locked
      // at two versions, when two kernels depend on different ones).
      const std::string key = list_form ? dependency_name(*k) : k->repo_id;
      auto [it, inserted] = first_offset.emplace(key, e.offset);
      if (!inserted) {
        return at(e.offset,
                  "duplicate entry for " + shown(key) + " (first at " +
                      json::location(text(), source(), it->second) + ")",
                  "a lockfile holds one entry per dependency; run `kernels lock` again");
      }
      lock.kernels.push_back(std::move(*k));
    }
    if (lock.form == Lockfile::Form::dependency_list) {
      std::stable_sort(lock.kernels.begin(), lock.kernels.end(), dependency_less);
    }
    return lock;
  }

 private:
  Result<KernelLock> read_repo_entry(const json::Value& e) const {
    // Python's KernelLock.from_json reads these three keys and ignores any other entry key.
    KernelLock k;
    auto rid = required(e, "repo_id", json::Value::Type::string, "a locked kernel");
    if (!rid) return std::move(rid).error();
    auto r = repo_id(**rid, "repo_id");
    if (!r) return std::move(r).error();
    k.repo_id = std::move(*r);
    auto sha = required(e, "sha", json::Value::Type::string, "a locked kernel");
    if (!sha) return std::move(sha).error();
    auto c = commit(**sha, "sha", false);
    if (!c) return std::move(c).error();
    k.sha = std::move(*c);
    auto variants = required(e, "variants", json::Value::Type::object, "a locked kernel");
    if (!variants) return std::move(variants).error();
    auto v = variant_locks(**variants);
    if (!v) return std::move(v).error();
    k.variants = std::move(*v);
    return k;
  }

  Result<KernelLock> read_dependency_entry(const json::Value& e) const {
    // kernels-common lock.rs / kernel_deps.rs: deny_unknown_fields at every level.
    if (auto okk = only_keys(e, {"dependency", "lock"}, "a locked dependency"); !okk) {
      return std::move(okk).error();
    }
    KernelLock k;
    auto dep = required(e, "dependency", json::Value::Type::object, "a locked dependency");
    if (!dep) return std::move(dep).error();
    if (auto okk = only_keys(**dep, {"repo-id", "version", "revision"}, "\"dependency\""); !okk) {
      return std::move(okk).error();
    }
    auto rid = required(**dep, "repo-id", json::Value::Type::string, "\"dependency\"");
    if (!rid) return std::move(rid).error();
    auto r = repo_id(**rid, "repo-id");
    if (!r) return std::move(r).error();
    k.repo_id = std::move(*r);
    // serde's Option: null is the same as absent.
    const json::Value* ver = (*dep)->find("version");
    const json::Value* rev = (*dep)->find("revision");
    if (ver != nullptr && ver->type == json::Value::Type::null) ver = nullptr;
    if (rev != nullptr && rev->type == json::Value::Type::null) rev = nullptr;
    if (ver != nullptr && rev != nullptr) {
      return at((*dep)->offset, "`version` and `revision` are mutually exclusive",
                "a locked dependency names a branch version or a revision, not both");
    }
    if (ver == nullptr && rev == nullptr) {
      return at((*dep)->offset, "either `version` or `revision` must be specified");
    }
    if (ver != nullptr) {
      const auto n = ver->type == json::Value::Type::number ? ver->as_uint64() : std::nullopt;
      if (!n || *n > 1000000) {
        return at(ver->offset,
                  "expected \"version\" to be a non-negative integer (the v<N> branch), got " +
                      shown(*ver));
      }
      k.version = static_cast<int>(*n);
    } else {
      if (rev->type != json::Value::Type::string) {
        return at(rev->offset, std::string("expected \"revision\" to be a string, found ") +
                                   json::type_name(rev->type));
      }
      k.revision = rev->text;
    }
    auto lk = required(e, "lock", json::Value::Type::object, "a locked dependency");
    if (!lk) return std::move(lk).error();
    if (auto okk = only_keys(**lk, {"commit"}, "\"lock\""); !okk) return std::move(okk).error();
    auto cm = required(**lk, "commit", json::Value::Type::string, "\"lock\"");
    if (!cm) return std::move(cm).error();
    auto c = commit(**cm, "commit", true);
    if (!c) return std::move(c).error();
    k.sha = std::move(*c);
    return k;
  }
};

}  // namespace

bool dependency_less(const KernelLock& a, const KernelLock& b) {
  // (repo, has-revision, version, revision): Version(n) < Revision(s) for one repo.
  return std::forward_as_tuple(a.repo_id, a.revision.has_value(), a.version, a.revision) <
         std::forward_as_tuple(b.repo_id, b.revision.has_value(), b.version, b.revision);
}

std::string dependency_name(const KernelLock& k) {
  if (k.revision) return k.repo_id + "@" + *k.revision;
  if (k.version) return k.repo_id + " v" + std::to_string(*k.version);
  return k.repo_id;
}

const KernelLock* Lockfile::find(std::string_view repo_id) const {
  for (const KernelLock& k : kernels) {
    if (k.repo_id == repo_id) return &k;
  }
  return nullptr;
}

Result<Lockfile> parse_lockfile(std::string_view text, std::string_view source) {
  try {
    return LockReader(text, source).read();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::lockfile_invalid, "out of memory while reading the lockfile",
                      std::string(source));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("lockfile reader failed: ") + e.what(),
                      std::string(source));
  }
}

Result<Lockfile> read_lockfile(const std::filesystem::path& path) {
  auto bytes = read_small_file(path, kMaxLockfileBytes, ErrorCode::lockfile_missing,
                               "create it with `kernels lock <project>`");
  if (!bytes) return std::move(bytes).error();
  auto lock = parse_lockfile(*bytes, path.string());
  if (!lock || lock->form != Lockfile::Form::dependency_list) return lock;
  auto hashes = read_lock_hashes(lock_hashes_path(path));
  if (!hashes) return std::move(hashes).error();
  if (*hashes) apply_lock_hashes(*lock, **hashes);
  return lock;
}

namespace {

// kernels 0.17.2: serde_json::to_string_pretty of the sorted map, written as a list.
std::string serialize_format2(const Lockfile& lock) {
  if (lock.kernels.empty()) return "[]";
  std::vector<const KernelLock*> sorted;
  for (const KernelLock& k : lock.kernels) sorted.push_back(&k);
  std::stable_sort(sorted.begin(), sorted.end(), [](const KernelLock* a, const KernelLock* b) {
    return dependency_less(*a, *b);
  });
  std::string out = "[\n";
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const KernelLock& k = *sorted[i];
    out += "  {\n    \"dependency\": {\n";
    out += "      \"repo-id\": " + json::quote(k.repo_id) + ",\n";
    if (k.revision) {
      out += "      \"revision\": " + json::quote(*k.revision) + "\n";
    } else {
      out += "      \"version\": " + std::to_string(k.version.value_or(0)) + "\n";
    }
    out += "    },\n    \"lock\": {\n";
    out += "      \"commit\": " + json::quote(k.sha) + "\n";
    out += "    }\n  }";
    out += i + 1 < sorted.size() ? ",\n" : "\n";
  }
  out += "]";
  return out;
}

}  // namespace

std::string serialize_lockfile(const Lockfile& lock) {
  if (lock.form == Lockfile::Form::dependency_list) return serialize_format2(lock);
  // json.dump(indent=2): "[" "\n" + items joined by ",\n" at indent 2 + "\n" "]"; an empty list
  // or dict is written as "[]" / "{}".
  if (lock.kernels.empty()) return "[]";
  std::string out = "[\n";
  for (std::size_t i = 0; i < lock.kernels.size(); ++i) {
    const KernelLock& k = lock.kernels[i];
    out += "  {\n";
    out += "    \"repo_id\": " + json::quote_ascii(k.repo_id) + ",\n";
    out += "    \"sha\": " + json::quote_ascii(k.sha) + ",\n";
    out += "    \"variants\": ";
    if (k.variants.empty()) {
      out += "{}";
    } else {
      out += "{\n";
      std::size_t j = 0;
      for (const auto& [name, v] : k.variants) {
        out += "      " + json::quote_ascii(name) + ": {\n";
        out += "        \"hash\": " + json::quote_ascii(v.hash) + ",\n";
        out += "        \"hash_type\": " + json::quote_ascii(v.hash_type) + "\n";
        out += "      }";
        out += ++j < k.variants.size() ? ",\n" : "\n";
      }
      out += "    }";
    }
    out += "\n  }";
    out += i + 1 < lock.kernels.size() ? ",\n" : "\n";
  }
  out += "]";
  return out;
}

Result<void> write_lockfile(const std::filesystem::path& path, const Lockfile& lock) {
  return write_atomic(path, serialize_lockfile(lock));
}

}  // namespace kernels
