#include "hub_protocol.h"
#include "kernels/lockfile/text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

namespace kernels::cli::hub {
namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string quote(std::string_view s, bool keep_slash) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

Error malformed(std::string what, std::string_view source) {
  return make_error(ErrorCode::lockfile_invalid, std::move(what), std::string(source),
                    "the Hub (or mirror) answered something that is not a valid listing; check "
                    "HF_ENDPOINT");
}

Result<std::vector<GitRef>> parse_ref_list(const nlohmann::json& doc, const char* key,
                                           std::string_view source) {
  std::vector<GitRef> out;
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_array()) return malformed(std::string("\"") + key + "\" is not an array", source);
  for (const auto& ref : *it) {
    if (!ref.is_object() || !ref.contains("name") || !ref["name"].is_string() ||
        !ref.contains("targetCommit") || !ref["targetCommit"].is_string()) {
      return malformed(std::string("an entry of \"") + key + "\" lacks name/targetCommit", source);
    }
    GitRef r{ref["name"].get<std::string>(), ref["targetCommit"].get<std::string>()};
    if (!is_lower_hex(r.commit, 40)) {
      return malformed("ref \"" + r.name + "\" has targetCommit \"" + r.commit +
                           "\", not 40 lowercase hex",
                       source);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::string quote_component(std::string_view s) { return quote(s, false); }
std::string quote_path(std::string_view s) { return quote(s, true); }

Result<void> check_repo_id(std::string_view repo_id) {
  auto bad = [&](std::string why) {
    return make_error(ErrorCode::usage, "invalid repo id: " + why, std::string(repo_id),
                      "a repo id is \"org/name\", e.g. kernels-community/flash-attn3");
  };
  auto slash = repo_id.find('/');
  if (slash == std::string_view::npos || repo_id.find('/', slash + 1) != std::string_view::npos)
    return bad("expected exactly one '/'");
  for (auto part : {repo_id.substr(0, slash), repo_id.substr(slash + 1)}) {
    if (part.empty() || part == "." || part == "..") return bad("empty or dot component");
    for (unsigned char c : part) {
      if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.'))
        return bad("character outside [A-Za-z0-9._-]");
    }
  }
  return ok();
}

Result<void> check_revision(std::string_view revision) {
  if (revision.empty())
    return make_error(ErrorCode::usage, "empty revision", {}, "name a branch, tag or commit");
  for (unsigned char c : revision) {
    if (c < 0x20 || c == 0x7f)
      return make_error(ErrorCode::usage, "revision contains a control character",
                        std::string(revision));
  }
  return ok();
}

std::string refs_path(std::string_view repo_id) {
  return "api/kernels/" + std::string(repo_id) + "/refs";
}

std::string organization_overview_path(std::string_view org) {
  return "api/organizations/" + std::string(org) + "/overview";
}

std::string revision_path(std::string_view repo_id, std::string_view revision) {
  return "api/kernels/" + std::string(repo_id) + "/revision/" + quote_component(revision);
}

std::string tree_path(std::string_view repo_id, std::string_view revision,
                      std::string_view path_in_repo) {
  std::string p = "api/kernels/" + std::string(repo_id) + "/tree/" + quote_component(revision);
  if (!path_in_repo.empty()) p += "/" + quote_component(path_in_repo);
  return p;
}

std::string resolve_path(std::string_view repo_id, std::string_view revision,
                         std::string_view path) {
  return "kernels/" + std::string(repo_id) + "/resolve/" + quote_component(revision) + "/" +
         quote_path(path);
}

std::optional<std::string> header(const Headers& headers, std::string_view name) {
  auto it = headers.find(ascii_lower(name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

Result<RepoRefs> parse_refs(std::string_view json, std::string_view source) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return malformed("refs are not a JSON object", source);
  RepoRefs refs;
  auto branches = parse_ref_list(doc, "branches", source);
  if (!branches) return std::move(branches).error();
  auto tags = parse_ref_list(doc, "tags", source);
  if (!tags) return std::move(tags).error();
  refs.branches = std::move(*branches);
  refs.tags = std::move(*tags);
  return refs;
}

Result<std::string> parse_revision_sha(std::string_view json, std::string_view source) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return malformed("revision answer is not a JSON object", source);
  auto it = doc.find("sha");
  if (it == doc.end() || !it->is_string())
    return malformed("revision answer has no \"sha\" string", source);
  auto sha = it->get<std::string>();
  if (!is_lower_hex(sha, 40)) return malformed("\"sha\" is not 40 lowercase hex", source);
  return sha;
}

std::optional<std::string> next_link(std::string_view link_header) {
  // Link: <url1>; rel="next", <url2>; rel="last"
  std::size_t pos = 0;
  while (pos < link_header.size()) {
    auto open = link_header.find('<', pos);
    if (open == std::string_view::npos) return std::nullopt;
    auto close = link_header.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    auto url = link_header.substr(open + 1, close - open - 1);
    auto next = link_header.find('<', close);
    auto params = ascii_lower(link_header.substr(close + 1, next == std::string_view::npos
                                                                ? std::string_view::npos
                                                                : next - close - 1));
    if (params.find("rel=\"next\"") != std::string::npos ||
        params.find("rel=next") != std::string::npos) {
      return std::string(trim_space(url));
    }
    pos = close + 1;
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  value = trim_space(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](unsigned char c) { return std::isdigit(c) != 0; })) {
    std::uint64_t seconds = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range) return std::chrono::milliseconds::max();
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
    if (seconds > 1'000'000'000) return std::chrono::milliseconds::max();
    return std::chrono::milliseconds(seconds * 1000);
  }
  std::string date(value);
  time_t when = curl_getdate(date.c_str(), nullptr);
  if (when == static_cast<time_t>(-1)) return std::nullopt;
  // Compared in seconds first: a date in year 20222 (or before year 1678) as system_clock
  // nanoseconds overflows (undefined behaviour; found by fuzz_hub). Far is "wait forever", as for
  // a huge delta-seconds; the retry loop caps the wait.
  const time_t now_seconds = std::chrono::system_clock::to_time_t(now);
  if (when <= now_seconds) return std::nullopt;
  if (when - now_seconds > 1'000'000'000) return std::chrono::milliseconds::max();
  auto at = std::chrono::system_clock::from_time_t(when);
  if (at <= now) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

bool is_retryable_status(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

std::string printable_header_value(std::string_view value, std::string_view secret) {
  std::string redacted(value);
  auto replace_all = [&](std::string_view what) {
    for (std::size_t at = redacted.find(what); !what.empty() && at != std::string::npos;
         at = redacted.find(what, at + 10)) {
      redacted.replace(at, what.size(), "<redacted>");
    }
  };
  replace_all(secret);
  // Whatever credential follows "Bearer " (a proxy echoing another header, a token file that
  // changed since): never shown.
  for (std::size_t at = redacted.find("Bearer "); at != std::string::npos;
       at = redacted.find("Bearer ", at + 7)) {
    std::size_t end = at + 7;
    while (end < redacted.size() && redacted[end] != ' ' && redacted[end] != ',' &&
           redacted[end] != ';' && redacted[end] != '"') {
      ++end;
    }
    if (redacted.compare(at + 7, end - at - 7, "<redacted>") != 0) {
      redacted.replace(at + 7, end - at - 7, "<redacted>");
    }
  }
  return printable_bytes(redacted);
}

Error http_error(long status, const Headers& headers, std::string object, std::string_view token) {
  auto code = header(headers, "x-error-code").value_or("");
  auto message = printable_header_value(header(headers, "x-error-message").value_or(""), token);
  if (message.size() > 200) message = message.substr(0, 200) + "...";
  std::string status_text = "HTTP " + std::to_string(status);
  auto with_message = [&](std::string what) {
    if (!message.empty()) what += ": " + message;
    return what;
  };
  if (code == "GatedRepo") {
    return make_error(ErrorCode::http_permanent,
                      with_message("gated repository, access not granted (" + status_text + ")"),
                      std::move(object),
                      "request access on the repository's Hub page, then set HF_TOKEN to a token "
                      "of the account that was granted access");
  }
  if (code == "RepoNotFound") {
    return make_error(ErrorCode::http_permanent,
                      with_message("repository not found (" + status_text + ")"), std::move(object),
                      status == 401 ? "check the repo id; if the repository is private, set "
                                      "HF_TOKEN to a token with read access"
                                    : "check the repo id (org/name) and HF_ENDPOINT");
  }
  if (code == "RevisionNotFound") {
    return make_error(ErrorCode::http_permanent,
                      with_message("revision not found (" + status_text + ")"), std::move(object),
                      "check the version, branch or commit; `kernels versions <repo>` lists them");
  }
  if (code == "EntryNotFound") {
    return make_error(ErrorCode::http_permanent,
                      with_message("file not found in the repository (" + status_text + ")"),
                      std::move(object),
                      "the revision does not contain this file; re-run `kernels lock` if the "
                      "lock names it");
  }
  if (status == 401) {
    return make_error(ErrorCode::http_permanent, with_message("unauthorized (" + status_text + ")"),
                      std::move(object),
                      "set HF_TOKEN (or HF_TOKEN_PATH) to a valid token with read access");
  }
  if (status == 403) {
    return make_error(ErrorCode::http_permanent, with_message("forbidden (" + status_text + ")"),
                      std::move(object),
                      "the token lacks permission for this repository; check HF_TOKEN");
  }
  if (status == 404) {
    return make_error(ErrorCode::http_permanent, with_message("not found (" + status_text + ")"),
                      std::move(object), "check the repo id, the revision and HF_ENDPOINT");
  }
  if (status >= 500) {
    return make_error(ErrorCode::network, with_message("server error (" + status_text + ")"),
                      std::move(object), "the Hub is failing; try again later");
  }
  return make_error(ErrorCode::http_permanent,
                    with_message("request refused (" + status_text + ")"), std::move(object),
                    "check HF_ENDPOINT and the request arguments");
}

std::optional<std::string> resolve_url(const std::string& base, const std::string& reference) {
  CURLU* u = curl_url();
  if (!u) return std::nullopt;
  std::optional<std::string> out;
  if (curl_url_set(u, CURLUPART_URL, base.c_str(), 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, reference.c_str(), 0) == CURLUE_OK) {
    char* full = nullptr;
    if (curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK) out = full;
    curl_free(full);
  }
  curl_url_cleanup(u);
  return out;
}

std::string url_origin(std::string_view url) {
  CURLU* u = curl_url();
  if (!u) return {};
  std::string result;
  std::string s(url);
  if (curl_url_set(u, CURLUPART_URL, s.c_str(), CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
    char* scheme = nullptr;
    char* host = nullptr;
    char* port = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
      result = ascii_lower(scheme) + "://" + ascii_lower(host) + ":" + port;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return result;
}

std::string redact_url(std::string_view url, std::string_view endpoint_origin) {
  std::string s(url);
  auto scheme_end = s.find("://");
  if (scheme_end != std::string::npos) {
    auto host_start = scheme_end + 3;
    auto path_start = s.find_first_of("/?#", host_start);
    auto at = s.rfind('@', path_start == std::string::npos ? s.size() : path_start);
    if (at != std::string::npos && at >= host_start)
      s.replace(host_start, at - host_start + 1, "<redacted>@");
  }
  if (url_origin(url) != endpoint_origin) {
    auto q = s.find('?');
    if (q != std::string::npos) s = s.substr(0, q) + "?<redacted>";
  }
  return s;
}

}  // namespace kernels::cli::hub
