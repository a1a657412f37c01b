// Internal: what kernels.lock and its hashes sidecar have in common to read -- error positions,
// required keys, closed key sets, repo ids, commits and variant hash maps -- so each rule has one
// home whichever file it is read from.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "json_doc.h"
#include "kernels/lockfile/lockfile.h"

namespace kernels::detail {

class LockJsonReader {
 public:
  LockJsonReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  // A value for a message: strings quoted (and cut at 80 bytes), numbers as written, else the type.
  static std::string shown(std::string_view s);
  static std::string shown(const json::Value& v);

  Error at(std::size_t offset, std::string what, std::string hint = {}) const;
  Result<const json::Value*> required(const json::Value& obj, std::string_view key,
                                      json::Value::Type type, std::string_view where) const;
  Result<void> only_keys(const json::Value& obj, std::initializer_list<std::string_view> keys,
                         std::string_view where) const;
  Result<std::string> repo_id(const json::Value& v, std::string_view key) const;
  // A full 40-hex commit; with `lower_case`, upper-case hex is accepted and lowered
  // (kernels-common's Oid), else only lower case is.
  Result<std::string> commit(const json::Value& v, std::string_view key, bool lower_case) const;
  // {"<variant>": {"hash": "sha256-<hex>", "hash_type": "git_lfs_concat"}, ...}
  Result<std::map<std::string, VariantLock>> variant_locks(const json::Value& variants) const;

  std::string_view text() const { return text_; }
  std::string_view source() const { return source_; }

 private:
  std::string_view text_;
  std::string_view source_;
};

}  // namespace kernels::detail
