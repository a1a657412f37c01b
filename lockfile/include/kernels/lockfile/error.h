// One error type for the whole project and the exit codes it maps to.
//
// Libraries return Result<T>; only program edges (the CLI's main, the loader's C ABI) turn an
// Error into an exit code or a status value. Every ErrorCode has exactly one exit code, documented
// in README.md ("Exit codes") and printed by `kernels --help`.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kernels {

enum class ErrorCode : int {
  usage = 2,               // bad command line or bad argument value
  lockfile_missing = 3,    // no kernels.lock where one was expected
  lockfile_stale = 4,      // kernels.lock does not match pyproject.toml or the Hub (--locked)
  lockfile_invalid = 5,    // kernels.lock / pyproject.toml / tree JSON is malformed
  integrity_mismatch = 6,  // bytes on disk or on the wire do not match the expected hash or size
  network = 7,             // network failure that persisted after retries
  http_permanent = 8,      // permanent HTTP error: 401, 403, 404, 410, ... (not retried)
  offline_not_cached = 9,  // offline mode and the needed data is not in the cache
  lock_timeout = 10,       // waited too long for a cache lock held by another process
  unsafe = 11,             // unsafe archive entry or unsafe cache permissions
  no_variant = 12,         // no build variant fits this machine
  io = 13,                 // filesystem error: permission, disk full, not a directory, ...
  no_device = 14,          // a GPU or the CUDA driver was needed and is not there
  untrusted = 15,          // the kernel's publisher is not a trusted kernel publisher on the Hub
  internal = 70,           // a bug: please report it
};

constexpr int exit_code(ErrorCode code) { return static_cast<int>(code); }
std::string_view error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string what;    // what failed, e.g. "duplicate key \"sha\""
  std::string object;  // on which object: a path (with :line:column), a URL, a repo id
  std::string hint;    // what to do next; may be empty

  // "<object>: <what>" followed by "\nhint: <hint>" when there is a hint.
  std::string message() const;
};

// Untrusted text (a server's header, a key from a file) made safe to put in a message: control
// and non-ASCII bytes as \xHH, so nothing it holds can move the cursor or hide itself.
std::string printable_bytes(std::string_view text);

inline Error make_error(ErrorCode code, std::string what, std::string object = {},
                        std::string hint = {}) {
  return Error{code, std::move(what), std::move(object), std::move(hint)};
}

// A value or an Error, in the spirit of std::expected (C++23).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> ok() { return {}; }

}  // namespace kernels
