// Where a block of query rows reads and which keys it may see: shared by every forward kernel
// of the attention family (the built-in mma.sync kernel and the sm_90a TMA kernel), so the
// varlen/batched addressing and the causal/window bounds have one definition. Pure index
// arithmetic, host and device, so tests/kernels checks it on the CPU against the reference's
// visibility rule.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/attention/params.h"
#include "kernels/common/host_device.h"

namespace kernels::attention::detail {

struct BatchInfo {
  int bi;
  int sq;          // query positions of this batch
  int sk;          // keys of this batch
  int64_t q_row0;  // element offset of (position 0, head 0) in q
  int64_t o_row0;  // same in out
  int acc_row0;    // row of position 0 in the split accumulators / varlen LSE
};

KERNELS_HOST_DEVICE BatchInfo batch_info(const FwdParams& p, int bi) {
  BatchInfo b;
  b.bi = bi;
  if (p.cu_seqlens_q != nullptr) {
    const int start = p.cu_seqlens_q[bi];
    b.sq = p.cu_seqlens_q[bi + 1] - start;
    b.q_row0 = static_cast<int64_t>(start) * p.q_row_stride;
    b.o_row0 = static_cast<int64_t>(start) * p.out_row_stride;
    b.acc_row0 = start;
  } else {
    b.sq = p.seqlen_q;
    b.q_row0 = static_cast<int64_t>(bi) * p.q_batch_stride;
    b.o_row0 = static_cast<int64_t>(bi) * p.out_batch_stride;
    b.acc_row0 = bi * p.seqlen_q;
  }
  if (p.seqused_k != nullptr) b.sk = p.seqused_k[bi];
  else if (p.cu_seqlens_k != nullptr) b.sk = p.cu_seqlens_k[bi + 1] - p.cu_seqlens_k[bi];
  else b.sk = p.seqlen_k;
  return b;
}

// The keys query positions [i_min, i_max] of one batch may see, bottom-right aligned
// (query i sees keys up to i + sk - sq + right, from i + sk - sq - window_left).
struct KeyBounds {
  int offset;      // sk - sq
  bool has_right;  // causal or window_right >= 0
  int right;
  bool has_left;  // window_left >= 0
  int left;

  KERNELS_HOST_DEVICE KeyBounds(const FwdParams& p, const BatchInfo& b) {
    offset = b.sk - b.sq;
    has_right = p.is_causal || p.window_right >= 0;
    right = p.is_causal ? (p.window_right >= 0 ? device::imin(p.window_right, 0) : 0)
                        : p.window_right;
    has_left = p.window_left >= 0;
    left = p.window_left;
  }
  // Last visible key of position i (inclusive) and first one.
  KERNELS_HOST_DEVICE int hi(int i, int sk) const {
    return has_right ? device::imin(sk - 1, i + offset + right) : sk - 1;
  }
  KERNELS_HOST_DEVICE int lo(int i) const { return has_left ? i + offset - left : 0; }
};

// The query positions [i_min, i_max] of packed rows [m0, m0 + block_m) (row m = position
// m / group, head m % group), clipped to the batch's sq positions; m0 < sq * group.
struct QueryRows {
  int i_min;
  int i_max;
};

KERNELS_HOST_DEVICE QueryRows query_rows(int m0, int block_m, int group, int sq) {
  return {m0 / group, device::imin((m0 + block_m - 1) / group, sq - 1)};
}

// Key blocks [nb_min, nb_max) of size block_n that positions [i_min, i_max] see; with splits,
// the range of split `split` of `num_splits`.
struct KeyBlockRange {
  int nb_min;
  int nb_max;
};

KERNELS_HOST_DEVICE KeyBlockRange key_block_range(const KeyBounds& kb, int sk, int i_min, int i_max,
                                                  int block_n, int split, int num_splits) {
  int n_hi = sk;
  if (kb.has_right) n_hi = device::imax(0, device::imin(n_hi, i_max + kb.offset + kb.right + 1));
  int n_lo = 0;
  if (kb.has_left) n_lo = device::imax(0, i_min + kb.offset - kb.left);
  KeyBlockRange r;
  r.nb_min = n_lo / block_n;
  r.nb_max = n_hi > n_lo ? (n_hi + block_n - 1) / block_n : r.nb_min;
  if (num_splits > 1) {
    const int per = (r.nb_max - r.nb_min + num_splits - 1) / num_splits;
    const int lo = r.nb_min + split * per;
    r.nb_max = device::imin(r.nb_max, lo + per);
    r.nb_min = device::imin(lo, r.nb_max);
  }
  return r;
}

// Whether key block [n0, n0 + block_n) needs a per-element mask for positions [i_min, i_max].
KERNELS_HOST_DEVICE bool block_needs_mask(const KeyBounds& kb, int sk, int n0, int block_n,
                                          int i_min, int i_max) {
  return n0 + block_n > sk || (kb.has_right && n0 + block_n - 1 > i_min + kb.offset + kb.right) ||
         (kb.has_left && n0 < i_max + kb.offset - kb.left);
}

// The keys a lane holds of one accumulator row (mma.sync m16n8 fragments, NT of them): element
// k = 2 * nt + e is key first + 8 * nt + e. Bit k of the result is set when position i sees that
// key (lo(i) <= key <= hi(i)). The keys increase with k, so the visible ones are one run of bits,
// found with a few integer operations instead of two compares per element.
template <int NT>
using LaneBits = std::conditional_t<(2 * NT > 32), unsigned long long, unsigned>;

template <int NT>
KERNELS_HOST_DEVICE LaneBits<NT> lane_visible_bits(const KeyBounds& kb, int sk, int i, int first) {
  using Word = LaneBits<NT>;
  constexpr int kBits = 8 * sizeof(Word);
  static_assert(2 * NT <= kBits, "a lane's elements of a row fit one word");
  // How many of the lane's elements lie before key offset a (from `first`).
  auto before = [](int a) {
    a = device::imin(device::imax(a, 0), 8 * NT);
    return 2 * (a >> 3) + device::imin(a & 7, 2);
  };
  auto low_bits = [](int n) { return n >= kBits ? ~Word{0} : (Word{1} << n) - 1; };
  return low_bits(before(kb.hi(i, sk) - first + 1)) & ~low_bits(before(kb.lo(i) - first));
}

}  // namespace kernels::attention::detail
