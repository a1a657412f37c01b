#include "toml_screen.h"

#include <cstdint>

namespace kernels {
namespace {

bool non_ascii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

TomlScreenFinding finding_at(std::string_view text, std::size_t offset, std::string what,
                             std::string hint) {
  TomlScreenFinding f;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++f.line;
      f.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++f.column;  // one per character, not per UTF-8 continuation byte
    }
  }
  f.what = std::move(what);
  f.hint = std::move(hint);
  return f;
}

// Bytes of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u;
  };
  const unsigned lead = byte(0);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    cp = lead & 0x07;
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return n;
}

// Offset of the first non-ASCII byte outside strings and comments, or npos. Strings and
// comments as TOML 1.0 writes them; for invalid text this may differ from where toml++ stops,
// which is harmless: toml++ sees only ASCII either way.
std::size_t non_ascii_outside_strings(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (c == '#') {  // a comment, to the end of the line
      while (i < n && text[i] != '\n') ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      const std::string_view delimiter = text.substr(i, 3) == (c == '"' ? "\"\"\"" : "'''")
                                             ? text.substr(i, 3)
                                             : text.substr(i, 1);
      const bool multi_line = delimiter.size() == 3;
      i += delimiter.size();
      while (i < n) {
        if (c == '"' && text[i] == '\\') {
          i += 2;  // the escaped character
          continue;
        }
        if (!multi_line && text[i] == '\n') break;  // unterminated: the parser stops here
        if (text.substr(i, delimiter.size()) == delimiter) {
          i += delimiter.size();
          // A multi-line string may end with one or two quotes of its own before the delimiter.
          for (int extra = 0; multi_line && extra < 2 && i < n && text[i] == c; ++extra) ++i;
          break;
        }
        ++i;
      }
      continue;
    }
    if (non_ascii(c)) return i;
    ++i;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<TomlScreenFinding> screen_toml_for_parser(std::string_view text, std::string& ascii) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  ascii.clear();
  ascii.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (!non_ascii(text[i])) {
      ascii.push_back(text[i++]);
      continue;
    }
    const std::size_t length = utf8_length(text, i);
    if (length == 0)
      return finding_at(text, i, "not UTF-8", "save the file as UTF-8 (TOML is UTF-8 text)");
    ascii.push_back('?');
    i += length;
  }
  if (const std::size_t at = non_ascii_outside_strings(text); at != std::string_view::npos)
    return finding_at(text, at, "a non-ASCII character outside a string or comment",
                      "TOML allows non-ASCII text only in quoted strings and comments");
  return std::nullopt;
}

}  // namespace kernels
