#include "tensor_checker.h"

#include <limits>
#include <utility>

namespace kernels::loader {

std::int64_t extent_product(std::int64_t a, std::int64_t b) {
  std::int64_t product = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product))
    return std::numeric_limits<std::int64_t>::max();
  return product;
}

const char* dtype_name(int dtype) {
  switch (dtype) {
    case KL_DTYPE_FLOAT16: return "float16";
    case KL_DTYPE_BFLOAT16: return "bfloat16";
    case KL_DTYPE_FLOAT32: return "float32";
    case KL_DTYPE_INT32: return "int32";
    case KL_DTYPE_FLOAT8_E4M3: return "float8_e4m3fn";
    case KL_DTYPE_INT64: return "int64";
    default: return "unknown dtype";
  }
}

std::string shape_str(const kl_tensor& t) {
  std::string s = "(";
  for (int i = 0; i < t.ndim && i < 4; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + (t.ndim == 1 ? ",)" : ")");
}

bool TensorChecker::fail(std::string rule, std::string argument, std::string message,
                         std::string hint) {
  if (!violation_)
    violation_ = ArgViolation{std::move(rule), std::move(argument), std::move(message),
                              std::move(hint)};
  return false;
}

bool TensorChecker::tensor(const kl_tensor& t, const char* name) {
  if (skip(t)) return !failed();
  if (t.ndim < 1 || t.ndim > 4)
    return fail("rank", name,
                std::string(name) + " has rank " + std::to_string(t.ndim) +
                    "; tensors have 1 to 4 dimensions");
  for (int i = 0; i < t.ndim; ++i)
    if (t.shape[i] < 0)
      return fail("shape", name, std::string(name) + " has a negative extent: " + shape_str(t));
  if (t.device != device_.ordinal)
    return fail("device", name,
                std::string(name) + " is on " +
                    (t.device < 0 ? std::string("the host") : "cuda:" + std::to_string(t.device)) +
                    " but the stream is on cuda:" + std::to_string(device_.ordinal),
                "move every tensor to the stream's device");
  return true;
}

bool TensorChecker::required(const kl_tensor& t, const char* name) {
  if (failed()) return false;
  if (!given(t)) return fail("required", name, std::string(name) + " is required");
  return tensor(t, name);
}

bool TensorChecker::rank(const kl_tensor& t, const char* name, int want, const char* layout) {
  if (skip(t)) return !failed();
  if (t.ndim != want)
    return fail("rank", name,
                std::string(name) + " must be " + layout + ", got shape " + shape_str(t));
  return true;
}

bool TensorChecker::dims(const kl_tensor& t, const char* name,
                         std::initializer_list<std::int64_t> want, const char* layout) {
  if (skip(t)) return !failed();
  bool match = t.ndim == static_cast<int>(want.size());
  int i = 0;
  for (auto w : want) match = match && (i < t.ndim && t.shape[i++] == w);
  if (!match)
    return fail("shape", name,
                std::string(name) + " must have shape " + layout + ", got " + shape_str(t));
  return true;
}

bool TensorChecker::last_dim_contiguous(const kl_tensor& t, const char* name) {
  if (skip(t)) return !failed();
  if (t.shape[t.ndim - 1] > 1 && t.stride[t.ndim - 1] != 1)
    return fail("last_dim_stride", name,
                std::string(name) + " must have a contiguous last dimension (stride " +
                    std::to_string(t.stride[t.ndim - 1]) + ")",
                "pass x.contiguous() or a view whose last stride is 1");
  return true;
}

// The kernels multiply indices by these strides: a zero stride makes distinct rows one address
// (overlapping writes to out), a negative one reads and writes before the pointer, and a span
// past 2^63 elements wraps.
bool TensorChecker::positive_strides(const kl_tensor& t, const char* name) {
  if (skip(t)) return !failed();
  std::int64_t span = 0;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] <= 1) continue;
    std::int64_t part = 0;
    if (t.stride[i] < 1)
      return fail("stride", name,
                  std::string(name) + " has stride " + std::to_string(t.stride[i]) +
                      " in dimension " + std::to_string(i) + "; strides must be >= 1",
                  "pass x.contiguous()");
    if (__builtin_mul_overflow(t.stride[i], t.shape[i] - 1, &part) ||
        __builtin_add_overflow(span, part, &span))
      return fail("stride", name,
                  std::string(name) + " spans more than 2^63 elements (strides " +
                      std::to_string(t.stride[0]) + "...)",
                  "pass x.contiguous()");
  }
  return true;
}

bool TensorChecker::contiguous(const kl_tensor& t, const char* name) {
  if (skip(t)) return !failed();
  // No element, no layout: torch gives an empty (h, 0) LSE strides (1, 1).
  for (int i = 0; i < t.ndim; ++i)
    if (t.shape[i] == 0) return true;
  std::int64_t expect = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] > 1 && t.stride[i] != expect)
      return fail("contiguous", name, std::string(name) + " must be contiguous",
                  "pass x.contiguous()");
    expect *= t.shape[i];
  }
  return true;
}

bool TensorChecker::dtype(const kl_tensor& t, const char* name, int want, const char* rule,
                          std::string hint) {
  if (skip(t)) return !failed();
  if (t.dtype != want)
    return fail(rule, name,
                std::string(name) + " must have dtype " + dtype_name(want) + ", got " +
                    dtype_name(t.dtype),
                std::move(hint));
  return true;
}

bool TensorChecker::index(const kl_tensor& t, const char* name, std::int64_t n,
                          const char* layout) {
  if (skip(t)) return !failed();
  tensor(t, name);
  dtype(t, name, KL_DTYPE_INT32, "index_dtype");
  rank(t, name, 1, layout);
  contiguous(t, name);
  if (!failed() && n >= 0 && t.shape[0] != n)
    return fail("shape", name,
                std::string(name) + " must have shape " + layout + " = (" + std::to_string(n) +
                    ",), got " + shape_str(t));
  return !failed();
}

bool TensorChecker::unsupported(const kl_tensor& t, const char* name, const char* feature) {
  if (skip(t)) return !failed();
  return fail("unsupported", name,
              std::string(name) + " was given, but " + feature +
                  " is not supported by these kernels",
              "leave it None; these kernels negotiate features and never ignore one");
}

bool TensorChecker::fits_int32(std::int64_t value, const char* name) {
  if (failed()) return false;
  if (value > std::numeric_limits<std::int32_t>::max())
    return fail("value_range", name, std::string(name) + " exceeds 2^31-1");
  return true;
}

}  // namespace kernels::loader
