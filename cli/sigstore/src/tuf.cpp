// The TUF client workflow (specification 1.0 §5) for trusted_root.json; see tuf.h.
#include "kernels/sigstore/tuf.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "builtin_tuf_root.h"
#include "crypto.h"
#include "json_read.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/text.h"
#include "kernels/sigstore/trusted_root.h"

namespace kernels::sigstore {
namespace {

using nlohmann::json;

// Bounds on what is downloaded when the referring metadata names no length (python-tuf's
// defaults), and on the length of the root chain walked in one refresh.
constexpr std::size_t kRootMax = 512000, kTimestampMax = 16384, kSnapshotMax = 2000000,
                      kTargetsMax = 5000000;
constexpr int kMaxRootRotations = 256;

Error refusal(const std::string& check, const std::string& file, const std::string& what) {
  return make_error(ErrorCode::integrity_mismatch, "TUF " + check + ": " + what, file,
                    "the TUF repository's metadata is not trustworthy; the last verified trusted "
                    "root stays in use");
}
Error format_error(const std::string& file, const std::string& what) {
  return make_error(ErrorCode::lockfile_invalid, "TUF format: " + what, file,
                    "the server did not answer with TUF metadata: check the --url");
}

// securesystemslib's encode_canonical: sorted keys, no whitespace, strings with only '"' and
// '\\' escaped (every other byte as is), integers only.
bool canonical(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.items()) {  // nlohmann's object is a sorted std::map
        if (!first) out += ',';
        first = false;
        canonical(json(k), out);
        out += ':';
        if (!canonical(item, out)) return false;
      }
      out += '}';
      return true;
    }
    case json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        if (!canonical(v[i], out)) return false;
      }
      out += ']';
      return true;
    }
    case json::value_t::string: {
      out += '"';
      for (char c : v.get_ref<const std::string&>()) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
      return true;
    }
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return true;
    case json::value_t::null: out += "null"; return true;
    case json::value_t::number_integer: out += std::to_string(v.get<std::int64_t>()); return true;
    case json::value_t::number_unsigned: out += std::to_string(v.get<std::uint64_t>()); return true;
    default: return false;  // floats have no canonical form
  }
}

std::optional<std::string> unhex(std::string_view h) {
  if (h.size() % 2) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < h.size(); i += 2) {
    int v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = h[i + j];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

// A key as the metadata declares it: ecdsa / ecdsa-sha2-nistp256 (keyval.public: PEM
// SubjectPublicKeyInfo of a P-256 key) or ed25519 / ed25519 (keyval.public: 64 hex). Other key
// types are not loaded (they cannot count towards a threshold).
PkeyPtr load_tuf_key(const json& key) {
  const std::string* type = string_at(key, "keytype");
  const std::string* scheme = string_at(key, "scheme");
  const json* keyval = object_at(key, "keyval");
  const std::string* pub = keyval ? string_at(*keyval, "public") : nullptr;
  if (!type || !scheme || !pub) return nullptr;
  if ((*type == "ecdsa" || *type == "ecdsa-sha2-nistp256") && *scheme == "ecdsa-sha2-nistp256") {
    BIO* bio = BIO_new_mem_buf(pub->data(), static_cast<int>(pub->size()));
    if (!bio) return nullptr;
    PkeyPtr k(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!k || EVP_PKEY_get_base_id(k.get()) != EVP_PKEY_EC || EVP_PKEY_get_bits(k.get()) != 256)
      return nullptr;
    return k;
  }
  if (*type == "ed25519" && *scheme == "ed25519") {
    std::optional<std::string> raw = unhex(*pub);
    if (!raw || raw->size() != 32) return nullptr;
    return PkeyPtr(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(raw->data()),
                                               32));
  }
  return nullptr;
}

struct Role {
  std::vector<std::string> keyids;
  std::int64_t threshold = 0;
};

// One metadata file, parsed: its signed part (and its canonical bytes) and signatures.
struct Metadata {
  std::string file;
  std::string bytes;  // as received, what is stored
  json signed_part;
  std::string canonical_signed;
  std::vector<std::pair<std::string, std::string>> signatures;  // keyid, raw signature
  std::int64_t version = 0;
  std::int64_t expires = 0;
};

Result<Metadata> parse_metadata(std::string bytes, const std::string& file,
                                const std::string& type) {
  std::string error;
  std::optional<json> doc = read_json(bytes, error, 64, kTargetsMax);
  if (!doc || !doc->is_object()) return format_error(file, doc ? "not a JSON object" : error);
  Metadata m;
  m.file = file;
  const json* sigs = array_at(*doc, "signatures");
  const json* sig = object_at(*doc, "signed");
  if (!sigs || !sig) return format_error(file, "no \"signed\" object or \"signatures\" array");
  m.signed_part = *sig;
  if (!canonical(*sig, m.canonical_signed))
    return format_error(file, "a number that is not an integer (no canonical form)");
  const std::string* t = string_at(*sig, "_type");
  if (!t || *t != type)
    return format_error(file, "\"_type\" is " + (t ? "\"" + *t + "\"" : std::string("missing")) +
                                  ", expected \"" + type + "\"");
  const std::string* spec = string_at(*sig, "spec_version");
  if (!spec || spec->substr(0, 2) != "1.") return format_error(file, "spec_version is not 1.x");
  const json* ver = sig->contains("version") ? &(*sig)["version"] : nullptr;
  if (!ver || !ver->is_number_integer() || ver->get<std::int64_t>() < 1)
    return format_error(file, "\"version\" is not a positive integer");
  m.version = ver->get<std::int64_t>();
  const std::string* exp = string_at(*sig, "expires");
  std::optional<std::int64_t> e = exp ? parse_rfc3339(*exp) : std::nullopt;
  if (!e) return format_error(file, "\"expires\" is not an RFC 3339 time");
  m.expires = *e;
  for (const json& s : *sigs) {
    const std::string* id = s.is_object() ? string_at(s, "keyid") : nullptr;
    const std::string* hx = s.is_object() ? string_at(s, "sig") : nullptr;
    if (!id || !hx) return format_error(file, "a signature without \"keyid\" or \"sig\"");
    std::optional<std::string> raw = unhex(*hx);
    if (!raw) return format_error(file, "a signature that is not hex");
    m.signatures.emplace_back(*id, std::move(*raw));
  }
  m.bytes = std::move(bytes);
  return m;
}

Result<Role> role_of(const Metadata& root, const std::string& name) {
  const json* roles = object_at(root.signed_part, "roles");
  const json* r = roles ? object_at(*roles, name.c_str()) : nullptr;
  const json* ids = r ? array_at(*r, "keyids") : nullptr;
  if (!r || !ids || !r->contains("threshold") || !(*r)["threshold"].is_number_integer() ||
      (*r)["threshold"].get<std::int64_t>() < 1)
    return format_error(root.file, "role \"" + name + "\" has no keyids or no threshold >= 1");
  Role role;
  role.threshold = (*r)["threshold"].get<std::int64_t>();
  for (const json& id : *ids) {
    if (!id.is_string()) return format_error(root.file, "a keyid of \"" + name + "\" is no string");
    role.keyids.push_back(id.get<std::string>());
  }
  return role;
}

// §5.3.4 / 5.4.2 / ...: at least `threshold` distinct keys of `role` (as `root` declares them)
// signed the canonical bytes of `m`.
Result<void> check_threshold(const Metadata& root, const std::string& role_name, const Metadata& m,
                             const std::string& signed_by) {
  Result<Role> role = role_of(root, role_name);
  if (!role) return std::move(role).error();
  const json* keys = object_at(root.signed_part, "keys");
  if (!keys) return format_error(root.file, "no \"keys\"");
  std::set<std::string> valid;
  for (const auto& [id, sig] : m.signatures) {
    if (valid.count(id)) continue;
    if (std::find(role->keyids.begin(), role->keyids.end(), id) == role->keyids.end()) continue;
    const json* key = object_at(*keys, id.c_str());
    if (!key) continue;
    PkeyPtr k = load_tuf_key(*key);
    if (k && verify_signature(k.get(), m.canonical_signed, sig)) valid.insert(id);
  }
  if (static_cast<std::int64_t>(valid.size()) < role->threshold)
    return refusal("signature", m.file,
                   std::to_string(valid.size()) + " valid signature(s) of the " + role_name +
                       " role's keys (" + signed_by + "), threshold " +
                       std::to_string(role->threshold));
  return ok();
}

Result<void> check_expiry(const Metadata& m, std::int64_t now) {
  if (m.expires <= now)
    return refusal("expired", m.file,
                   "expired at " + m.signed_part["expires"].get<std::string>() + " (version " +
                       std::to_string(m.version) + ")");
  return ok();
}

std::string digest_hex(const char* algorithm, std::string_view bytes) {
  const EVP_MD* md = EVP_get_digestbyname(algorithm);
  if (!md) return "";
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int n = 0;
  if (!EVP_Digest(bytes.data(), bytes.size(), out.data(), &n, md, nullptr)) return "";
  return hex(std::string_view(reinterpret_cast<const char*>(out.data()), n));
}

// A META / TARGETS entry: optional length and hashes (required for targets).
struct FileInfo {
  std::optional<std::int64_t> length;
  std::map<std::string, std::string> hashes;  // algorithm -> lowercase hex
  std::optional<std::int64_t> version;
};

Result<FileInfo> file_info(const json& entry, const std::string& in_file, const std::string& name) {
  FileInfo info;
  if (!entry.is_object()) return format_error(in_file, "entry \"" + name + "\" is no object");
  if (entry.contains("length")) {
    if (!entry["length"].is_number_integer() || entry["length"].get<std::int64_t>() < 0)
      return format_error(in_file, "\"" + name + "\" has a bad length");
    info.length = entry["length"].get<std::int64_t>();
  }
  if (entry.contains("version")) {
    if (!entry["version"].is_number_integer() || entry["version"].get<std::int64_t>() < 1)
      return format_error(in_file, "\"" + name + "\" has a bad version");
    info.version = entry["version"].get<std::int64_t>();
  }
  if (const json* h = object_at(entry, "hashes")) {
    for (const auto& [alg, value] : h->items()) {
      if (!value.is_string()) return format_error(in_file, "\"" + name + "\" has a bad hash");
      info.hashes[alg] = ascii_lower(value.get<std::string>());
    }
  }
  return info;
}

// Length and every hash we can compute must match; at least one hash must be known when any is
// listed (a hash we cannot compute is no check).
Result<void> check_hashes(const FileInfo& info, std::string_view bytes, const std::string& file,
                          const std::string& declared_in) {
  if (info.length && static_cast<std::int64_t>(bytes.size()) != *info.length)
    return refusal("length", file,
                   std::to_string(bytes.size()) + " bytes, " + declared_in + " says " +
                       std::to_string(*info.length));
  bool checked = false;
  for (const auto& [alg, want] : info.hashes) {
    if (alg != "sha256" && alg != "sha512" && alg != "sha384") continue;
    std::string got = digest_hex(alg.c_str(), bytes);
    if (got.empty()) continue;
    checked = true;
    if (got != want)
      return refusal("hash", file, alg + " " + got + ", " + declared_in + " says " + want);
  }
  if (!info.hashes.empty() && !checked)
    return refusal("hash", file,
                   declared_in + " lists no hash this client computes (sha256, sha384, sha512)");
  return ok();
}

std::optional<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

const json* meta_entry(const Metadata& m, const std::string& name) {
  const json* meta = object_at(m.signed_part, "meta");
  return meta ? (meta->contains(name) ? &(*meta)[name] : nullptr) : nullptr;
}

bool same_keys(const Metadata& a, const Metadata& b, const std::string& role) {
  Result<Role> ra = role_of(a, role), rb = role_of(b, role);
  if (!ra || !rb) return false;
  std::set<std::string> ka(ra->keyids.begin(), ra->keyids.end()),
      kb(rb->keyids.begin(), rb->keyids.end());
  if (ka != kb || ra->threshold != rb->threshold) return false;
  const json* keys_a = object_at(a.signed_part, "keys");
  const json* keys_b = object_at(b.signed_part, "keys");
  for (const std::string& id : ka)
    if (!keys_a || !keys_b || !keys_a->contains(id) || !keys_b->contains(id) ||
        (*keys_a)[id] != (*keys_b)[id])
      return false;
  return true;
}

class Client {
 public:
  Client(const std::filesystem::path& cache_root, std::string url, const TufFetcher& fetch,
         std::int64_t now)
      : cache_root_(cache_root), url_(std::move(url)), fetch_(fetch), now_(now) {}

  Result<TufRefreshed> run(std::optional<std::string_view> bootstrap) {
    Result<CacheDir> dir = CacheDir::open_below(cache_root_, tuf_cache_dir(cache_root_, url_),
                                                true);
    if (!dir) return std::move(dir).error();
    dir_.emplace(std::move(*dir));
    // §5.2: the trusted root: the cached one (it verified when stored), else the bootstrap.
    std::optional<std::string> root_bytes = read_file(dir_->path() / "root.json");
    std::string root_file = (dir_->path() / "root.json").string();
    if (!root_bytes) {
      if (!bootstrap)
        return make_error(ErrorCode::usage, "no trusted TUF root.json for this repository", url_,
                          "give the repository's first root.json with --tuf-root FILE");
      root_bytes = std::string(*bootstrap);
      root_file = "bootstrap root.json";
    }
    Result<Metadata> root = parse_metadata(std::move(*root_bytes), root_file, "root");
    if (!root) return std::move(root).error();
    // The bootstrap is trusted by its origin, but it must be self-consistent.
    if (auto self = check_threshold(*root, "root", *root, "its own keys"); !self)
      return std::move(self).error();
    root_ = std::move(*root);
    load_trusted("timestamp.json", "timestamp", trusted_timestamp_);
    load_trusted("snapshot.json", "snapshot", trusted_snapshot_);

    if (auto r = update_root(); !r) return std::move(r).error();
    if (auto r = update_timestamp(); !r) return std::move(r).error();
    if (auto r = update_snapshot(); !r) return std::move(r).error();
    if (auto r = update_targets(); !r) return std::move(r).error();
    if (auto r = fetch_target(); !r) return std::move(r).error();
    out_.root_version = root_.version;
    return out_;
  }

 private:
  std::string at(const std::string& name) const { return url_ + "/" + name; }

  Result<std::string> get(const std::string& name, std::size_t max, bool optional_file,
                          bool& absent) {
    Result<std::optional<std::string>> got = fetch_(at(name), max);
    if (!got) return std::move(got).error();
    if (!*got) {
      absent = true;
      if (optional_file) return std::string();
      return make_error(ErrorCode::http_permanent, "TUF: the repository has no " + name, at(name),
                        "check the --url");
    }
    if ((*got)->size() > max)
      return refusal("length", at(name),
                     std::to_string((*got)->size()) + " bytes, more than the " +
                         std::to_string(max) + " allowed");
    return std::move(**got);
  }

  void load_trusted(const char* name, const char* type, std::optional<Metadata>& into) {
    std::optional<std::string> bytes = read_file(dir_->path() / name);
    if (!bytes) return;
    Result<Metadata> m = parse_metadata(std::move(*bytes), (dir_->path() / name).string(), type);
    // A cached file that no longer verifies with the trusted root is ignored (python-tuf does
    // the same); its expiry does not matter for the rollback checks it serves.
    if (m && check_threshold(root_, type, *m, "cached")) into = std::move(*m);
  }

  Result<void> store(const std::string& name, const std::string& bytes) {
    return dir_->write_atomic(name, bytes);
  }

  // §5.3: N+1.root.json until absent, each signed by the threshold of the trusted root's and of
  // its own root keys, with exactly the next version; the final root must not be expired.
  Result<void> update_root() {
    for (int i = 0; i < kMaxRootRotations; ++i) {
      const std::string name = std::to_string(root_.version + 1) + ".root.json";
      bool absent = false;
      Result<std::string> bytes = get(name, kRootMax, true, absent);
      if (!bytes) return std::move(bytes).error();
      if (absent) break;
      Result<Metadata> next = parse_metadata(std::move(*bytes), at(name), "root");
      if (!next) return std::move(next).error();
      if (auto r = check_threshold(root_, "root", *next,
                                   "trusted root version " + std::to_string(root_.version));
          !r)
        return r;
      if (next->version != root_.version + 1)
        return refusal(next->version <= root_.version ? "rollback" : "version", next->file,
                       "version " + std::to_string(next->version) + ", expected " +
                           std::to_string(root_.version + 1));
      if (auto r = check_threshold(*next, "root", *next, "its own keys"); !r) return r;
      // §5.3.11: rotated timestamp or snapshot keys: forget the trusted timestamp / snapshot
      // (recovery from a fast-forward attack).
      if (!same_keys(root_, *next, "timestamp") || !same_keys(root_, *next, "snapshot")) {
        trusted_timestamp_.reset();
        trusted_snapshot_.reset();
        dir_->remove("timestamp.json");
        dir_->remove("snapshot.json");
      }
      root_ = std::move(*next);
      if (auto r = store("root.json", root_.bytes); !r) return r;
      ++out_.root_versions_fetched;
    }
    if (auto r = check_expiry(root_, now_); !r) return r;
    if (out_.root_versions_fetched == 0) {
      // First refresh from the bootstrap: store it as the trusted root.
      if (!std::filesystem::exists(dir_->path() / "root.json"))
        if (auto r = store("root.json", root_.bytes); !r) return r;
    }
    return ok();
  }

  // §5.4
  Result<void> update_timestamp() {
    bool absent = false;
    Result<std::string> bytes = get("timestamp.json", kTimestampMax, false, absent);
    if (!bytes) return std::move(bytes).error();
    Result<Metadata> ts = parse_metadata(std::move(*bytes), at("timestamp.json"), "timestamp");
    if (!ts) return std::move(ts).error();
    if (auto r = check_threshold(root_, "timestamp", *ts,
                                 "root version " + std::to_string(root_.version));
        !r)
      return r;
    // §5.4.3.1: the trusted version again: keep the trusted file (python-tuf does the same); its
    // expiry is still checked below.
    if (trusted_timestamp_ && ts->version == trusted_timestamp_->version) *ts = *trusted_timestamp_;
    const json* snap = meta_entry(*ts, "snapshot.json");
    if (!snap) return format_error(ts->file, "no meta \"snapshot.json\"");
    Result<FileInfo> info = file_info(*snap, ts->file, "snapshot.json");
    if (!info) return std::move(info).error();
    if (!info->version) return format_error(ts->file, "\"snapshot.json\" has no version");
    if (trusted_timestamp_) {
      if (ts->version < trusted_timestamp_->version)
        return refusal("rollback", ts->file,
                       "version " + std::to_string(ts->version) + " is older than the trusted " +
                           std::to_string(trusted_timestamp_->version));
      const json* old = meta_entry(*trusted_timestamp_, "snapshot.json");
      Result<FileInfo> old_info = old ? file_info(*old, "", "") : Result<FileInfo>(FileInfo{});
      if (old_info && old_info->version && *info->version < *old_info->version)
        return refusal("rollback", ts->file,
                       "snapshot version " + std::to_string(*info->version) +
                           " is older than the trusted " + std::to_string(*old_info->version));
    }
    if (auto r = check_expiry(*ts, now_); !r) return r;
    snapshot_info_ = *info;
    if (!trusted_timestamp_ || ts->version != trusted_timestamp_->version)
      if (auto r = store("timestamp.json", ts->bytes); !r) return r;
    out_.timestamp_version = ts->version;
    trusted_timestamp_ = std::move(*ts);
    return ok();
  }

  bool consistent() const {
    const json& s = root_.signed_part;
    return s.contains("consistent_snapshot") && s["consistent_snapshot"].is_boolean() &&
           s["consistent_snapshot"].get<bool>();
  }

  // §5.5
  Result<void> update_snapshot() {
    const std::int64_t v = *snapshot_info_.version;
    const std::string name = consistent() ? std::to_string(v) + ".snapshot.json" : "snapshot.json";
    bool absent = false;
    const std::size_t max = snapshot_info_.length ? static_cast<std::size_t>(*snapshot_info_.length)
                                                  : kSnapshotMax;
    Result<std::string> bytes = get(name, max, false, absent);
    if (!bytes) return std::move(bytes).error();
    if (auto r = check_hashes(snapshot_info_, *bytes, at(name), "timestamp.json"); !r) return r;
    Result<Metadata> snap = parse_metadata(std::move(*bytes), at(name), "snapshot");
    if (!snap) return std::move(snap).error();
    if (auto r = check_threshold(root_, "snapshot", *snap,
                                 "root version " + std::to_string(root_.version));
        !r)
      return r;
    if (snap->version != v)
      return refusal("version", snap->file,
                     "version " + std::to_string(snap->version) + ", timestamp.json says " +
                         std::to_string(v));
    if (trusted_snapshot_) {
      const json* old_meta = object_at(trusted_snapshot_->signed_part, "meta");
      if (old_meta)
        for (const auto& [fname, old] : old_meta->items()) {
          const json* now_entry = meta_entry(*snap, fname);
          if (!now_entry)
            return refusal("rollback", snap->file, "\"" + fname + "\" is no longer listed");
          Result<FileInfo> a = file_info(old, "", fname),
                           b = file_info(*now_entry, snap->file, fname);
          if (!b) return std::move(b).error();
          if (a && a->version && b->version && *b->version < *a->version)
            return refusal("rollback", snap->file,
                           "\"" + fname + "\" version " + std::to_string(*b->version) +
                               " is older than the trusted " + std::to_string(*a->version));
        }
    }
    if (auto r = check_expiry(*snap, now_); !r) return r;
    const json* t = meta_entry(*snap, "targets.json");
    if (!t) return format_error(snap->file, "no meta \"targets.json\"");
    Result<FileInfo> info = file_info(*t, snap->file, "targets.json");
    if (!info) return std::move(info).error();
    if (!info->version) return format_error(snap->file, "\"targets.json\" has no version");
    targets_info_ = *info;
    if (auto r = store("snapshot.json", snap->bytes); !r) return r;
    out_.snapshot_version = snap->version;
    trusted_snapshot_ = std::move(*snap);
    return ok();
  }

  // §5.6 (top-level targets only: Sigstore's trusted_root.json is listed there)
  Result<void> update_targets() {
    const std::int64_t v = *targets_info_.version;
    const std::string name = consistent() ? std::to_string(v) + ".targets.json" : "targets.json";
    bool absent = false;
    const std::size_t max = targets_info_.length ? static_cast<std::size_t>(*targets_info_.length)
                                                 : kTargetsMax;
    Result<std::string> bytes = get(name, max, false, absent);
    if (!bytes) return std::move(bytes).error();
    if (auto r = check_hashes(targets_info_, *bytes, at(name), "snapshot"); !r) return r;
    Result<Metadata> targets = parse_metadata(std::move(*bytes), at(name), "targets");
    if (!targets) return std::move(targets).error();
    if (auto r = check_threshold(root_, "targets", *targets,
                                 "root version " + std::to_string(root_.version));
        !r)
      return r;
    if (targets->version != v)
      return refusal("version", targets->file,
                     "version " + std::to_string(targets->version) + ", snapshot says " +
                         std::to_string(v));
    if (auto r = check_expiry(*targets, now_); !r) return r;
    if (auto r = store("targets.json", targets->bytes); !r) return r;
    out_.targets_version = targets->version;
    targets_ = std::move(*targets);
    return ok();
  }

  // §5.7: trusted_root.json by the length and hashes targets.json gives.
  Result<void> fetch_target() {
    const std::string target = "trusted_root.json";
    const json* list = object_at(targets_->signed_part, "targets");
    if (!list || !list->contains(target))
      return refusal("target_missing", targets_->file, "lists no \"" + target + "\"");
    Result<FileInfo> info = file_info((*list)[target], targets_->file, target);
    if (!info) return std::move(info).error();
    if (!info->length || info->hashes.empty())
      return format_error(targets_->file, "\"" + target + "\" has no length or no hashes");
    std::string name = "targets/" + target;
    if (consistent()) {
      auto h = info->hashes.count("sha256") ? info->hashes.find("sha256") : info->hashes.begin();
      name = "targets/" + h->second + "." + target;
    }
    // A cached copy with the listed length and hashes needs no download.
    std::optional<std::string> cached = read_file(dir_->path() / target);
    std::string bytes;
    if (cached && check_hashes(*info, *cached, target, "targets.json")) {
      bytes = std::move(*cached);
    } else {
      bool absent = false;
      Result<std::string> got = get(name, static_cast<std::size_t>(*info->length), false, absent);
      if (!got) return std::move(got).error();
      if (auto r = check_hashes(*info, *got, at(name), "targets.json"); !r) return r;
      // It must be a trusted root this program can use before it replaces the last one.
      Result<TrustedRoot> parsed = parse_trusted_root(*got, at(name));
      if (!parsed) return std::move(parsed).error();
      if (auto r = store(target, *got); !r) return r;
      bytes = std::move(*got);
      out_.trusted_root_changed = true;
    }
    out_.trusted_root_path = dir_->path() / target;
    out_.trusted_root_sha256 = hex(sha256(bytes));
    return ok();
  }

  std::filesystem::path cache_root_;
  std::string url_;
  const TufFetcher& fetch_;
  std::int64_t now_;
  std::optional<CacheDir> dir_;
  Metadata root_;
  std::optional<Metadata> trusted_timestamp_, trusted_snapshot_, targets_;
  FileInfo snapshot_info_, targets_info_;
  TufRefreshed out_;
};

}  // namespace

std::string_view builtin_tuf_root() { return kBuiltinTufRoot; }

std::string default_tuf_url() {
  std::string url = kPublicGoodTufUrl;
  if (const char* env = std::getenv("KERNELS_SIGSTORE_TUF_URL"); env && *env) url = env;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::filesystem::path tuf_cache_dir(const std::filesystem::path& cache_root, std::string_view url) {
  std::string_view rest = url;
  if (auto p = rest.find("://"); p != std::string_view::npos) rest.remove_prefix(p + 3);
  std::string key;
  for (char c : rest.substr(0, 80))
    key += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  key += "-" + hex(sha256(url)).substr(0, 8);
  return cache_root / ".kernels-sigstore" / "tuf" / key;
}

Result<TufRefreshed> tuf_refresh(const std::filesystem::path& cache_root, const std::string& url,
                                 std::optional<std::string_view> bootstrap_root,
                                 const TufFetcher& fetch, std::int64_t now) {
  std::string base = url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!bootstrap_root && base == kPublicGoodTufUrl) bootstrap_root = builtin_tuf_root();
  Client client(cache_root, base, fetch, now);
  return client.run(bootstrap_root);
}

Result<void> tuf_check_root(std::string_view root_json, std::string_view source) {
  Result<Metadata> root = parse_metadata(std::string(root_json), std::string(source), "root");
  if (!root) return std::move(root).error();
  return check_threshold(*root, "root", *root, "its own keys");
}

std::optional<std::filesystem::path> tuf_cached_trusted_root(
    const std::filesystem::path& cache_root, std::string_view url) {
  std::string base(url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::filesystem::path p = tuf_cache_dir(cache_root, base) / "trusted_root.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(p, ec)) return p;
  return std::nullopt;
}

}  // namespace kernels::sigstore
