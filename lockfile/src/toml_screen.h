// What toml++ is given. Debian 12's toml++ 3.3.0 reaches TOML_UNREACHABLE, undefined behaviour,
// when it asks whether certain non-ASCII characters (U+00A1 to U+0499 among them) are whitespace:
// its generated table has a hole. It asks that wherever whitespace may stand, which for invalid
// text can be anywhere (fuzzing found it outside strings, after a backslash in a multi-line
// string, and inside what it read as a malformed number), so no description of "safe places"
// is enough: toml++ is never given a non-ASCII byte. The text is checked here instead:
//   - it must be UTF-8 (a leading byte order mark is allowed and dropped);
//   - non-ASCII outside strings and comments is refused (TOML 1.0 allows it nowhere else);
// and then every non-ASCII character becomes '?' in the copy toml++ parses. Lines and columns
// stay as they were (toml++ counts characters), and only [tool.kernels.dependencies] is read
// from the result, whose keys are ASCII repo ids ('?' is not a repo id character, so a
// non-ASCII key is still refused) and whose values are integers.
// Found by fuzzing parse_pyproject (tests/fuzz/corpus/pyproject/: the inputs that found it).
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

// nullopt: `ascii` holds the text for toml++. Otherwise the first problem.
std::optional<TomlScreenFinding> screen_toml_for_parser(std::string_view text, std::string& ascii);

}  // namespace kernels
