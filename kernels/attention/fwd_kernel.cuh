// Attention forward (FlashAttention-2 structure, FA3 semantics) with mma.sync, ldmatrix and
// cp.async. One block computes kBlockM packed query rows of one (batch, kv head, split): the
// h/h_k query heads that share a kv head are packed into the rows (row m = position m / G, head
// m % G), so each K/V byte is read once per kv head. Causal, window, softcap, paging, varlen,
// sinks, LSE and splits are runtime flags; head dims and dtype are template parameters.
//
// Pipeline: a ring of kStages K/V tile pairs filled by cp.async; while block i is computed
// (S = Q K^T, mask, online softmax, O += P V) the next kStages-1 blocks are in flight, and one
// barrier per block both publishes block i and frees the slot of block i-1. Keys are walked from
// the last block down, so the blocks that need masks come first and the rest run unmasked.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/params.h"
#include "kernels/common/mma.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/swizzle.cuh"

namespace kernels::attention {

constexpr int pad64(int x) { return (x + 63) / 64 * 64; }

template <int D_, int DV_, int Warps_, int BlockM_, int BlockN_, int Stages_, class T_>
struct FwdTraits {
  using T = T_;
  static constexpr int D = D_;
  static constexpr int DV = DV_;
  static constexpr int kWarps = Warps_;
  static constexpr int kThreads = 32 * Warps_;
  static constexpr int kBlockM = BlockM_;
  static constexpr int kBlockN = BlockN_;
  static constexpr int kStages = Stages_;  // K/V tile pairs in the cp.async ring
  static constexpr int kRowsPerWarp = kBlockM / kWarps;
  static constexpr int kMT = kRowsPerWarp / 16;  // 16-row mma tiles per warp
  static constexpr int kNT = kBlockN / 8;        // 8-column tiles of S
  static constexpr int kOT = DV / 8;             // 8-column tiles of O
  static constexpr int kDPad = pad64(D);
  static constexpr int kDVPad = pad64(DV);
  static constexpr int kSmemQ = kBlockM * kDPad;  // elements
  static constexpr int kSmemK = kBlockN * kDPad;
  static constexpr int kSmemV = kBlockN * kDVPad;
  // Paged K/V: (page, slot) of every key row of two blocks (the one whose copies are being
  // issued and the one after it), 8 bytes each.
  static constexpr int kSmemPageBytes = 2 * kBlockN * 8;
  static constexpr int kSmemBytes = 2 * (kSmemQ + kStages * (kSmemK + kSmemV)) + kSmemPageBytes;

  static_assert(kStages >= 2, "the ring keeps at least one K/V pair in flight");
  static_assert(kBlockM % (16 * kWarps) == 0, "each warp owns whole 16-row mma tiles");
  static_assert(kBlockN % 16 == 0 && D % 16 == 0 && DV % 16 == 0, "mma k and n multiples");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory budget of one sm_90 block");
  static_assert(kSmemBytes <= 163 * 1024, "shared memory budget of one sm_80 block");
};

namespace detail {

// Copies `Rows` rows of `Cols` b16 elements into a swizzled tile; rows or 16-byte chunks that
// are not valid (past the sequence, or past the runtime head dim) are zero-filled.
// `base` is any valid address of the tensor: a zero-filling copy still names a source.
template <class Tr, int Rows, int Cols, class RowPtr>
__device__ __forceinline__ void load_tile(typename Tr::T* smem, const typename Tr::T* base,
                                          int cols_valid, RowPtr row_ptr) {
  constexpr int kChunks = Cols / 8;
  constexpr int kTotal = Rows * kChunks;
  const int tid = threadIdx.x;
  if constexpr (Tr::kThreads % kChunks == 0 && kTotal % Tr::kThreads == 0 &&
                (Tr::kThreads / kChunks) % 8 == 0) {
    // Each thread keeps one chunk column and walks rows in steps that preserve row & 7, so the
    // swizzled destination is one base plus constants.
    constexpr int kRowStep = Tr::kThreads / kChunks;
    const int row0 = tid / kChunks;
    const int col = (tid % kChunks) * 8;
    const uint32_t dst0 = device::smem_addr(smem + device::SwizzledTile<Rows>::offset(row0, col));
    const bool col_ok = col < cols_valid;
#pragma unroll
    for (int it = 0; it < kTotal / Tr::kThreads; ++it) {
      const typename Tr::T* src = row_ptr(row0 + it * kRowStep);
      const bool valid = src != nullptr && col_ok;
      device::cp_async_16(dst0 + it * kRowStep * 128, valid ? src + col : base, valid);
    }
  } else {
#pragma unroll
    for (int it = 0; it < (kTotal + Tr::kThreads - 1) / Tr::kThreads; ++it) {
      const int id = tid + it * Tr::kThreads;
      if (kTotal % Tr::kThreads == 0 || id < kTotal) {
        const int row = id / kChunks;
        const int col = (id % kChunks) * 8;
        const typename Tr::T* src = row_ptr(row);
        const bool valid = src != nullptr && col < cols_valid;
        device::cp_async_16(device::smem_addr(smem + device::SwizzledTile<Rows>::offset(row, col)),
                            valid ? src + col : base, valid);
      }
    }
  }
}

}  // namespace detail

template <class Tr>
__device__ __forceinline__ void attention_forward(const FwdParams& p) {
  using T = typename Tr::T;
  using Mma = device::MmaOp<T>;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kBlockN = Tr::kBlockN;
  constexpr int kMT = Tr::kMT;
  constexpr int kNT = Tr::kNT;
  constexpr int kOT = Tr::kOT;
  constexpr float kLog2e = 1.4426950408889634f;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + Tr::kSmemQ;
  T* sV = sK + Tr::kStages * Tr::kSmemK;
  int2* sPage = reinterpret_cast<int2*>(sV + Tr::kStages * Tr::kSmemV);

  const int num_splits = p.num_splits > 0 ? p.num_splits : 1;
  const int bi = blockIdx.z / num_splits;
  const int split = blockIdx.z - bi * num_splits;
  const int hk = blockIdx.y;
  const int m_block = gridDim.x - 1 - blockIdx.x;  // heaviest (causal) blocks first
  const int group = p.h / p.h_k;

  const detail::BatchInfo b = detail::batch_info(p, bi);
  const int m0 = m_block * kBlockM;
  if (m0 >= b.sq * group) return;

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;

  // Key range of this block: bottom-right aligned causal / window bounds of its positions.
  const detail::KeyBounds kb(p, b);
  const int i_min = m0 / group;
  const int i_max = min((m0 + kBlockM - 1) / group, b.sq - 1);
  const detail::KeyBlockRange range =
      detail::key_block_range(kb, b.sk, i_min, i_max, kBlockN, split, num_splits);
  const int nb_min = range.nb_min;
  const int nb_max = range.nb_max;

  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k);
  const T* v = static_cast<const T*>(p.v);

  // Q tile.
  detail::load_tile<Tr, kBlockM, Tr::D>(sQ, q, p.d, [&](int row) -> const T* {
    const int mm = m0 + row;
    const int i = mm / group;
    if (i >= b.sq) return nullptr;
    const int head = hk * group + (mm - i * group);
    return q + b.q_row0 + static_cast<int64_t>(i) * p.q_row_stride +
           static_cast<int64_t>(head) * p.q_head_stride;
  });
  // K/V rows: one base pointer plus j * row stride, or, when paged, (page, slot) from sPage.
  // The page table is read once per key row, by the last kBlockN threads (padding warps in
  // decode), one block ahead into a register and stored to sPage before the barrier that
  // precedes the block's copies, so its latency hides behind a block of math.
  const bool paged = p.page_table != nullptr;
  const int64_t kv_batch_row0 =
      p.cu_seqlens_k != nullptr ? static_cast<int64_t>(p.cu_seqlens_k[bi]) : 0;
  const T* k_base = k + static_cast<int64_t>(hk) * p.k_head_stride +
                    (paged ? 0
                           : (p.cu_seqlens_k != nullptr ? kv_batch_row0 * p.k_row_stride
                                                        : static_cast<int64_t>(bi) * p.k_batch_stride));
  const T* v_base = v + static_cast<int64_t>(hk) * p.v_head_stride +
                    (paged ? 0
                           : (p.cu_seqlens_k != nullptr ? kv_batch_row0 * p.v_row_stride
                                                        : static_cast<int64_t>(bi) * p.v_batch_stride));
  const int32_t* page_row =
      paged ? p.page_table + static_cast<int64_t>(bi) * p.page_table_batch_stride : nullptr;
  const int page_tid = tid - (Tr::kThreads - kBlockN);  // >= 0: this thread reads page entries
  auto page_entry = [&](int it) -> int2 {  // (page, slot) of row page_tid of block it
    const int nb = nb_max - 1 - it;
    const int j = nb * kBlockN + page_tid;
    if (nb < nb_min || j >= b.sk) return make_int2(-1, 0);
    const int idx = j / p.page_size;
    return make_int2(page_row[idx], j - idx * p.page_size);
  };
  auto load_kv = [&](T* smem, const T* base, int cols_valid, int64_t batch_stride,
                     int64_t row_stride, int nb, int page_block, auto cols_tag) {
    constexpr int kCols = decltype(cols_tag)::value;
    if (paged) {
      const int2* pages = sPage + (page_block % 2) * kBlockN;
      detail::load_tile<Tr, kBlockN, kCols>(smem, base, cols_valid, [&](int row) -> const T* {
        const int2 ps = pages[row];
        if (ps.x < 0) return nullptr;
        return base + static_cast<int64_t>(ps.x) * batch_stride +
               static_cast<int64_t>(ps.y) * row_stride;
      });
    } else {
      detail::load_tile<Tr, kBlockN, kCols>(smem, base, cols_valid, [&](int row) -> const T* {
        const int j = nb * kBlockN + row;
        return j < b.sk ? base + static_cast<int64_t>(j) * row_stride : nullptr;
      });
    }
  };
  auto load_block = [&](int it) {  // the it-th key block from the top, into ring slot it % S
    const int nb = nb_max - 1 - it;
    if (nb >= nb_min) {
      const int slot = it % Tr::kStages;
      load_kv(sK + slot * Tr::kSmemK, k_base, p.d, p.k_batch_stride, p.k_row_stride, nb, it,
              std::integral_constant<int, Tr::D>{});
      load_kv(sV + slot * Tr::kSmemV, v_base, p.dv, p.v_batch_stride, p.v_row_stride, nb, it,
              std::integral_constant<int, Tr::DV>{});
    }
    device::cp_async_commit();  // one group per block, empty or not, so the counting holds
  };
  int2 next_page = make_int2(-1, 0);
  if (paged) {
    if (page_tid >= 0) {
#pragma unroll
      for (int st = 0; st < Tr::kStages - 1; ++st) {
        static_assert(Tr::kStages <= 3, "the prologue's page entries must fit the two page slots");
        sPage[(st % 2) * kBlockN + page_tid] = page_entry(st);
      }
    }
    __syncthreads();
    if (page_tid >= 0) next_page = page_entry(Tr::kStages - 1);
  }
#pragma unroll
  for (int st = 0; st < Tr::kStages - 1; ++st) load_block(st);  // Q rides in the first group
  if (paged) __syncthreads();  // the prologue's page entries are read; their slots may be reused

  float acc_o[kMT][kOT][4];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int ot = 0; ot < kOT; ++ot)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_o[mt][ot][e] = 0.0f;
  float row_max[kMT][2];  // running max of the raw (capped, unscaled) scores
  float row_sum[kMT][2];  // this lane's partial sum (quad-reduced at the end)
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      row_max[mt][r] = -INFINITY;
      row_sum[mt][r] = 0.0f;
    }

  // Softcap: s = softcap * tanh(scale * qk / softcap); the softcap factor joins the exp2 scale.
  const bool softcap_on = p.softcap > 0.0f;
  const float cap_in = softcap_on ? p.softmax_scale / p.softcap : 1.0f;
  const float scale_log2 = (softcap_on ? p.softcap : p.softmax_scale) * kLog2e;

  const int warp_row0 = warp * Tr::kRowsPerWarp;
  // Warps whose rows are all padding (decode: a few packed rows) skip the math, not the barriers.
  const bool warp_active = m0 + warp_row0 < b.sq * group;
  using QTile = device::SwizzledTile<kBlockM>;
  using KVTile = device::SwizzledTile<kBlockN>;
  // Lane bases for the ldmatrix reads (see SwizzledTile::lane_base).
  const uint32_t q_lane = QTile::lane_base(device::smem_addr(sQ), warp_row0 + lane % 16,
                                           (lane / 16) * 8);
  const uint32_t k_lane = KVTile::lane_base(device::smem_addr(sK), (lane / 16) * 8 + lane % 8,
                                            ((lane / 8) % 2) * 8);
  const uint32_t v_lane = KVTile::lane_base(device::smem_addr(sV), ((lane / 8) % 2) * 8 + lane % 8,
                                            (lane / 16) * 8);
  for (int it = 0; nb_max - 1 - it >= nb_min; ++it) {
    const int nb = nb_max - 1 - it;
    const int slot = it % Tr::kStages;
    device::cp_async_wait<Tr::kStages - 2>();
    if (paged && page_tid >= 0)
      sPage[((it + Tr::kStages - 1) % 2) * kBlockN + page_tid] = next_page;
    __syncthreads();  // block it landed for everyone; every warp is done with block it-1's slot
    load_block(it + Tr::kStages - 1);
    if (paged && page_tid >= 0) next_page = page_entry(it + Tr::kStages);
    const uint32_t k_slot = k_lane + slot * (Tr::kSmemK * 2);
    const uint32_t v_slot = v_lane + slot * (Tr::kSmemV * 2);

    float s[kMT][kNT][4];
    if (warp_active) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.0f;

#pragma unroll
      for (int ks = 0; ks < Tr::D / 16; ++ks) {
        uint32_t a[kMT][4];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
          device::ldmatrix_x4(a[mt], QTile::at(q_lane, mt * 16, ks * 16));
#pragma unroll
        for (int nt2 = 0; nt2 < kNT / 2; ++nt2) {
          uint32_t bk[4];
          device::ldmatrix_x4(bk, KVTile::at(k_slot, nt2 * 16, ks * 16));
#pragma unroll
          for (int mt = 0; mt < kMT; ++mt) {
            Mma::run(s[mt][2 * nt2], a[mt], bk[0], bk[1]);
            Mma::run(s[mt][2 * nt2 + 1], a[mt], bk[2], bk[3]);
          }
        }
      }

      if (softcap_on) {
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[mt][nt][e] = tanhf(s[mt][nt][e] * cap_in);
      }
      const int n0 = nb * kBlockN;
      const bool need_mask = detail::block_needs_mask(kb, b.sk, n0, kBlockN, i_min, i_max);
      if (need_mask) {
        // Row bounds are recomputed here (few blocks need masks) rather than held in registers.
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int i = (m0 + warp_row0 + mt * 16 + lane / 4 + r * 8) / group;
            const int hi_j = kb.hi(i, b.sk);
            const int lo_j = kb.lo(i);
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
              for (int e = 0; e < 2; ++e) {
                const int j = n0 + nt * 8 + (lane % 4) * 2 + e;
                if (j > hi_j || j < lo_j) s[mt][nt][2 * r + e] = -INFINITY;
              }
          }
      }

      // Online softmax: p = exp2(s * scale_log2 - max * scale_log2), one FFMA and one MUFU.
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = row_max[mt][r];
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt)
            mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
          mx = device::quad_max(mx);
          // A row with no visible key so far keeps max -inf; use 0 so exp2 gives 0, not NaN.
          const float base = mx == -INFINITY ? 0.0f : mx * scale_log2;
          const float correction = device::fast_exp2(row_max[mt][r] * scale_log2 - base);
          row_max[mt][r] = mx;
          float sum = 0.0f;
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) {
            const float p0 = device::fast_exp2(fmaf(s[mt][nt][2 * r], scale_log2, -base));
            const float p1 = device::fast_exp2(fmaf(s[mt][nt][2 * r + 1], scale_log2, -base));
            s[mt][nt][2 * r] = p0;
            s[mt][nt][2 * r + 1] = p1;
            sum += p0 + p1;
          }
          row_sum[mt][r] = row_sum[mt][r] * correction + sum;
#pragma unroll
          for (int ot = 0; ot < kOT; ++ot) {
            acc_o[mt][ot][2 * r] *= correction;
            acc_o[mt][ot][2 * r + 1] *= correction;
          }
        }

#pragma unroll
      for (int ks = 0; ks < kBlockN / 16; ++ks) {
        uint32_t a[kMT][4];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          a[mt][0] = Mma::pack(s[mt][2 * ks][0], s[mt][2 * ks][1]);
          a[mt][1] = Mma::pack(s[mt][2 * ks][2], s[mt][2 * ks][3]);
          a[mt][2] = Mma::pack(s[mt][2 * ks + 1][0], s[mt][2 * ks + 1][1]);
          a[mt][3] = Mma::pack(s[mt][2 * ks + 1][2], s[mt][2 * ks + 1][3]);
        }
#pragma unroll
        for (int ot2 = 0; ot2 < kOT / 2; ++ot2) {
          uint32_t bv[4];
          device::ldmatrix_x4_trans(bv, KVTile::at(v_slot, ks * 16, ot2 * 16));
#pragma unroll
          for (int mt = 0; mt < kMT; ++mt) {
            Mma::run(acc_o[mt][2 * ot2], a[mt], bv[0], bv[1]);
            Mma::run(acc_o[mt][2 * ot2 + 1], a[mt], bv[2], bv[3]);
          }
        }
      }
    }
  }
  device::cp_async_wait<0>();
  if (!warp_active) return;  // no barrier follows

  // Epilogue: normalise, add the sink (unsplit only; the combine adds it once), write out + LSE.
  const bool split_mode = num_splits > 1;
  const float kLn2 = 0.6931471805599453f;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int mm = m0 + warp_row0 + mt * 16 + lane / 4 + r * 8;
      const int i = mm / group;
      const int head = hk * group + (mm - i * group);
      float sum = device::quad_sum(row_sum[mt][r]);
      float mx = row_max[mt][r] * scale_log2;  // log2 domain from here on
      if (!split_mode && p.sinks != nullptr && i < b.sq) {
        const float sink = p.sinks[head] * kLog2e;
        const float new_max = fmaxf(mx, sink);
        const float corr = mx == -INFINITY ? 0.0f : device::fast_exp2(mx - new_max);
        sum = sum * corr + device::fast_exp2(sink - new_max);
#pragma unroll
        for (int ot = 0; ot < kOT; ++ot) {
          acc_o[mt][ot][2 * r] *= corr;
          acc_o[mt][ot][2 * r + 1] *= corr;
        }
        mx = new_max;
      }
      const bool empty = !(sum > 0.0f);  // also catches NaN
      const float inv = empty ? 0.0f : 1.0f / sum;
      const float lse = empty ? -INFINITY : (mx + log2f(sum)) * kLn2;
      if (i >= b.sq) continue;
      if (split_mode) {
        const int64_t acc_row =
            (static_cast<int64_t>(split) * p.h + head) * p.total_q + b.acc_row0 + i;
        float* dst = p.out_accum + acc_row * p.dv;
#pragma unroll
        for (int ot = 0; ot < kOT; ++ot) {
          const int col = ot * 8 + (lane % 4) * 2;
          if (col < p.dv)
            *reinterpret_cast<float2*>(dst + col) =
                make_float2(acc_o[mt][ot][2 * r] * inv, acc_o[mt][ot][2 * r + 1] * inv);
        }
        if (lane % 4 == 0) p.lse_accum[acc_row] = lse;
      } else {
        T* dst = static_cast<T*>(p.out) + b.o_row0 + static_cast<int64_t>(i) * p.out_row_stride +
                 static_cast<int64_t>(head) * p.out_head_stride;
#pragma unroll
        for (int ot = 0; ot < kOT; ++ot) {
          const int col = ot * 8 + (lane % 4) * 2;
          if (col < p.dv)
            *reinterpret_cast<uint32_t*>(dst + col) =
                Mma::pack(acc_o[mt][ot][2 * r] * inv, acc_o[mt][ot][2 * r + 1] * inv);
        }
        if (p.lse != nullptr && lane % 4 == 0) {
          const int64_t idx = p.lse_layout == LseLayout::head_total_q
                                  ? static_cast<int64_t>(head) * p.total_q + b.acc_row0 + i
                                  : (static_cast<int64_t>(bi) * p.h + head) * p.seqlen_q + i;
          p.lse[idx] = lse;
        }
      }
    }
}

}  // namespace kernels::attention
