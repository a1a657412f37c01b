#include "toml_screen.h"

namespace kernels {
namespace {

bool ascii_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
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

}  // namespace

std::optional<TomlScreenFinding> screen_toml_for_parser(std::string_view text) {
  std::size_t i = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
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
      const bool escapes = c == '"';
      i += delimiter.size();
      while (i < n) {
        if (escapes && text[i] == '\\') {
          std::size_t next = i + 1;
          if (multi_line)
            while (next < n && ascii_whitespace(text[next])) ++next;
          if (multi_line && next < n && non_ascii(text[next]))
            return finding_at(text, next,
                              "a non-ASCII character right after a backslash in a multi-line "
                              "string is not accepted (the TOML library mis-reads it)",
                              "start the line with an ASCII character, or write the character "
                              "as \\uXXXX");
          i += 2;  // the escaped character; a line-ending backslash's run is plain text after it
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
    if (non_ascii(c))
      return finding_at(text, i, "a non-ASCII character outside a string or comment",
                        "TOML allows non-ASCII text only in quoted strings and comments");
    ++i;
  }
  return std::nullopt;
}

}  // namespace kernels
