// CPU reference for the built-in attention kernels (FA3 semantics, see kernels/attention/params.h).
//
// Inputs are logical, per batch: q[b] is (sq[b], h, d), k[b] (sk[b], h_k, d), v[b] (sk[b], h_k,
// dv), row-major floats that already hold the kernel's bf16/fp16 values. Two precisions:
//   high: fp64 accumulation of everything, no rounding (the "ground truth");
//   low:  what a naive 16-bit implementation computes: scores rounded to the dtype, softmax in
//         fp32, probabilities rounded to the dtype, output rounded to the dtype. FA3's test rule
//         compares the kernel's error against this one's.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/attention/params.h"

namespace kernels::test {

using attention::DType;

// Round-to-nearest-even conversions between float and 16-bit storage.
uint16_t to_bits(float x, DType t);
float from_bits(uint16_t bits, DType t);
inline float round_to(float x, DType t) { return from_bits(to_bits(x, t), t); }

struct RefProblem {
  int b = 1, h = 1, h_k = 1, d = 64, dv = 64;
  std::vector<int> sq, sk;  // per batch
  bool causal = false;
  int window_left = -1, window_right = -1;
  float softcap = 0.0f;
  float softmax_scale = 0.125f;
  std::vector<float> sinks;  // (h,) or empty
  std::vector<std::vector<float>> q, k, v;
};

enum class Precision { high, low };

struct RefOutput {
  std::vector<std::vector<double>> out;  // per batch (sq, h, dv)
  std::vector<std::vector<double>> lse;  // per batch (sq, h); -inf for rows that see nothing
};

// Whether query position i of a batch with sq positions and sk keys sees key j (FA3's bottom-right
// aligned causal / window rule, params.h); j < sk is the caller's.
bool key_visible(const RefProblem& p, int i, int j, int sq, int sk);

RefOutput attention_reference(const RefProblem& p, Precision precision, DType dtype);

}  // namespace kernels::test
