#include "kernels/lockfile/error.h"

namespace kernels {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::usage: return "usage";
    case ErrorCode::lockfile_missing: return "lockfile_missing";
    case ErrorCode::lockfile_stale: return "lockfile_stale";
    case ErrorCode::lockfile_invalid: return "lockfile_invalid";
    case ErrorCode::integrity_mismatch: return "integrity_mismatch";
    case ErrorCode::network: return "network";
    case ErrorCode::http_permanent: return "http_permanent";
    case ErrorCode::offline_not_cached: return "offline_not_cached";
    case ErrorCode::lock_timeout: return "lock_timeout";
    case ErrorCode::unsafe: return "unsafe";
    case ErrorCode::no_variant: return "no_variant";
    case ErrorCode::io: return "io";
    case ErrorCode::no_device: return "no_device";
    case ErrorCode::untrusted: return "untrusted";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

std::string printable_bytes(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

std::string Error::message() const {
  std::string out;
  if (!object.empty()) {
    out += object;
    out += ": ";
  }
  out += what;
  if (!hint.empty()) {
    out += "\nhint: ";
    out += hint;
  }
  return out;
}

}  // namespace kernels
