// RFC 3161 signed timestamps (a bundle's timestampVerificationData), verified against the
// trusted root's timestamp authorities as sigstore-python does: a timestamp counts as a source of
// verified time only when its TSA chain (leaf with timeStamping, up to the root the trusted root
// lists) verifies at the timestamp's own time, its signature verifies, its message imprint is the
// digest of the bundle's signature, and its time lies in the authority's validity window. A
// timestamp that does not verify is not counted (and the bundle then needs another source of
// time), again as sigstore-python does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/sigstore/trusted_root.h"

namespace kernels::sigstore {

// The verified generation time (seconds since the epoch) of one DER TimeStampResp over
// `signature`, or nullopt.
std::optional<std::int64_t> verify_rfc3161(std::string_view response_der,
                                           std::string_view signature, const TrustedRoot& root);

}  // namespace kernels::sigstore
