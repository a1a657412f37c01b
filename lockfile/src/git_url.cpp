// A WHATWG URL parser for absolute URLs (no base), to the extent git URLs need it, and
// kernels-common's git URL rule on top. Section names in comments are the URL standard's states.
#include "kernels/lockfile/git_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace kernels {
namespace {

constexpr std::array<std::string_view, 7> kGitSchemes = {"https",   "http",      "git",     "ssh",
                                                         "git+ssh", "git+https", "git+http"};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
int hex_value(char c) { return is_digit(c) ? c - '0' : lower(c) - 'a' + 10; }

// The percent-encode sets, as the `url` crate defines them.
enum class EncodeSet { controls, fragment, query, special_query, path, userinfo };

bool in_set(unsigned char c, EncodeSet set) {
  if (c < 0x20 || c > 0x7E) return true;
  if (set == EncodeSet::controls) return false;
  const bool fragment = c == ' ' || c == '"' || c == '<' || c == '>' || c == '`';
  switch (set) {
    case EncodeSet::fragment: return fragment;
    case EncodeSet::query:
    case EncodeSet::special_query:
      return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' ||
             (set == EncodeSet::special_query && c == '\'');
    case EncodeSet::path: return fragment || c == '#' || c == '?' || c == '{' || c == '}';
    case EncodeSet::userinfo:
      return fragment || c == '#' || c == '?' || c == '{' || c == '}' || c == '/' || c == ':' ||
             c == ';' || c == '=' || c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' ||
             c == '|';
    default: return false;
  }
}

std::string encode(std::string_view s, EncodeSet set) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (in_set(c, set)) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool forbidden_host_char(char c) {
  switch (c) {
    case '\0':
    case '\t':
    case '\n':
    case '\r':
    case ' ':
    case '#':
    case '/':
    case ':':
    case '<':
    case '>':
    case '?':
    case '@':
    case '[':
    case '\\':
    case ']':
    case '^':
    case '|': return true;
    default: return false;
  }
}

bool special_scheme(std::string_view scheme) {
  return scheme == "http" || scheme == "https" || scheme == "ws" || scheme == "wss" ||
         scheme == "ftp";
}

std::optional<int> default_port(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "ftp") return 21;
  return std::nullopt;
}

// IPv4 number parser: decimal, 0x hex, leading-zero octal.
std::optional<std::uint64_t> ipv4_number(std::string_view s) {
  int radix = 10;
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    radix = 16;
    s.remove_prefix(2);
  } else if (s.size() >= 2 && s[0] == '0') {
    radix = 8;
    s.remove_prefix(1);
  }
  if (s.empty()) return 0;
  std::uint64_t v = 0;
  for (char c : s) {
    int d = -1;
    if (radix == 16 && is_hex(c)) d = hex_value(c);
    if (radix != 16 && is_digit(c) && c - '0' < radix) d = c - '0';
    if (d < 0) return std::nullopt;
    v = v * radix + d;
    if (v > 0xFFFFFFFFull * 256) return std::nullopt;  // too large either way
  }
  return v;
}

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool ends_in_a_number(std::string_view host) {
  std::vector<std::string_view> parts = split_dots(host);
  if (parts.back().empty()) {
    if (parts.size() == 1) return false;
    parts.pop_back();
  }
  std::string_view last = parts.back();
  if (!last.empty() && std::all_of(last.begin(), last.end(), is_digit)) return true;
  return last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') &&
         std::all_of(last.begin() + 2, last.end(), is_hex);
}

std::optional<std::string> ipv4(std::string_view host) {
  std::vector<std::string_view> parts = split_dots(host);
  if (parts.back().empty() && parts.size() > 1) parts.pop_back();
  if (parts.size() > 4) return std::nullopt;
  std::vector<std::uint64_t> numbers;
  for (std::string_view p : parts) {
    if (p.empty()) return std::nullopt;
    std::optional<std::uint64_t> n = ipv4_number(p);
    if (!n) return std::nullopt;
    numbers.push_back(*n);
  }
  for (std::size_t i = 0; i + 1 < numbers.size(); ++i)
    if (numbers[i] > 255) return std::nullopt;
  const std::uint64_t limit = 1ull << (8 * (5 - numbers.size()));
  if (numbers.back() >= limit) return std::nullopt;
  std::uint64_t address = numbers.back();
  for (std::size_t i = 0; i + 1 < numbers.size(); ++i) address += numbers[i] << (8 * (3 - i));
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    out += std::to_string((address >> shift) & 255);
    if (shift) out += '.';
  }
  return out;
}

// "[...]": the address in the standard's serialisation (lowercase hex, the first longest run of
// two or more zero pieces compressed, no embedded IPv4).
std::optional<std::string> ipv6(std::string_view bracketed) {
  const std::string inner(bracketed.substr(1, bracketed.size() - 2));
  unsigned char bytes[16];
  if (inet_pton(AF_INET6, inner.c_str(), bytes) != 1) return std::nullopt;
  std::array<unsigned, 8> pieces{};
  for (int i = 0; i < 8; ++i) pieces[i] = bytes[2 * i] << 8 | bytes[2 * i + 1];
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    int j = i;
    while (j < 8 && pieces[j] == 0) ++j;
    if (j - i > best_len) best = i, best_len = j - i;
    i = j == i ? i + 1 : j;
  }
  std::string out = "[";
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += i == 0 ? "::" : ":";
      i += best_len - 1;
      continue;
    }
    std::string piece;
    for (unsigned v = pieces[i]; v || piece.empty(); v >>= 4)
      piece.insert(piece.begin(), kHex[v & 15]);
    out += piece;
    if (i != 7) out += ':';
  }
  return out + "]";
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int extra = c < 0x80         ? 0
                      : (c >> 5) == 6  ? 1
                      : (c >> 4) == 14 ? 2
                      : (c >> 3) == 30 ? 3
                                       : -1;
    if (extra < 0 || (extra > 0 && i + extra >= s.size())) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += extra + 1;
  }
  return true;
}

std::optional<std::string> parse_host(std::string_view host, bool special) {
  if (!host.empty() && host.front() == '[') {
    if (host.back() != ']') return std::nullopt;
    return ipv6(host);
  }
  if (!special) {
    for (char c : host)
      if (forbidden_host_char(c)) return std::nullopt;
    return encode(host, EncodeSet::controls);
  }
  std::string domain = percent_decode(host);
  if (domain.empty() || !valid_utf8(domain)) return std::nullopt;
  for (char& c : domain) {
    const auto u = static_cast<unsigned char>(c);
    if (forbidden_host_char(c) || u < 0x20 || c == '%' || u == 0x7F) return std::nullopt;
    c = lower(c);
  }
  if (ends_in_a_number(domain)) return ipv4(domain);
  return domain;
}

bool single_dot(std::string_view s) { return s == "." || s == "%2e" || s == "%2E"; }
bool double_dot(std::string_view s) {
  std::string l(s);
  std::transform(l.begin(), l.end(), l.begin(), lower);
  return l == ".." || l == ".%2e" || l == "%2e." || l == "%2e%2e";
}

// Path state, from just after the authority (or the scheme, for a path without host) to the end
// of the path; returns the serialised path and advances `i`.
std::string parse_path(std::string_view s, std::size_t& i, bool special) {
  auto separator = [&](char c) { return c == '/' || (special && c == '\\'); };
  if (i < s.size() && separator(s[i])) ++i;
  std::vector<std::string> segments;
  std::string buffer;
  for (;; ++i) {
    const bool end = i >= s.size() || s[i] == '?' || s[i] == '#';
    if (!end && !separator(s[i])) {
      buffer += encode(s.substr(i, 1), EncodeSet::path);
      continue;
    }
    if (double_dot(buffer)) {
      // The url crate never pops a segment that looks like a Windows drive letter ("c:", "c|"),
      // whatever the scheme.
      const bool drive = !segments.empty() && segments.back().size() == 2 &&
                         is_alpha(segments.back()[0]) &&
                         (segments.back()[1] == ':' || segments.back()[1] == '|');
      if (!segments.empty() && !drive) segments.pop_back();
      if (end) segments.emplace_back();
    } else if (single_dot(buffer)) {
      if (end) segments.emplace_back();
    } else {
      segments.push_back(buffer);
    }
    buffer.clear();
    if (end) break;
  }
  std::string out;
  for (const std::string& segment : segments) out += "/" + segment;
  return out;
}

struct ParsedUrl {
  std::string scheme;
  std::string serialized;
};

// The basic URL parser without a base; nullopt where it fails.
std::optional<ParsedUrl> parse_url(std::string_view raw) {
  std::string input;
  {
    std::size_t b = 0, e = raw.size();
    while (b < e && static_cast<unsigned char>(raw[b]) <= 0x20) ++b;
    while (e > b && static_cast<unsigned char>(raw[e - 1]) <= 0x20) --e;
    for (char c : raw.substr(b, e - b))
      if (c != '\t' && c != '\n' && c != '\r') input += c;
  }
  std::string_view s = input;
  if (s.empty() || !is_alpha(s[0])) return std::nullopt;
  std::size_t i = 1;
  while (i < s.size() &&
         (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    ++i;
  if (i >= s.size() || s[i] != ':') return std::nullopt;
  ParsedUrl url;
  url.scheme = std::string(s.substr(0, i));
  std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(), lower);
  ++i;
  if (url.scheme == "file") {
    // Never a git URL: only whether it parses matters (for the error's wording).
    if (s.substr(i, 2) == "//") {
      std::string_view host = s.substr(i + 2, s.find_first_of("/\\?#", i + 2) - i - 2);
      if (!host.empty() && !parse_host(host, true)) return std::nullopt;
    }
    return url;
  }
  const bool special = special_scheme(url.scheme);
  std::string out = url.scheme + ":";
  bool has_authority = false;
  if (special) {
    while (i < s.size() && (s[i] == '/' || s[i] == '\\')) ++i;
    has_authority = true;
  } else if (s.substr(i, 2) == "//") {
    i += 2;
    has_authority = true;
  }
  if (has_authority) {
    std::size_t end = i;
    while (end < s.size() && s[end] != '/' && s[end] != '?' && s[end] != '#' &&
           !(special && s[end] == '\\'))
      ++end;
    if (!special) {
      // ssh://h:22\x: the port ends at the backslash (the url crate's reading).
      const std::size_t at = s.substr(i, end - i).rfind('@');
      std::size_t colon = s.substr(i, end - i).find(':', at == std::string_view::npos ? 0 : at + 1);
      std::size_t slash = s.substr(i, end - i).find('\\');
      if (colon != std::string_view::npos && slash != std::string_view::npos && slash > colon &&
          s.substr(i, end - i).find(']', colon) == std::string_view::npos &&
          std::all_of(s.begin() + i + colon + 1, s.begin() + i + slash, is_digit))
        end = i + slash;
    }
    std::string_view authority = s.substr(i, end - i);
    i = end;
    std::string userinfo;
    if (std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
      std::string_view info = authority.substr(0, at);
      authority.remove_prefix(at + 1);
      if (authority.empty()) return std::nullopt;
      std::size_t colon = info.find(':');
      std::string user = encode(info.substr(0, colon), EncodeSet::userinfo);
      std::string password = colon == std::string_view::npos
                                 ? ""
                                 : encode(info.substr(colon + 1), EncodeSet::userinfo);
      if (!user.empty() || !password.empty())
        userinfo = user + (password.empty() ? "" : ":" + password) + "@";
    }
    std::string_view host = authority, port;
    bool in_brackets = false;
    for (std::size_t k = 0; k < authority.size(); ++k) {
      if (authority[k] == '[') in_brackets = true;
      if (authority[k] == ']') in_brackets = false;
      if (authority[k] == ':' && !in_brackets) {
        if (k == 0) return std::nullopt;  // a port without a host
        host = authority.substr(0, k);
        port = authority.substr(k + 1);
        break;
      }
    }
    if (special && host.empty()) return std::nullopt;
    std::optional<std::string> parsed_host = parse_host(host, special);
    if (!parsed_host) return std::nullopt;
    std::string port_text;
    if (!port.empty()) {
      if (!std::all_of(port.begin(), port.end(), is_digit)) return std::nullopt;
      std::uint64_t value = 0;
      for (char c : port) {
        value = value * 10 + (c - '0');
        if (value > 65535) return std::nullopt;
      }
      if (default_port(url.scheme) != static_cast<int>(value))
        port_text = ":" + std::to_string(value);
    }
    out += "//" + userinfo + *parsed_host + port_text;
    // After a port, the url crate ends a non-special authority at '\\' too, and the rest is the
    // path.
    if (special || (i < s.size() && (s[i] == '/' || (!port.empty() && s[i] == '\\'))))
      out += parse_path(s, i, special);
  } else if (i < s.size() && s[i] == '/') {
    // A path without a host that would read as "//host": the standard keeps it a path with "/.".
    std::string path = parse_path(s, i, special);
    out += (path.rfind("//", 0) == 0 ? "/." : "") + path;
  } else {
    std::size_t end = std::min(s.find_first_of("?#", i), s.size());
    out += encode(s.substr(i, end - i), EncodeSet::controls);  // an opaque path
    i = end;
  }
  if (i < s.size() && s[i] == '?') {
    std::size_t end = std::min(s.find('#', i), s.size());
    out += "?" + encode(s.substr(i + 1, end - i - 1),
                        special ? EncodeSet::special_query : EncodeSet::query);
    i = end;
  }
  if (i < s.size() && s[i] == '#') out += "#" + encode(s.substr(i + 1), EncodeSet::fragment);
  url.serialized = std::move(out);
  return url;
}

}  // namespace

Result<std::string> normalize_git_url(std::string_view url) {
  const std::string shown = "`" + printable_bytes(url) + "`";
  if (std::optional<ParsedUrl> parsed = parse_url(url)) {
    if (std::find(kGitSchemes.begin(), kGitSchemes.end(), parsed->scheme) == kGitSchemes.end()) {
      std::string expected;
      for (std::string_view s : kGitSchemes)
        expected += (expected.empty() ? "" : ", ") + std::string(s);
      return make_error(ErrorCode::lockfile_invalid,
                        "unsupported scheme `" + printable_bytes(parsed->scheme) + "` in git URL " +
                            shown + ", expected one of: " + expected);
    }
    return std::move(parsed->serialized);
  }
  // scp-like: user@host:path (a path not starting with '/'), read as ssh://user@host/path.
  if (std::size_t colon = url.find(':'); colon != std::string_view::npos && colon > 0 &&
                                         colon + 1 < url.size() && url[colon + 1] != '/') {
    const std::string ssh = "ssh://" + std::string(url.substr(0, colon)) + "/" +
                            std::string(url.substr(colon + 1));
    if (std::optional<ParsedUrl> parsed = parse_url(ssh)) return std::move(parsed->serialized);
  }
  return make_error(ErrorCode::lockfile_invalid, "invalid git URL " + shown);
}

}  // namespace kernels
