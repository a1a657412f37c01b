// ASCII text rules used across the tools (header names, URL schemes, hex ids, settings), one home:
// byte-wise, independent of the locale.
#pragma once

#include <string>
#include <string_view>

namespace kernels {

// `s` with A-Z lowered; every other byte (UTF-8 included) as it is.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

inline bool ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// `s` without leading and trailing ASCII white space.
inline std::string_view trim_space(std::string_view s) {
  while (!s.empty() && ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace kernels
