// The Hub protocol without the transport: URL paths (the same for http(s) and file:// mirrors),
// response parsing, and the mapping of Hub error signals to kernels::Error. Internal to
// kernels_hub.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "hub_client.h"

namespace kernels::cli::hub {

// quote(s, safe=""): everything but ALPHA / DIGIT / "-._~" is percent-encoded.
std::string quote_component(std::string_view s);
// quote(s): like quote_component but keeps "/".
std::string quote_path(std::string_view s);

// "org/name": two non-empty components of [A-Za-z0-9._-], neither "." nor "..".
Result<void> check_repo_id(std::string_view repo_id);
// A revision is any non-empty string without control characters (it is percent-encoded).
Result<void> check_revision(std::string_view revision);

// Paths relative to the endpoint, without a leading "/" (the mirror layout in hub_client.h).
std::string refs_path(std::string_view repo_id);
std::string revision_path(std::string_view repo_id, std::string_view revision);
std::string tree_path(std::string_view repo_id, std::string_view revision,
                      std::string_view path_in_repo = {});
std::string resolve_path(std::string_view repo_id, std::string_view revision,
                         std::string_view path);
// api/organizations/{org}/overview (the organisation of a repo id: its part before '/').
std::string organization_overview_path(std::string_view org);

// Response headers, names lowercased; a repeated header keeps its last value.
using Headers = std::map<std::string, std::string>;
std::optional<std::string> header(const Headers& headers, std::string_view name);

Result<RepoRefs> parse_refs(std::string_view json, std::string_view source);
// The "sha" of a revision answer, 40 lowercase hex.
Result<std::string> parse_revision_sha(std::string_view json, std::string_view source);
// The target of `Link: <url>; rel="next"`, or nullopt.
std::optional<std::string> next_link(std::string_view link_header);

// Retry-After: delta-seconds or an HTTP date (relative to `now`). nullopt for garbage, negative
// values and dates in the past.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

bool is_retryable_status(long status);

// A permanent HTTP answer (4xx, or 5xx that is not retried) as an Error: X-Error-Code
// (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) and the status pick the message and
// the hint. `object` names the request (a redacted URL or a mirror path). The server's
// X-Error-Message is shown through printable_header_value with `token` redacted.
Error http_error(long status, const Headers& headers, std::string object,
                 std::string_view token = {});

// A header value as it may be printed: `secret` (the token) and any "Bearer <credential>" become
// "<redacted>"; control characters, DEL and non-ASCII bytes become \xNN, so a server cannot
// move the cursor, recolour the terminal or fake lines in a log.
std::string printable_header_value(std::string_view value, std::string_view secret);

// Removes "user:pass@" from a URL, and the query of URLs outside `endpoint_origin` (signed CDN
// URLs carry credentials there).
std::string redact_url(std::string_view url, std::string_view endpoint_origin);
// `reference` (absolute, or relative like a Location or Link target) resolved against `base`.
std::optional<std::string> resolve_url(const std::string& base, const std::string& reference);
// "scheme://host:port" with the default port made explicit, lowercase; empty if unparsable.
std::string url_origin(std::string_view url);

}  // namespace kernels::cli::hub
