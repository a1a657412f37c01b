#include "json_doc.h"

#include <charconv>
#include <cstdio>
#include <unordered_map>

namespace kernels::json {

const Value* Value::find(std::string_view key) const {
  for (const Member& m : members) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

std::optional<std::uint64_t> Value::as_uint64() const {
  if (type != Type::number || text.empty() || text[0] == '-') return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

const char* type_name(Value::Type type) {
  switch (type) {
    case Value::Type::null: return "null";
    case Value::Type::boolean: return "a boolean";
    case Value::Type::number: return "a number";
    case Value::Type::string: return "a string";
    case Value::Type::array: return "an array";
    case Value::Type::object: return "an object";
  }
  return "a value";
}

std::string location(std::string_view text, std::string_view source, std::size_t offset) {
  if (offset > text.size()) offset = text.size();
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return std::string(source) + ":" + std::to_string(line) + ":" + std::to_string(column);
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not valid (overlongs, surrogates and
// code points above U+10FFFF are invalid).
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  std::size_t n;
  char32_t v;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    v = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    v = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    v = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF))) return 0;
  if (v >= 0xD800 && v <= 0xDFFF) return 0;
  *cp = v;
  return n;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view source, Limits limits)
      : s_(text), source_(source), max_depth_(limits.max_depth), max_values_(limits.max_values) {}

  Result<Value> run() {
    if (auto e = precheck()) return std::move(*e);
    skip_ws();
    Value root;
    if (!parse_value(root, 0)) return std::move(*error_);
    skip_ws();
    if (i_ != s_.size()) {
      return fail(i_, "unexpected content after the end of the JSON document",
                  "a file holds exactly one JSON value; remove what follows it");
    }
    return root;
  }

 private:
  std::optional<Error> precheck() {
    auto at = [&](std::size_t off, std::string what, std::string hint) {
      return make_error(ErrorCode::lockfile_invalid, std::move(what), location(s_, source_, off),
                        std::move(hint));
    };
    if (s_.size() >= 2 &&
        ((s_[0] == '\xFF' && s_[1] == '\xFE') || (s_[0] == '\xFE' && s_[1] == '\xFF'))) {
      return at(0, "file is UTF-16 encoded: expected UTF-8 JSON",
                "re-save the file as UTF-8 without a byte order mark");
    }
    if (s_.size() >= 3 && s_.substr(0, 3) == "\xEF\xBB\xBF") {
      return at(0, "file starts with a UTF-8 byte order mark: expected JSON text",
                "re-save the file as UTF-8 without a byte order mark");
    }
    const std::size_t nul = s_.find('\0');
    if (nul != std::string_view::npos) {
      return at(nul, "NUL byte in the file: expected UTF-8 JSON text",
                "the file is binary, UTF-16 or truncated; regenerate it");
    }
    std::size_t k = 0;
    while (k < s_.size() && is_ws(s_[k])) ++k;
    if (k == s_.size()) {
      return at(k, "file is empty: expected a JSON value",
                "regenerate the file (for kernels.lock: `kernels lock <project>`)");
    }
    return std::nullopt;
  }

  static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  void skip_ws() {
    while (i_ < s_.size() && is_ws(s_[i_])) ++i_;
  }

  Error fail(std::size_t off, std::string what, std::string hint = {}) {
    return make_error(ErrorCode::lockfile_invalid, std::move(what), location(s_, source_, off),
                      std::move(hint));
  }
  bool set_error(std::size_t off, std::string what, std::string hint = {}) {
    error_ = fail(off, std::move(what), std::move(hint));
    return false;
  }

  std::string describe_here() const {
    if (i_ >= s_.size()) return "end of file";
    const char c = s_[i_];
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned char>(c));
      return std::string("byte ") + buf;
    }
    return std::string("'") + c + "'";
  }

  bool parse_value(Value& v, int depth) {
    if (i_ >= s_.size()) return set_error(i_, "unexpected end of file: expected a value");
    if (++values_ > max_values_) {
      return set_error(i_, "more than " + std::to_string(max_values_) + " JSON values",
                       "this is far larger than any file this tool writes; regenerate it");
    }
    v.offset = i_;
    const char c = s_[i_];
    switch (c) {
      case '{': return parse_object(v, depth + 1);
      case '[': return parse_array(v, depth + 1);
      case '"': v.type = Value::Type::string; return parse_string(v.text);
      case 't': return parse_literal(v, "true", Value::Type::boolean, true);
      case 'f': return parse_literal(v, "false", Value::Type::boolean, false);
      case 'n': return parse_literal(v, "null", Value::Type::null, false);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(v);
        return set_error(i_, "unexpected " + describe_here() + ": expected a value");
    }
  }

  bool parse_literal(Value& v, std::string_view word, Value::Type type, bool b) {
    if (s_.substr(i_, word.size()) != word) {
      return set_error(i_, "unexpected " + describe_here() + ": expected a value");
    }
    i_ += word.size();
    v.type = type;
    v.boolean = b;
    return true;
  }

  bool parse_number(Value& v) {
    const std::size_t start = i_;
    auto digit = [&] { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; };
    if (s_[i_] == '-') ++i_;
    if (!digit()) return set_error(i_, "malformed number: expected a digit");
    if (s_[i_] == '0') {
      ++i_;
      if (digit()) return set_error(start, "malformed number: leading zeros are not allowed");
    } else {
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digit()) return set_error(i_, "malformed number: expected a digit after '.'");
      while (digit()) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digit()) return set_error(i_, "malformed number: expected a digit in the exponent");
      while (digit()) ++i_;
    }
    v.type = Value::Type::number;
    v.text.assign(s_.substr(start, i_ - start));
    return true;
  }

  bool hex4(std::size_t at, char32_t* out) {
    if (at + 4 > s_.size()) return false;
    char32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = s_[at + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return false;
    }
    *out = v;
    return true;
  }

  bool parse_string(std::string& out) {
    ++i_;  // opening quote
    out.clear();
    while (true) {
      if (i_ >= s_.size()) return set_error(i_, "unterminated string: expected '\"'");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) {
        return set_error(i_, "control character in a string: expected it escaped (\\n, \\u00XX)");
      }
      if (c == '\\') {
        const std::size_t esc = i_;
        if (i_ + 1 >= s_.size()) return set_error(i_, "unterminated escape sequence");
        const char e = s_[i_ + 1];
        i_ += 2;
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            char32_t cp;
            if (!hex4(i_, &cp))
              return set_error(esc, "malformed \\u escape: expected 4 hex digits");
            i_ += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return set_error(esc, "lone low surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              char32_t lo;
              if (i_ + 6 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u' || !hex4(i_ + 2, &lo) ||
                  lo < 0xDC00 || lo > 0xDFFF) {
                return set_error(esc,
                                 "lone high surrogate in \\u escape: expected a low surrogate");
              }
              i_ += 6;
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default: return set_error(esc, std::string("invalid escape sequence '\\") + e + "'");
        }
        continue;
      }
      char32_t cp;
      const std::size_t n = utf8_sequence(s_, i_, &cp);
      if (n == 0) return set_error(i_, "invalid UTF-8 in a string");
      out.append(s_.substr(i_, n));
      i_ += n;
    }
  }

  bool check_depth(std::size_t at, int depth) {
    if (depth > max_depth_) {
      return set_error(at, "nesting deeper than " + std::to_string(max_depth_) + " levels",
                       "this is not a file this tool writes; regenerate it");
    }
    return true;
  }

  bool parse_array(Value& v, int depth) {
    if (!check_depth(i_, depth)) return false;
    v.type = Value::Type::array;
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    while (true) {
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        return set_error(i_, "trailing comma: expected a value after ','");
      }
      v.items.emplace_back();
      if (!parse_value(v.items.back(), depth)) return false;
      skip_ws();
      if (i_ >= s_.size()) return set_error(i_, "unexpected end of file: expected ',' or ']'");
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        return true;
      }
      return set_error(i_, "unexpected " + describe_here() + ": expected ',' or ']'");
    }
  }

  bool parse_object(Value& v, int depth) {
    if (!check_depth(i_, depth)) return false;
    v.type = Value::Type::object;
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    // Small objects are scanned; large ones (tree caches) get an index so parsing stays linear.
    std::unordered_map<std::string, std::size_t> index;
    while (true) {
      skip_ws();
      if (i_ >= s_.size()) return set_error(i_, "unexpected end of file: expected a key");
      if (s_[i_] == '}') return set_error(i_, "trailing comma: expected a key after ','");
      if (s_[i_] != '"') {
        return set_error(i_, "unexpected " + describe_here() + ": expected a string key");
      }
      Member m;
      m.key_offset = i_;
      if (!parse_string(m.key)) return false;
      if (const Member* first = find_member(v, index, m.key)) {
        return set_error(m.key_offset,
                         "duplicate key " + quote(m.key) + " (first at " +
                             location(s_, source_, first->key_offset) + ")",
                         "each key may appear once in an object; remove one of them");
      }
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') {
        return set_error(i_, "unexpected " + describe_here() + ": expected ':' after a key");
      }
      ++i_;
      skip_ws();
      if (!parse_value(m.value, depth)) return false;
      v.members.push_back(std::move(m));
      if (v.members.size() > 16) {
        if (index.empty()) {
          for (std::size_t k = 0; k < v.members.size(); ++k) index.emplace(v.members[k].key, k);
        } else {
          index.emplace(v.members.back().key, v.members.size() - 1);
        }
      }
      skip_ws();
      if (i_ >= s_.size()) return set_error(i_, "unexpected end of file: expected ',' or '}'");
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        return true;
      }
      return set_error(i_, "unexpected " + describe_here() + ": expected ',' or '}'");
    }
  }

  static const Member* find_member(const Value& v,
                                   const std::unordered_map<std::string, std::size_t>& index,
                                   const std::string& key) {
    if (index.empty()) {
      for (const Member& m : v.members) {
        if (m.key == key) return &m;
      }
      return nullptr;
    }
    auto it = index.find(key);
    return it == index.end() ? nullptr : &v.members[it->second];
  }

  std::string_view s_;
  std::string_view source_;
  int max_depth_;
  std::size_t max_values_;
  std::size_t values_ = 0;
  std::size_t i_ = 0;
  std::optional<Error> error_;
};

}  // namespace

Result<Value> parse(std::string_view text, std::string_view source, Limits limits) {
  try {
    return Parser(text, source, limits).run();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::lockfile_invalid, "out of memory while parsing JSON",
                      std::string(source), "the file is far larger than any real one");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("JSON parser failed: ") + e.what(),
                      std::string(source));
  }
}

namespace {

std::string quote_impl(std::string_view s, bool ascii) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  auto u = [&](char32_t v) {
    out += "\\u";
    out += kHex[(v >> 12) & 0xF];
    out += kHex[(v >> 8) & 0xF];
    out += kHex[(v >> 4) & 0xF];
    out += kHex[v & 0xF];
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      case '\b':
        out += "\\b";
        ++i;
        continue;
      case '\f':
        out += "\\f";
        ++i;
        continue;
      default: break;
    }
    if (c < 0x20) {
      u(c);
      ++i;
      continue;
    }
    if (c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    char32_t cp;
    std::size_t n = utf8_sequence(s, i, &cp);
    if (n == 0) {  // not UTF-8: Python strings cannot hold this; write U+FFFD as a decoder would
      cp = 0xFFFD;
      n = 1;
    }
    if (!ascii && cp != 0x7F) {
      if (n == 1 && cp == 0xFFFD) append_utf8(out, cp);
      else out.append(s.substr(i, n));
    } else if (cp >= 0x10000) {
      const char32_t v = cp - 0x10000;
      u(0xD800 + (v >> 10));
      u(0xDC00 + (v & 0x3FF));
    } else {
      u(cp);
    }
    i += n;
  }
  out += '"';
  return out;
}

}  // namespace

std::string quote_ascii(std::string_view utf8) { return quote_impl(utf8, true); }
std::string quote(std::string_view utf8) { return quote_impl(utf8, false); }

}  // namespace kernels::json
