// The `upstream` and `source` URLs of a variant's metadata.json, as kernels 0.17.2 reads them
// (kernels-common config/git_url.rs): a URL with one of the git schemes, or scp-like
// `user@host:path`, which is read as `ssh://user@host/path`. What 0.17.2 shows (`kernels info`)
// is the URL as the WHATWG URL standard serialises it (Rust's `url` crate): scheme lowercased,
// special (http/https) hosts lowercased and percent-decoded, IPv4 numbers and IPv6 addresses in
// canonical form, default ports dropped, `.`/`..` segments resolved, `https://h` -> `https://h/`,
// and the characters the standard escapes percent-encoded.
//
// Not reproduced: IDNA. A special host with non-ASCII characters is kept as given (lowercased
// ASCII), where 0.17.2 shows its punycode (`xn--...`) form.
#pragma once

#include <string>
#include <string_view>

#include "kernels/lockfile/error.h"

namespace kernels {

// The normalised URL, or ErrorCode::lockfile_invalid with 0.17.2's reason
// ("unsupported scheme `ftp` in git URL `...`, expected one of: ..." or "invalid git URL `...`").
Result<std::string> normalize_git_url(std::string_view url);

}  // namespace kernels
