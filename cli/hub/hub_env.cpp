// HubOptions from the environment, with the same variables and precedence as huggingface_hub,
// plus the CA and proxy variables that libcurl leaves to the program.
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "hub_client.h"
#include "hub_protocol.h"
#include "kernels/lockfile/env.h"
#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/text.h"

#ifndef KERNELS_HUB_VERSION
#define KERNELS_HUB_VERSION "0"
#endif

namespace kernels::cli {
namespace {

namespace fs = std::filesystem;

// The process environment (lockfile env.h's lookup); a variable set to "" counts as unset here,
// as huggingface_hub treats its settings.
std::optional<std::string> env(const char* name) {
  std::optional<std::string> v = process_env()(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

// KERNELS_JOBS, when --jobs did not say: 1 to 256, else ErrorCode::usage naming the variable.
Result<int> jobs_from_env(int default_jobs) {
  auto v = env("KERNELS_JOBS");
  if (!v) return default_jobs;
  int n = 0;
  const std::string_view s(*v);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 1 || n > 256) {
    return make_error(ErrorCode::usage, "KERNELS_JOBS must be a number from 1 to 256",
                      "KERNELS_JOBS=" + std::string(s.substr(0, 40)),
                      "fix or unset KERNELS_JOBS, or pass --jobs N");
  }
  return n;
}

// KERNELS_RETRIES: how often a failed request (refused or dropped connection, timeout, 408, 429,
// 5xx) is tried again, 0 to 20; else ErrorCode::usage naming the variable.
Result<int> retries_from_env(int default_retries) {
  auto v = env("KERNELS_RETRIES");
  if (!v) return default_retries;
  int n = 0;
  const std::string_view s(*v);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 0 || n > 20) {
    return make_error(ErrorCode::usage, "KERNELS_RETRIES must be a number from 0 to 20",
                      "KERNELS_RETRIES=" + std::string(s.substr(0, 40)),
                      "fix or unset KERNELS_RETRIES (default 5)");
  }
  return n;
}

// "~" and "~/..." as Python's os.path.expanduser reads them (the HOME variable).
std::string expand_user(std::string path) {
  if (path == "~" || path.rfind("~/", 0) == 0) {
    if (auto home = env("HOME")) path = *home + path.substr(1);
  }
  return path;
}

fs::path hf_home() {
  if (auto home = env("HF_HOME")) return expand_user(*home);
  if (auto xdg = env("XDG_CACHE_HOME")) return fs::path(*xdg) / "huggingface";
  return fs::path(env("HOME").value_or("/")) / ".cache" / "huggingface";
}

Result<void> check_path_variable(const char* name, bool directory) {
  auto value = env(name);
  if (!value) return ok();
  std::error_code ec;
  bool good = directory ? fs::is_directory(*value, ec) : fs::is_regular_file(*value, ec);
  if (!good) {
    return make_error(ErrorCode::usage,
                      std::string(name) + " names " +
                          (directory ? "no existing directory" : "no existing file"),
                      *value, std::string("fix or unset ") + name);
  }
  return ok();
}

Result<void> check_proxy(const std::string& value, const char* name) {
  CURLU* u = curl_url();
  // CURLU_NON_SUPPORT_SCHEME: socks4/socks5 are proxy schemes, not protocols libcurl fetches, so
  // the URL parser would call them unsupported; the list below decides.
  auto code = curl_url_set(u, CURLUPART_URL, value.c_str(),
                           CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME);
  std::string scheme;
  if (code == CURLUE_OK) {
    char* s = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK) scheme = s;
    curl_free(s);
  }
  curl_url_cleanup(u);
  if (code != CURLUE_OK) {
    return make_error(ErrorCode::usage,
                      std::string(name) + " is not a proxy URL: " + curl_url_strerror(code),
                      hub::redact_url(value, ""),
                      std::string("set ") + name + " to http://host:port, or unset it");
  }
  static const char* known[] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
  if (std::none_of(std::begin(known), std::end(known),
                   [&](const char* k) { return scheme == k; })) {
    return make_error(ErrorCode::usage,
                      std::string(name) + " has an unsupported scheme \"" + scheme + "\"",
                      hub::redact_url(value, ""),
                      std::string("set ") + name + " to http://host:port, or unset it");
  }
  return ok();
}

// A token file is a line of text. O_NONBLOCK and fstat before reading: a FIFO there would block
// every command forever; a bound: /dev/zero (or a huge file) would be read without end.
constexpr std::size_t kMaxTokenFileBytes = 64 * 1024;

Result<std::string> read_token_file(const fs::path& path, const std::string& var) {
  const std::string hint = "fix its permissions, or fix or unset " + var;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return make_error(ErrorCode::usage,
                      std::string("cannot read the token file: ") + std::strerror(errno),
                      path.string(), hint);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::usage, "cannot read the token file: not a regular file",
                      path.string(), "point " + var + " at a file holding the token, or unset it");
  }
  std::string text;
  const int err = read_to_end(fd, text, kMaxTokenFileBytes);
  ::close(fd);
  if (err == EFBIG) {
    return make_error(ErrorCode::usage,
                      "the token file is larger than " + std::to_string(kMaxTokenFileBytes) +
                          " bytes: not a token",
                      path.string(), "point " + var + " at a file holding the token, or unset it");
  }
  if (err != 0) {
    return make_error(ErrorCode::usage,
                      std::string("cannot read the token file: ") + std::strerror(err),
                      path.string(), hint);
  }
  return text;
}

// The token becomes an Authorization header value: a line break in it would end that header and
// start another (header injection), other control characters corrupt it. Never print the token.
Result<void> check_token(const std::string& token, const std::string& source,
                         const std::string& object, const std::string& var) {
  const bool bad = std::any_of(token.begin(), token.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  if (!bad) return ok();
  return make_error(ErrorCode::usage,
                    source + " holds a line break or another control character inside the token",
                    object, "a token is one line; fix or unset " + var);
}

}  // namespace

Result<std::optional<std::string>> hub_token_from_env() {
  if (env_truthy(process_env(), "HF_HUB_DISABLE_IMPLICIT_TOKEN"))
    return std::optional<std::string>();
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    if (auto v = env(name)) {
      const std::string token(trim_space(*v));
      if (token.empty()) continue;
      if (auto r = check_token(token, name, name, name); !r) return std::move(r).error();
      return std::optional<std::string>(token);
    }
  }
  auto from_variable = env("HF_TOKEN_PATH").has_value();
  fs::path path = from_variable ? fs::path(expand_user(*env("HF_TOKEN_PATH")))
                                : hf_home() / "token";
  const std::string var = from_variable ? "HF_TOKEN_PATH" : "HF_HOME";
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<std::string>();
  auto text = read_token_file(path, var);
  if (!text) return std::move(text).error();
  const std::string token(trim_space(*text));
  if (token.empty()) return std::optional<std::string>();
  if (auto r = check_token(token, "the token file", path.string(), var); !r)
    return std::move(r).error();
  return std::optional<std::string>(token);
}

bool hub_offline(const HubCommandLine& given) {
  return given.offline || env_truthy(process_env(), "HF_HUB_OFFLINE") ||
         env_truthy(process_env(), "TRANSFORMERS_OFFLINE");
}

Result<HubOptions> hub_options_from_env(const HubCommandLine& given) {
  HubOptions options;
  if (auto endpoint = env("HF_ENDPOINT")) {
    options.endpoint = *endpoint;
  } else if (env_truthy(process_env(), "HUGGINGFACE_CO_STAGING")) {
    options.endpoint = "https://hub-ci.huggingface.co";
  }
  while (options.endpoint.size() > 1 && options.endpoint.back() == '/') options.endpoint.pop_back();
  bool is_file = options.endpoint.rfind("file://", 0) == 0;
  bool is_https = options.endpoint.rfind("https://", 0) == 0;
  if (!is_file && !is_https && options.endpoint.rfind("http://", 0) != 0) {
    return make_error(ErrorCode::usage, "HF_ENDPOINT is neither http(s):// nor file://",
                      options.endpoint, "set HF_ENDPOINT to https://host or file:///dir");
  }

  auto token = hub_token_from_env();
  if (!token) return std::move(token).error();
  options.token = std::move(*token);
  options.offline = hub_offline(given);
  options.user_agent = "kernels-cpp/" KERNELS_HUB_VERSION;
  // huggingface_hub's read timeout; here it is the stall window (no byte for this long).
  if (auto timeout = env("HF_HUB_DOWNLOAD_TIMEOUT")) {
    char* end = nullptr;
    double seconds = std::strtod(timeout->c_str(), &end);
    if (end == timeout->c_str() || *end != '\0' || !(seconds >= 1) || seconds > 86400) {
      return make_error(ErrorCode::usage,
                        "HF_HUB_DOWNLOAD_TIMEOUT is not a number of seconds (1 to 86400)", *timeout,
                        "set HF_HUB_DOWNLOAD_TIMEOUT to e.g. 30, or unset it");
    }
    options.stall_timeout = std::chrono::seconds(static_cast<long>(seconds));
  }

  // libcurl reads none of these; the curl tool's order, then Python requests' variable.
  for (const char* name : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    if (auto r = check_path_variable(name, false); !r) return std::move(r).error();
  }
  if (auto r = check_path_variable("SSL_CERT_DIR", true); !r) return std::move(r).error();
  for (const char* name : {"CURL_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"}) {
    if (auto v = env(name)) {
      if (std::string(name) == "REQUESTS_CA_BUNDLE") {
        if (auto r = check_path_variable(name, false); !r) return std::move(r).error();
      }
      options.ca_file = *v;
      options.ca_source = name;
      break;
    }
  }
  if (auto dir = env("SSL_CERT_DIR")) {
    options.ca_dir = *dir;
    if (options.ca_source.empty()) options.ca_source = "SSL_CERT_DIR";
  }

  // The variables libcurl itself would use for the endpoint's scheme (http_proxy is lowercase
  // only, by libcurl's rule), made explicit so a bad value fails loudly and names its variable.
  if (!is_file) {
    std::vector<const char*> names;
    if (is_https) names = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    else names = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (const char* name : names) {
      if (auto v = env(name)) {
        if (auto r = check_proxy(*v, name); !r) return std::move(r).error();
        options.proxy = *v;
        options.proxy_source = name;
        break;
      }
    }
    for (const char* name : {"no_proxy", "NO_PROXY"}) {
      if (auto v = env(name)) {
        options.no_proxy = *v;
        break;
      }
    }
  }
  Result<int> retries = retries_from_env(options.max_retries);
  if (!retries) return std::move(retries).error();
  options.max_retries = *retries;
  if (given.jobs > 0) {
    options.jobs = given.jobs;
  } else {
    Result<int> jobs = jobs_from_env(options.jobs);
    if (!jobs) return std::move(jobs).error();
    options.jobs = *jobs;
  }
  return options;
}

}  // namespace kernels::cli
