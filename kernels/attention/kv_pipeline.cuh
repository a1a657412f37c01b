// The loads of the built-in forward kernel: the Q tile, and the ring of kStages K/V tile pairs
// filled by cp.async, with the page table read one block ahead when K/V are paged.
//
// Key blocks are walked from the last one down: step `it` is key block nb_max - 1 - it, in ring
// slot it % kStages. Every step commits one cp.async group, empty or not, so "block it landed" is
// always cp_async_wait<kStages - 2> at the top of step it.
#pragma once

#include <cstdint>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/params.h"
#include "kernels/common/mma.cuh"
#include "kernels/common/swizzle.cuh"

namespace kernels::attention {

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

// The Q tile of packed rows [m0, m0 + kBlockM) of kv head hk: issued, not committed (it rides in
// the first K/V group).
template <class Tr>
__device__ __forceinline__ void load_q_tile(typename Tr::T* sQ, const FwdParams& p,
                                            const detail::BatchInfo& b, int hk, int m0, int group) {
  using T = typename Tr::T;
  const T* q = static_cast<const T*>(p.q);
  detail::load_tile<Tr, Tr::kBlockM, Tr::D>(sQ, q, p.d, [&](int row) -> const T* {
    const int mm = m0 + row;
    const int i = mm / group;
    if (i >= b.sq) return nullptr;
    const int head = hk * group + (mm - i * group);
    return q + b.q_row0 + static_cast<int64_t>(i) * p.q_row_stride +
           static_cast<int64_t>(head) * p.q_head_stride;
  });
}

// K/V rows: one base pointer plus j * row stride, or, when paged, (page, slot) from sPage. The
// page table is read once per key row, by the last kBlockN threads (padding warps in decode),
// one block ahead into a register and stored to sPage before the barrier that precedes the
// block's copies, so its latency hides behind a block of math.
template <class Tr>
struct KvPipeline {
  using T = typename Tr::T;
  static constexpr int kBlockN = Tr::kBlockN;
  static constexpr int kStages = Tr::kStages;

  const FwdParams& p;
  T* sK;
  T* sV;
  int2* sPage;  // two slots of kBlockN (page, slot) entries
  int sk;
  int nb_min, nb_max;
  bool paged;
  const T* k_base;
  const T* v_base;
  const int32_t* page_row;
  int page_tid;    // >= 0: this thread reads page entries
  int2 next_page;  // page_entry of the step after the last one issued

  __device__ __forceinline__ KvPipeline(const FwdParams& p_, T* sK_, T* sV_, int2* sPage_,
                                        const detail::BatchInfo& b, int hk,
                                        const detail::KeyBlockRange& range)
      : p(p_),
        sK(sK_),
        sV(sV_),
        sPage(sPage_),
        sk(b.sk),
        nb_min(range.nb_min),
        nb_max(range.nb_max) {
    const int bi = b.bi;
    paged = p.page_table != nullptr;
    const int64_t kv_batch_row0 = p.cu_seqlens_k != nullptr
                                      ? static_cast<int64_t>(p.cu_seqlens_k[bi])
                                      : 0;
    k_base = static_cast<const T*>(p.k) + static_cast<int64_t>(hk) * p.k_head_stride +
             (paged ? 0
                    : (p.cu_seqlens_k != nullptr ? kv_batch_row0 * p.k_row_stride
                                                 : static_cast<int64_t>(bi) * p.k_batch_stride));
    v_base = static_cast<const T*>(p.v) + static_cast<int64_t>(hk) * p.v_head_stride +
             (paged ? 0
                    : (p.cu_seqlens_k != nullptr ? kv_batch_row0 * p.v_row_stride
                                                 : static_cast<int64_t>(bi) * p.v_batch_stride));
    page_row = paged ? p.page_table + static_cast<int64_t>(bi) * p.page_table_batch_stride
                     : nullptr;
    page_tid = static_cast<int>(threadIdx.x) - (Tr::kThreads - kBlockN);
  }

  // Whether step it has a key block (the walk ends at the first step that has none).
  __device__ __forceinline__ bool has_block(int it) const { return nb_max - 1 - it >= nb_min; }
  __device__ __forceinline__ int key_block(int it) const { return nb_max - 1 - it; }

  // (page, slot) of row page_tid of step it's key block; (-1, 0) past the keys.
  __device__ __forceinline__ int2 page_entry(int it) const {
    const int nb = nb_max - 1 - it;
    const int j = nb * kBlockN + page_tid;
    if (nb < nb_min || j >= sk) return make_int2(-1, 0);
    const int idx = j / p.page_size;
    return make_int2(page_row[idx], j - idx * p.page_size);
  }

  template <int kCols>
  __device__ __forceinline__ void load_rows(T* smem, const T* base, int cols_valid,
                                            int64_t batch_stride, int64_t row_stride, int nb,
                                            int page_block) const {
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
        return j < sk ? base + static_cast<int64_t>(j) * row_stride : nullptr;
      });
    }
  }

  // Issues step it's K and V tiles into ring slot it % kStages and commits one group.
  __device__ __forceinline__ void load_block(int it) const {
    const int nb = nb_max - 1 - it;
    if (nb >= nb_min) {
      const int slot = it % kStages;
      load_rows<Tr::D>(sK + slot * Tr::kSmemK, k_base, p.d, p.k_batch_stride, p.k_row_stride, nb,
                       it);
      load_rows<Tr::DV>(sV + slot * Tr::kSmemV, v_base, p.dv, p.v_batch_stride, p.v_row_stride, nb,
                        it);
    }
    device::cp_async_commit();  // one group per block, empty or not, so the counting holds
  }

  // The first kStages - 1 steps in flight (Q rides in the first group), and, when paged, the
  // page entries of those steps and of the next one.
  __device__ __forceinline__ void prologue() {
    next_page = make_int2(-1, 0);
    if (paged) {
      if (page_tid >= 0) {
#pragma unroll
        for (int st = 0; st < kStages - 1; ++st) {
          static_assert(kStages <= 3, "the prologue's page entries must fit the two page slots");
          sPage[(st % 2) * kBlockN + page_tid] = page_entry(st);
        }
      }
      __syncthreads();
      if (page_tid >= 0) next_page = page_entry(kStages - 1);
    }
#pragma unroll
    for (int st = 0; st < kStages - 1; ++st) load_block(st);
    if (paged) __syncthreads();  // the prologue's page entries are read; their slots may be reused
  }

  // Top of step it: waits for its block, then refills the slot step it - 1 used with step
  // it + kStages - 1. The one barrier both publishes block it and frees that slot.
  __device__ __forceinline__ void advance(int it) {
    device::cp_async_wait<kStages - 2>();
    if (paged && page_tid >= 0) sPage[((it + kStages - 1) % 2) * kBlockN + page_tid] = next_page;
    __syncthreads();  // block it landed for everyone; every warp is done with block it-1's slot
    load_block(it + kStages - 1);
    if (paged && page_tid >= 0) next_page = page_entry(it + kStages);
  }
};

}  // namespace kernels::attention
