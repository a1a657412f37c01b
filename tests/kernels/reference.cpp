#include "reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace kernels::test {

uint16_t to_bits(float x, DType t) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if (t == DType::bf16) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
    const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>((u + rounding) >> 16);
  }
  // fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                        // subnormal or zero in fp16
    if (abs < 0x33000000u) return sign;           // below half of the smallest subnormal
    const int exp = static_cast<int>(abs >> 23);
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - exp;  // value = mant * 2^(exp-150), in units of 2^-24
    const uint32_t half_ulp = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    if (rem > half_ulp || (rem == half_ulp && (r & 1u))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rem = r & 0x1fffu;
  r >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return sign | static_cast<uint16_t>(r);
}

float from_bits(uint16_t bits, DType t) {
  uint32_t u;
  if (t == DType::bf16) {
    u = static_cast<uint32_t>(bits) << 16;
  } else {
    const uint32_t sign = (bits & 0x8000u) << 16;
    const uint32_t exp = (bits >> 10) & 0x1fu;
    uint32_t mant = bits & 0x3ffu;
    if (exp == 0x1f) {
      u = sign | 0x7f800000u | (mant << 13);
    } else if (exp == 0) {
      if (mant == 0) {
        u = sign;
      } else {
        int e = -1;
        do {
          ++e;
          mant <<= 1;
        } while ((mant & 0x400u) == 0);
        u = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
      }
    } else {
      u = sign | ((exp + 112) << 23) | (mant << 13);
    }
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bool key_visible(const RefProblem& p, int i, int j, int sq, int sk) {
  const long hi_base = static_cast<long>(i) + sk - sq;
  if (p.causal && j > hi_base + (p.window_right >= 0 ? std::min(p.window_right, 0) : 0))
    return false;
  if (!p.causal && p.window_right >= 0 && j > hi_base + p.window_right) return false;
  if (p.window_left >= 0 && j < hi_base - p.window_left) return false;
  return true;
}

RefOutput attention_reference(const RefProblem& p, Precision precision, DType dtype) {
  const bool low = precision == Precision::low;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const int group = p.h / p.h_k;
  RefOutput r;
  r.out.resize(p.b);
  r.lse.resize(p.b);
  std::vector<double> score;
  for (int bi = 0; bi < p.b; ++bi) {
    const int sq = p.sq[bi], sk = p.sk[bi];
    r.out[bi].assign(static_cast<size_t>(sq) * p.h * p.dv, 0.0);
    r.lse[bi].assign(static_cast<size_t>(sq) * p.h, neg_inf);
    score.assign(sk, 0.0);
    for (int i = 0; i < sq; ++i) {
      for (int head = 0; head < p.h; ++head) {
        const int hk = head / group;
        const float* qrow = &p.q[bi][(static_cast<size_t>(i) * p.h + head) * p.d];
        double mx = neg_inf;
        for (int j = 0; j < sk; ++j) {
          if (!key_visible(p, i, j, sq, sk)) {
            score[j] = neg_inf;
            continue;
          }
          const float* krow = &p.k[bi][(static_cast<size_t>(j) * p.h_k + hk) * p.d];
          double dot = 0.0;
          for (int c = 0; c < p.d; ++c) dot += static_cast<double>(qrow[c]) * krow[c];
          if (low) dot = round_to(static_cast<float>(dot), dtype);
          double s = p.softcap > 0.0f ? p.softcap * std::tanh(dot * p.softmax_scale / p.softcap)
                                      : dot * p.softmax_scale;
          if (low) s = static_cast<float>(s);
          score[j] = s;
          mx = std::max(mx, s);
        }
        const double sink = p.sinks.empty() ? neg_inf : static_cast<double>(p.sinks[head]);
        mx = std::max(mx, sink);
        if (mx == neg_inf) continue;  // no visible key and no sink: out 0, lse -inf
        double sum = sink == neg_inf ? 0.0 : std::exp(sink - mx);
        double* orow = &r.out[bi][(static_cast<size_t>(i) * p.h + head) * p.dv];
        for (int j = 0; j < sk; ++j) {
          if (score[j] == neg_inf) continue;
          double e = std::exp(score[j] - mx);
          if (low) e = static_cast<float>(e);
          sum += e;
          const double pw = low ? round_to(static_cast<float>(e), dtype) : e;
          const float* vrow = &p.v[bi][(static_cast<size_t>(j) * p.h_k + hk) * p.dv];
          for (int c = 0; c < p.dv; ++c) orow[c] += pw * vrow[c];
        }
        for (int c = 0; c < p.dv; ++c) {
          orow[c] /= sum;
          if (low) orow[c] = round_to(static_cast<float>(orow[c]), dtype);
        }
        r.lse[bi][static_cast<size_t>(i) * p.h + head] = mx + std::log(sum);
      }
    }
  }
  return r;
}

}  // namespace kernels::test
