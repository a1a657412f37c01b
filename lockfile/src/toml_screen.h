// A pass over TOML text before it reaches toml++ (Debian 12 ships 3.3.0), which reaches
// TOML_UNREACHABLE, undefined behaviour, when it asks whether certain non-ASCII characters
// (U+00A1 to U+0499 among them) are whitespace: its generated table has a hole there. It asks
// that of every character where whitespace may stand: outside strings and comments, and in a
// multi-line basic string right after a backslash. Outside strings and comments TOML 1.0 allows
// only ASCII, so a non-ASCII character there is a syntax error anyway; after a backslash it is
// either an invalid escape or the first character after a line-ending backslash, which is valid
// TOML that this screen refuses too (with a hint), as the one case it cannot pass on safely.
// Found by fuzzing parse_pyproject (tests/fuzz/corpus/pyproject/tomlpp-unreachable-u02a0.toml).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kernels {

struct TomlScreenFinding {
  std::size_t line = 1;    // 1-based
  std::size_t column = 1;  // 1-based, in characters
  std::string what;
  std::string hint;
};

// nullopt: toml++ may parse `text`. A leading UTF-8 byte order mark is allowed.
std::optional<TomlScreenFinding> screen_toml_for_parser(std::string_view text);

}  // namespace kernels
