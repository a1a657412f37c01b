#include "kernels/lockfile/repo_tree.h"

#include <algorithm>
#include <unordered_set>

#include "json_doc.h"

namespace kernels {

FileDigest TreeEntry::digest() const {
  if (lfs) return FileDigest{FileDigest::Kind::sha256, lfs->sha256};
  return FileDigest{FileDigest::Kind::git_sha1, oid};
}

std::uint64_t TreeEntry::content_size() const { return lfs ? lfs->size : size; }

bool is_safe_repo_path(std::string_view path) {
  if (path.empty() || path.size() > 4096 || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.size() > 255) return false;
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7F || c == '\\') return false;
    }
    start = end + 1;
  }
  return true;
}

namespace {

class TreeReader {
 public:
  TreeReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Error at(std::size_t offset, std::string what) const {
    return make_error(ErrorCode::lockfile_invalid, std::move(what),
                      json::location(text_, source_, offset),
                      "the tree listing is malformed; fetch it again");
  }

  Result<std::string> string_field(const json::Value& obj, std::string_view key) const {
    const json::Value* v = obj.find(key);
    if (v == nullptr) return at(obj.offset, "missing key \"" + std::string(key) + "\"");
    if (v->type != json::Value::Type::string) {
      return at(v->offset, "expected \"" + std::string(key) + "\" to be a string, found " +
                               json::type_name(v->type));
    }
    return v->text;
  }

  Result<std::uint64_t> size_field(const json::Value& obj, std::string_view key) const {
    const json::Value* v = obj.find(key);
    if (v == nullptr) return at(obj.offset, "missing key \"" + std::string(key) + "\"");
    auto n = v->as_uint64();
    if (!n) {
      return at(v->offset,
                "expected \"" + std::string(key) + "\" to be a non-negative integer, found " +
                    (v->type == json::Value::Type::number ? v->text : json::type_name(v->type)));
    }
    return *n;
  }

  Result<std::string> path_field(const json::Value& obj, std::string_view key,
                                 std::size_t offset) const {
    auto p = string_field(obj, key);
    if (!p) return p;
    if (!is_safe_repo_path(*p)) {
      return at(offset, "unsafe path " + json::quote_ascii(*p) +
                            ": expected a relative path without \".\", \"..\", empty parts, "
                            "backslashes or control characters");
    }
    return p;
  }

  Result<std::string> hex_field(const json::Value& obj, std::string_view key,
                                std::size_t length) const {
    auto h = string_field(obj, key);
    if (!h) return h;
    if (!is_lower_hex(*h, length)) {
      return at(obj.find(key)->offset, "expected \"" + std::string(key) + "\" to be " +
                                           std::to_string(length) + " lowercase hex digits, got " +
                                           json::quote_ascii(h->substr(0, 80)));
    }
    return h;
  }

  // A tree of 10^5 files is about 5*10^5 values; the cap (~200 MB worst case) stays above that.
  static constexpr json::Limits kTreeLimits{64, std::size_t{1} << 21};

  Result<RepoTree> listing() const {
    auto doc = json::parse(text_, source_, kTreeLimits);
    if (!doc) return std::move(doc).error();
    if (doc->type != json::Value::Type::array) {
      return at(doc->offset, std::string("expected a JSON array of tree entries, found ") +
                                 json::type_name(doc->type));
    }
    RepoTree tree;
    tree.reserve(doc->items.size());
    // A path listed twice would be hashed twice here but once from the de-duplicated tree cache:
    // the variant hash of the download and of `verify` would differ. The Hub never does it.
    std::unordered_set<std::string> paths;
    for (const json::Value& e : doc->items) {
      if (e.type != json::Value::Type::object) {
        return at(e.offset, std::string("expected an object per tree entry, found ") +
                                json::type_name(e.type));
      }
      TreeEntry t;
      auto type = string_field(e, "type");
      if (!type) return std::move(type).error();
      if (*type != "file" && *type != "directory") {
        return at(e.find("type")->offset, "unknown entry type " + json::quote_ascii(*type) +
                                              ": expected \"file\" or \"directory\"");
      }
      t.is_file = *type == "file";
      auto path = path_field(e, "path", e.offset);
      if (!path) return std::move(path).error();
      if (!paths.insert(*path).second) {
        return at(e.offset, "path " + json::quote_ascii(*path) + " is listed twice");
      }
      t.path = std::move(*path);
      if (t.is_file) {
        auto oid = hex_field(e, "oid", 40);
        if (!oid) return std::move(oid).error();
        t.oid = std::move(*oid);
        auto size = size_field(e, "size");
        if (!size) return std::move(size).error();
        t.size = *size;
      } else if (const json::Value* oid = e.find("oid");
                 oid != nullptr && oid->type == json::Value::Type::string) {
        t.oid = oid->text;
      }
      if (const json::Value* lfs = e.find("lfs"); lfs != nullptr && t.is_file) {
        if (lfs->type != json::Value::Type::object) {
          return at(lfs->offset, std::string("expected \"lfs\" to be an object, found ") +
                                     json::type_name(lfs->type));
        }
        LfsInfo info;
        auto oid = hex_field(*lfs, "oid", 64);
        if (!oid) return std::move(oid).error();
        info.sha256 = std::move(*oid);
        auto size = size_field(*lfs, "size");
        if (!size) return std::move(size).error();
        info.size = *size;
        if (lfs->find("pointerSize") != nullptr) {
          auto ps = size_field(*lfs, "pointerSize");
          if (!ps) return std::move(ps).error();
          info.pointer_size = *ps;
        }
        t.lfs = std::move(info);
      }
      if (const json::Value* x = e.find("xetHash");
          x != nullptr && x->type == json::Value::Type::string) {
        t.xet_hash = x->text;
      }
      tree.push_back(std::move(t));
    }
    return tree;
  }

  Result<RepoTree> cache() const {
    auto doc = json::parse(text_, source_, kTreeLimits);
    if (!doc) return std::move(doc).error();
    if (doc->type != json::Value::Type::object) {
      return at(doc->offset, std::string("expected a JSON object {\"format_version\", "
                                         "\"files\"}, found ") +
                                 json::type_name(doc->type));
    }
    auto version = size_field(*doc, "format_version");
    if (!version) return std::move(version).error();
    if (*version != 1) {
      return at(doc->find("format_version")->offset,
                "unknown tree cache format_version " + std::to_string(*version) + ": expected 1");
    }
    const json::Value* files = doc->find("files");
    if (files == nullptr || files->type != json::Value::Type::object) {
      return at(files ? files->offset : doc->offset, "expected \"files\" to be an object");
    }
    RepoTree tree;
    tree.reserve(files->members.size());
    for (const json::Member& m : files->members) {
      if (!is_safe_repo_path(m.key)) {
        return at(m.key_offset, "unsafe path " + json::quote_ascii(m.key) +
                                    ": expected a relative path without \".\", \"..\", empty "
                                    "parts, backslashes or control characters");
      }
      if (m.value.type != json::Value::Type::object) {
        return at(m.value.offset, "expected an object per file");
      }
      TreeEntry t;
      t.path = m.key;
      auto size = size_field(m.value, "size");
      if (!size) return std::move(size).error();
      t.size = *size;
      auto blob = hex_field(m.value, "blob_id", 40);
      if (!blob) return std::move(blob).error();
      t.oid = std::move(*blob);
      const json::Value* lfs_sha = m.value.find("lfs_sha256");
      if (lfs_sha != nullptr && lfs_sha->type != json::Value::Type::null) {
        LfsInfo info;
        auto sha = hex_field(m.value, "lfs_sha256", 64);
        if (!sha) return std::move(sha).error();
        info.sha256 = std::move(*sha);
        auto lsize = size_field(m.value, "lfs_size");
        if (!lsize) return std::move(lsize).error();
        info.size = *lsize;
        t.lfs = std::move(info);
      }
      if (const json::Value* x = m.value.find("xet_hash");
          x != nullptr && x->type == json::Value::Type::string) {
        t.xet_hash = x->text;
      }
      tree.push_back(std::move(t));
    }
    return tree;
  }

 private:
  std::string_view text_;
  std::string_view source_;
};

template <class F>
Result<RepoTree> guarded(std::string_view source, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(ErrorCode::lockfile_invalid, std::string("cannot read tree: ") + e.what(),
                      std::string(source));
  }
}

}  // namespace

Result<RepoTree> parse_tree_listing(std::string_view json, std::string_view source) {
  return guarded(source, [&] { return TreeReader(json, source).listing(); });
}

Result<RepoTree> parse_tree_cache(std::string_view json, std::string_view source) {
  return guarded(source, [&] { return TreeReader(json, source).cache(); });
}

std::string serialize_tree_cache(const RepoTree& tree) {
  std::vector<const TreeEntry*> files;
  for (const TreeEntry& e : tree) {
    if (e.is_file) files.push_back(&e);
  }
  // Python sorts str keys by code point, which for UTF-8 is bytewise order.
  std::sort(files.begin(), files.end(),
            [](const TreeEntry* a, const TreeEntry* b) { return a->path < b->path; });
  files.erase(std::unique(files.begin(), files.end(),
                          [](const TreeEntry* a, const TreeEntry* b) {
                            return a->path == b->path;
                          }),
              files.end());
  std::string out = "{\n \"format_version\": 1,\n \"files\": ";
  if (files.empty()) {
    out += "{}";
  } else {
    out += "{\n";
    for (std::size_t i = 0; i < files.size(); ++i) {
      const TreeEntry& e = *files[i];
      out += "  " + json::quote_ascii(e.path) + ": {\n";
      out += "   \"size\": " + std::to_string(e.size) + ",\n";
      out += "   \"blob_id\": " + json::quote_ascii(e.oid);
      if (e.lfs) {
        out += ",\n   \"lfs_sha256\": " + json::quote_ascii(e.lfs->sha256);
        out += ",\n   \"lfs_size\": " + std::to_string(e.lfs->size);
      }
      if (!e.xet_hash.empty()) out += ",\n   \"xet_hash\": " + json::quote_ascii(e.xet_hash);
      out += "\n  }";
      out += i + 1 < files.size() ? ",\n" : "\n";
    }
    out += " }";
  }
  out += "\n}";
  return out;
}

std::string serialize_tree_listing(const RepoTree& tree) {
  std::string out = "[";
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const TreeEntry& e = tree[i];
    if (i > 0) out += ",";
    out += "{\"type\":";
    out += e.is_file ? "\"file\"" : "\"directory\"";
    out += ",\"oid\":" + json::quote(e.oid);
    out += ",\"size\":" + std::to_string(e.is_file ? e.size : 0);
    out += ",\"path\":" + json::quote(e.path);
    if (e.lfs) {
      out += ",\"lfs\":{\"oid\":" + json::quote(e.lfs->sha256) +
             ",\"size\":" + std::to_string(e.lfs->size) +
             ",\"pointerSize\":" + std::to_string(e.lfs->pointer_size) + "}";
    }
    if (!e.xet_hash.empty()) out += ",\"xetHash\":" + json::quote(e.xet_hash);
    out += "}";
  }
  out += "]";
  return out;
}

}  // namespace kernels
