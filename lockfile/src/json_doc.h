// A small strict JSON reader for the on-disk contract (kernels.lock, tree listings, tree cache).
//
// Why not nlohmann's DOM parser: it keeps the last of two duplicate keys silently, reports byte
// offsets only, and recurses without a depth limit. This reader rejects duplicates at every level,
// keeps each value's byte offset so errors can name <line>:<column>, bounds nesting (so the stack
// is bounded whatever the input), and accepts exactly RFC 8259 in UTF-8 without a byte order mark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels::json {

struct Member;

struct Value {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  std::size_t offset = 0;  // byte offset of the value's first character
  bool boolean = false;
  std::string text;             // decoded string, or the number exactly as written
  std::vector<Value> items;     // array
  std::vector<Member> members;  // object, in file order (keys are unique)

  const Value* find(std::string_view key) const;
  // Non-negative integer written without fraction or exponent, fitting in uint64.
  std::optional<std::uint64_t> as_uint64() const;
};

struct Member {
  std::string key;
  std::size_t key_offset = 0;
  Value value;
};

const char* type_name(Value::Type type);

struct Limits {
  int max_depth = 64;                             // bounds the recursion, so the stack
  std::size_t max_values = std::size_t{1} << 18;  // bounds memory (~100 bytes per value)
};

// Parses one document. Errors are ErrorCode::lockfile_invalid with Error::object
// "<source>:<line>:<column>".
Result<Value> parse(std::string_view text, std::string_view source, Limits limits = {});

// "<source>:<line>:<column>" for a byte offset (1-based line; column counts code points).
std::string location(std::string_view text, std::string_view source, std::size_t offset);

// A JSON string literal exactly as Python's json.dumps(ensure_ascii=True) writes it.
std::string quote_ascii(std::string_view utf8);
// A JSON string literal with only the escapes JSON requires (UTF-8 kept as is).
std::string quote(std::string_view utf8);

}  // namespace kernels::json
