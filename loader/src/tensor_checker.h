// The generic half of argument validation: what any kl_tensor can be asked (given, rank, shape,
// dtype, strides, device) without knowing which attention argument it is. It records the first
// broken rule as an ArgViolation; every check after it is a no-op, so a rule set reads as a flat
// list of checks and stops at the first complaint without guarding each one.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "kernels/kernels_loader.h"
#include "kernels/loader/driver.h"
#include "validate.h"

namespace kernels::loader {

// A tensor with data == NULL is "not given" (None in Python).
inline bool given(const kl_tensor& t) { return t.data != nullptr; }

// a * b for extents, INT64_MAX when it does not fit (or an operand is negative: extents are
// checked by tensor(), but a product may be formed before that check has run). A wrapped product
// could pass a range check: (2, 2^24) pages of 2^40 rows is 2^64 = 0 rows.
std::int64_t extent_product(std::int64_t a, std::int64_t b);

const char* dtype_name(int dtype);
// "(2, 3)", "(5,)": the shape as torch prints it.
std::string shape_str(const kl_tensor& t);

class TensorChecker {
 public:
  explicit TensorChecker(const DeviceProperties& device) : device_(device) {}

  bool failed() const { return violation_.has_value(); }
  std::optional<ArgViolation> take() { return std::move(violation_); }

  // Records the violation unless one is recorded already (the first one is what the caller
  // sees). Always false, so a check can `return fail(...)`.
  bool fail(std::string rule, std::string argument, std::string message, std::string hint = {});

  // Each check below is skipped (true when nothing failed yet) for a tensor not given, and does
  // nothing once a violation is recorded.

  // Structure every tensor must have: a sane rank and shape, and the stream's device.
  bool tensor(const kl_tensor& t, const char* name);
  // Like tensor(), and not given is the violation "required".
  bool required(const kl_tensor& t, const char* name);
  bool rank(const kl_tensor& t, const char* name, int want, const char* layout);
  bool dims(const kl_tensor& t, const char* name, std::initializer_list<std::int64_t> want,
            const char* layout);
  bool last_dim_contiguous(const kl_tensor& t, const char* name);
  // Every dimension of extent > 1 has a stride >= 1 and the span fits in int64.
  bool positive_strides(const kl_tensor& t, const char* name);
  bool contiguous(const kl_tensor& t, const char* name);
  bool dtype(const kl_tensor& t, const char* name, int want, const char* rule,
             std::string hint = {});
  // int32, contiguous, 1-D of length n (n < 0: any length).
  bool index(const kl_tensor& t, const char* name, std::int64_t n, const char* layout);
  // The tensor is refused whenever it is given.
  bool unsupported(const kl_tensor& t, const char* name, const char* feature);

  // Scalars: `value` (a row count) fits the kernels' int32 indices.
  bool fits_int32(std::int64_t value, const char* name);

 private:
  bool skip(const kl_tensor& t) const { return failed() || !given(t); }

  const DeviceProperties& device_;
  std::optional<ArgViolation> violation_;
};

}  // namespace kernels::loader
