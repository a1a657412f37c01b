// The Hub client: the Hugging Face Hub protocol for kernel repos over libcurl, for http(s)://
// endpoints and file:///dir mirrors (a directory laid out like the URL paths requested).
//
// Requests per repo: one refs call, one recursive tree listing (all Link pages), one GET per file.
// No per-file HEAD. Retries with backoff on 408/429/5xx and network errors (honouring
// Retry-After), no retry of permanent errors, stall detection, parallel transfers, Range resume of
// our own partial files, bearer token never sent to another host/port after a redirect and never
// printed.
//
// Mirror layout (HF_ENDPOINT=file:///dir, or any static web server serving such a directory).
// Every file is exactly what the Hub answers at the URL path of the same name; the client never
// relies on a query string, so a static server that ignores queries can serve a mirror:
//   api/kernels/{org}/{name}/refs               refs JSON: {"branches":[{"name","ref",
//                                               "targetCommit"}],"converts":[],"tags":[...]}
//   api/kernels/{org}/{name}/revision/{rev}     revision JSON with at least {"id","sha"}; one file
//                                               per branch or tag name (v1, main) and per 40-hex
//                                               commit the mirror holds
//   api/kernels/{org}/{name}/tree/{commit}      the whole recursive tree listing as one JSON array
//                                               (serialize_tree_listing), files and directories
//   kernels/{org}/{name}/resolve/{commit}/{path}  the file's bytes (LFS files: the real content,
//                                               not the pointer)
//   api/organizations/{org}/overview            the organisation overview JSON (at least
//                                               {"name","trustedKernelPublisher"}): what the
//                                               trusted-publisher check reads (trusted_publisher.h)
// Files are stored under their commit only: over file:// a branch or tag name is mapped to its
// commit first, but a static web server can answer resolve/ requests by commit only, so callers
// pass commits (as `kernels download` does, from the lock).
// On disk the names are the decoded URL paths (what a static server maps a URL to); over http(s)
// {rev} and {path} are percent-encoded like the Hub expects, and tree listings are requested with
// "?recursive=true&expand=false", which a static server ignores.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/error.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::cli {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT, trailing '/' stripped
  std::optional<std::string> token;                 // HF_TOKEN / HF_TOKEN_PATH / $HF_HOME/token
  bool offline = false;                             // --offline / HF_HUB_OFFLINE
  int jobs = 8;                                     // parallel transfers
  // A failed request is tried again up to max_retries times (KERNELS_RETRIES), after
  // backoff_initial, doubling up to backoff_max: with the defaults a refused connection is given
  // up after 1 + 2 + 4 + 8 + 8 = 23 s of waiting (exit 7).
  int max_retries = 5;
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{8000};
  std::chrono::milliseconds retry_after_cap{60000};  // never sleep longer than this per retry
  std::chrono::seconds connect_timeout{10};
  // Abort a transfer that moves < 1 byte/s this long (CURLOPT_LOW_SPEED_*; not a whole-transfer
  // timeout). libcurl averages speed over the last ~5 s, so a stall right after a burst of bytes
  // is seen up to ~5 s later than one before the first byte.
  std::chrono::seconds stall_timeout{30};
  // Every request (all its attempts, retries and redirects together) must finish within
  // transfer_deadline_base plus its expected size at transfer_min_rate (bytes/s): a server that
  // trickles a byte a second, never tripping the stall detector, cannot hold a download (and
  // its blob lock) for days. 1 GiB: 120 s + 4096 s.
  std::chrono::seconds transfer_deadline_base{120};
  std::uint64_t transfer_min_rate = 256 * 1024;
  std::string user_agent;  // "kernels-cpp/<version>"

  // CA certificates (CURLOPT_CAINFO / CURLOPT_CAPATH): libcurl does not read these variables
  // itself. ca_source names the variable they came from, for error messages.
  std::optional<std::string> ca_file;  // CURL_CA_BUNDLE, SSL_CERT_FILE, REQUESTS_CA_BUNDLE
  std::optional<std::string> ca_dir;   // SSL_CERT_DIR
  std::string ca_source;
  // Proxy (CURLOPT_PROXY / CURLOPT_NOPROXY). hub_options_from_env picks the variable libcurl
  // would use for the endpoint's scheme; proxy_source names it, for error messages.
  std::optional<std::string> proxy;
  std::string proxy_source;
  std::optional<std::string> no_proxy;  // NO_PROXY / no_proxy

  // Where log lines go (the CLI prints warnings always and debug lines with -v). Tokens, URL
  // credentials and signed-URL queries are redacted before a line reaches the sink. Called on
  // the thread that called the HubClient method.
  enum class LogLevel { warning, info, debug };
  std::function<void(LogLevel, std::string_view)> log;
  bool log_wire = false;  // also log libcurl's request/response headers (debug level, redacted)
};

// What the command line said about the Hub; a value given there wins over the environment's.
struct HubCommandLine {
  bool offline = false;  // --offline
  int jobs = 0;          // --jobs; 0 = not given
};

// --offline, or HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE truthy (env.h: 1/ON/YES/TRUE, any case).
bool hub_offline(const HubCommandLine& given = {});

// All Hub configuration, resolved here and nowhere else: HF_ENDPOINT, HF_TOKEN,
// HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH, HF_HOME, offline (hub_offline), HF_HUB_DOWNLOAD_TIMEOUT
// (seconds -> stall_timeout), KERNELS_JOBS (1 to 256, read only when --jobs is not given),
// KERNELS_RETRIES (0 to 20 -> max_retries), and
// validates SSL_CERT_FILE / CURL_CA_BUNDLE / HTTPS_PROXY: a bad value is an ErrorCode::usage
// error naming the variable.
Result<HubOptions> hub_options_from_env(const HubCommandLine& given = {});

// The token lookup alone: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the file HF_TOKEN_PATH (default
// $HF_HOME/token, $HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface);
// whitespace and "\r\n" trimmed; an empty token is no token; a missing token file is no token
// (as in huggingface_hub), but one that exists and cannot be read is an ErrorCode::usage error
// naming the variable. HF_HUB_DISABLE_IMPLICIT_TOKEN (truthy) means no token.
Result<std::optional<std::string>> hub_token_from_env();

struct GitRef {
  std::string name;    // "v1", "main"
  std::string commit;  // targetCommit, 40 hex
};

struct RepoRefs {
  std::vector<GitRef> branches;
  std::vector<GitRef> tags;
  // Branches named v<N> (N parses as an integer), N -> commit; later duplicates win (Python rule).
  std::map<int, std::string> versions() const;
};

struct DownloadRequest {
  std::string repo_id;
  std::string revision;  // a commit sha
  std::string path;      // repo-relative file path
  FileDigest digest;     // checked while streaming
  std::uint64_t size = 0;
  std::filesystem::path temp_path;  // where bytes go; an existing partial file here is resumed
  // The directory of temp_path, already opened without following links (the cache's blobs/,
  // walked from the cache root: kernels/lockfile/cache_dir.h). The temp file is created, resumed
  // and removed by its file name relative to it, never by path. Null: the directory temp_path
  // names is opened as it stands (a mirror being written). Must outlive the download call.
  const CacheDir* temp_dir = nullptr;
};

struct TransferStats {
  std::uint64_t requests = 0;  // HTTP requests sent (every retry, page and redirect hop counts)
  std::uint64_t bytes = 0;     // body bytes received
  // Of `requests`, those sent to the endpoint's own origin: what the Hub's rate limits count.
  // An LFS file is one Hub request plus one on the CDN host it redirects to.
  std::uint64_t hub_requests = 0;
};

// Progress callbacks arrive on the calling thread.
struct ProgressSink {
  virtual ~ProgressSink() = default;
  virtual void on_start(std::uint64_t total_bytes, std::size_t files) = 0;
  virtual void on_bytes(std::uint64_t bytes_done) = 0;
  virtual void on_file_done(const DownloadRequest& request, const Result<void>& result) = 0;
};

// One HubClient is used from one thread at a time; it keeps its connections open between calls.
class HubClient {
 public:
  static Result<std::unique_ptr<HubClient>> create(HubOptions options);
  virtual ~HubClient() = default;

  virtual Result<RepoRefs> list_refs(const std::string& repo_id) = 0;
  // GET /api/kernels/{repo}/revision/{rev} -> "sha".
  virtual Result<std::string> resolve_revision(const std::string& repo_id,
                                               const std::string& revision) = 0;
  // GET /api/kernels/{repo}/tree/{rev}[/{path}]?recursive=true|false, following Link pages.
  virtual Result<RepoTree> list_tree(const std::string& repo_id, const std::string& revision,
                                     const std::string& path = "", bool recursive = true) = 0;
  // GET /api/organizations/{org}/overview: the answer's bytes (JSON, at most 1 MiB). A missing
  // organisation is ErrorCode::http_permanent (404), as for a missing repo.
  virtual Result<std::string> organization_overview(const std::string& org) = 0;
  // GET /kernels/{repo}/resolve/{rev}/{path} into memory (small files: kernel-status.toml,
  // metadata). nullopt when the Hub says EntryNotFound (404).
  virtual Result<std::optional<std::string>> fetch_text(const std::string& repo_id,
                                                        const std::string& revision,
                                                        const std::string& path,
                                                        std::size_t max_bytes = 1 << 20) = 0;
  // Parallel downloads. Each file's size and digest are checked while it streams; on success the
  // verified bytes are in request.temp_path, closed but not fsynced: the caller moves them into
  // place and decides about durability (the installer fsyncs a blob only with KERNELS_FSYNC=1).
  // One Result per request.
  // After an integrity failure the temp file is gone; after a network failure it keeps the bytes
  // received, and the next download() of the same request resumes from them. Temp paths must be
  // distinct within one call.
  virtual std::vector<Result<void>> download(std::span<const DownloadRequest> requests,
                                             ProgressSink* progress = nullptr) = 0;

  virtual TransferStats stats() const = 0;
};

}  // namespace kernels::cli
