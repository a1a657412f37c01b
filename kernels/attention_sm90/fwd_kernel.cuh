// Attention forward for Hopper (sm_90a): TMA loads, wgmma, warp specialization.
//
// Each block walks tiles of kBlockM query rows of one (batch, query head), heaviest first
// (Sm90Tile): one tile per block, or, persistent, one block per SM taking a tile of each round
// (sm90_tile_of_round). Warpgroup 0 is the producer: after giving most of its registers away
// (setmaxnreg), one of its threads issues every TMA copy (each tile's Q into a ring of kQStages
// slots, then its K and V blocks into a ring of kStages slots; both rings run on across tiles, so
// the next tile's loads overlap this tile's end). Warpgroups 1..kConsumers each own
// 64 query rows: S = Q K^T (wgmma, both operands in shared memory), mask, online softmax in
// registers, then O += P V with P taken straight from the S accumulators (register-A wgmma).
// Slots are handed over with mbarriers: *_full complete when the copy's bytes land, *_empty when
// every consumer warp has finished reading the slot (a Q slot after the tile's last S).
//
// Two overlaps keep the tensor cores busy while the exponentials run (FA3's schedule): within a
// warpgroup, S of block j and P V of block j-1 are issued together and the softmax of S_j runs
// while P V computes; between warpgroups, named barriers make them take turns issuing GEMMs
// ("ping-pong"), so one warpgroup's softmax overlaps the others' GEMMs.
//
// Keys are walked from the last block down, so blocks that need masks come first. Semantics are
// the built-in kernel's (params.h); this kernel covers the subset launch_plan.h's
// plan_forward_sm90 accepts: q/k/v contiguous in the head dim with head dims (D, DV) of the
// bundle's SM90_CONFIGS, out strides in 16-byte groups, no splits. Paged K/V (pages of 16 rows
// or more) when the page size and kBlockN divide one another (a K or V block is one TMA copy of
// part of a page, or one per page); keys past a batch's seqused_k are read like any other and,
// since they may hold anything (NaN included), their V rows are zeroed in shared memory before
// P V.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/params.h"
#include "kernels/attention/row_finish.h"
#include "kernels/attention/score_mask.cuh"
#include "kernels/common/fast_div.h"
#include "kernels/common/mma.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/tma.cuh"
#include "kernels/common/wgmma.cuh"

// Phase timestamps of one block for the kernel lab: scripts/sm90_kernel_lab.cu built with
// -DKERNELS_SM90_TRACE defines kernels_sm90_trace(event); compiled out everywhere else.
#ifdef KERNELS_SM90_TRACE
#define KERNELS_SM90_TRACE_AT(event) kernels_sm90_trace(event)
#else
#define KERNELS_SM90_TRACE_AT(event) ((void)0)
#endif

namespace kernels::attention {

template <int D_, int BlockN_, int Stages_, class T_, int Consumers_ = 2, int QStages_ = 1,
          bool ChainTurns_ = true, int DV_ = D_>
struct Sm90FwdTraits {
  using T = T_;
  static constexpr int D = D_;                   // q/k head dim
  static constexpr int DV = DV_;                 // v (and out) head dim
  static constexpr int kConsumers = Consumers_;  // warpgroups of 64 query rows
  static constexpr int kBlockM = 64 * kConsumers;
  static constexpr int kBlockN = BlockN_;
  static constexpr int kStages = Stages_;  // K/V ring slots
  // Q slots: with two, a persistent block loads its next tile's Q while this one's is still read.
  static constexpr int kQStages = QStages_;
  // The consumers' GEMM turns run on from one tile to the next (see attention_forward_sm90);
  // false resynchronises them at every tile (the first version, kept for measurements).
  static constexpr bool kChainTurns = ChainTurns_;
  static constexpr int kThreads = 128 * (kConsumers + 1);
  // Rows in shared memory are whole 128-byte column chunks; a head dim that ends inside one (96)
  // leaves the rest of its last chunk zero (TMA fills columns past the tensor's with zeros) and
  // unread: S = Q K^T reduces over D, P V's n = DV ends inside V's last chunk (measured against
  // padding P V to 128 columns: +4% at d96, docs/PERFORMANCE.md).
  static constexpr int kChunks = (D + 63) / 64;    // 128-byte column chunks of a Q or K row
  static constexpr int kChunksV = (DV + 63) / 64;  // of a V row
  static constexpr int kQBytes = kBlockM * kChunks * 128;
  static constexpr int kKBytes = kBlockN * kChunks * 128;   // one K slot
  static constexpr int kVBytes = kBlockN * kChunksV * 128;  // one V slot
  static constexpr int kBarriers = 2 * kQStages + 4 * kStages;
  // Gathered pages (produce_gathered): each key row's (page, slot), for two blocks.
  static constexpr int kRowTableBytes = 2 * kBlockN * 8;
  // 1024 bytes of slack: the dynamic shared memory base is only 16-byte aligned, and 128-byte
  // swizzled tiles must start on 1024 bytes.
  static constexpr int kSmemBytes = kQStages * kQBytes + kStages * (kKBytes + kVBytes) +
                                    kBarriers * 8 + kRowTableBytes + 1024;
  // Registers after reallocation: 24 for the producer, the rest split over the consumers
  // (65536 per SM, one block per SM).
  static constexpr int kProducerRegs = kConsumers == 2 ? 24 : 32;
  static constexpr int kConsumerRegs = kConsumers == 2 ? 240 : 160;
  // The softmax of key block j wholly under the P V of block j-1: no branch between the GEMMs'
  // issue and their last wait (ptxas waits for every wgmma in flight where control flow merges),
  // so the key-block step has a copy per softcap / mask case and K is released after the
  // softmax. +1-3% at d192 and d256, where P V is long; no gain at d128 and -6% for short causal
  // calls at d64 (docs/PERFORMANCE.md, ladder steps 15 and 18).
  static constexpr bool kSoftmaxUnderPv = D >= 192;
  // Tile decode by multiply-shift (FastDiv) where the registers allow: +0.6-2.7% on short calls
  // at d64/d128 (ladder step 31); the 128x176 and d192 kernels spill with its multipliers live.
  static constexpr bool kFastTileDecode = D <= 128 && kBlockN <= 128;
  // A row's softmax offset moves only when its max grows by more than 2^8 (softmax_max_moves),
  // so the output is rescaled only for the key blocks where some row of the warp moved it:
  // +1-6% at d192/d256 (128 output columns a thread to scale per key block); -2..-4% at d64 and
  // d128, whose softmax waits for P V (ladder step 32 in docs/PERFORMANCE.md).
  static constexpr bool kLazyRescale = kSoftmaxUnderPv;
  // The causal / window mask through a bit per element (mask_scores_bits: a few integer
  // operations a row, then R2P and FSEL) instead of two compares per element: +1-2% on short
  // causal calls at d64 and d128, neutral at d192/d256 (ladder step 33).
  static constexpr bool kMaskBits = !kSoftmaxUnderPv;
  // After a tile's first key block, the exponentials use the row offsets in use without a row
  // max: a block's probabilities go straight into P V's A operand, and only when one of them
  // could exceed 2^8 (a lane's partial row sum above 2^8, or a row with no offset yet) does the
  // warp take the max and move the offsets (softmax_step_checked). The max's instructions cost
  // 9% at d128 (ladder step 35 in docs/PERFORMANCE.md): +4-6% at d128 16k, +13% at d64 16k,
  // +5% at d96, +1-3% at d128 512. The step waits for P V before the exponentials (P's
  // registers are rewritten) and applies the softcap and mask before that wait, under P V
  // (ladder step 37: +5-6% more at d128 16k, +1-3% on causal calls, and d64's 128x128 kernel
  // gains from the step too).
  static constexpr bool kCheckedOffset = !kSoftmaxUnderPv;

  static_assert(D % 32 == 0 && D <= 256, "k16 steps; wgmma n <= 256");
  static_assert(DV % 32 == 0 && DV <= D,
                "the epilogue's 32-column groups; P V no wider than Q K^T");
  static_assert(kConsumers == 2 || kConsumers == 3, "register split for 2 or 3 consumers");
  static_assert(kQStages == 1 || kQStages == 2, "one or two Q slots");
  static_assert(kBlockN % 16 == 0 && kBlockN <= 256, "wgmma n and k multiples");
  static_assert((kBlockN * 128) % 1024 == 0, "each K/V chunk starts on a swizzle atom");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory budget of one sm_90 block");
  static_assert(128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= 65536,
                "register file of one SM");
};

namespace detail {

// A step's option as a runtime bool or as a compile-time std::bool_constant (a copy of the step
// without that branch).
__device__ __forceinline__ bool flag_on(bool f) { return f; }
template <bool B>
__device__ __forceinline__ constexpr bool flag_on(std::bool_constant<B>) {
  return B;
}
// The mask option decided inside the step, from the block's position (block_needs_mask).
struct MaskIfNeeded {};

// Barrier slots in shared memory, named for what their completion means.
struct Sm90Barriers {
  uint64_t* q_full;
  uint64_t* q_empty;
  uint64_t* k_full;
  uint64_t* k_empty;
  uint64_t* v_full;
  uint64_t* v_empty;
};

// The rows a copy of this batch starts at, in the tensor maps' (rows, batch) coordinates.
// (See sm90_tensor_maps: varlen tensors are one batch of all tokens.)
struct TmaRows {
  int q_row, q_batch;
  int k_row, k_batch;
};

__device__ __forceinline__ TmaRows tma_rows(const FwdParams& p, int bi) {
  const bool varlen_q = p.cu_seqlens_q != nullptr;
  const bool varlen_k = p.cu_seqlens_k != nullptr;
  return {varlen_q ? p.cu_seqlens_q[bi] : 0, varlen_q ? 0 : bi, varlen_k ? p.cu_seqlens_k[bi] : 0,
          varlen_k ? 0 : bi};
}

// Where tile t lies: its batch, query head, KV head and m-block (Sm90Tile's numbering).
struct Sm90TileIndex {
  int bi, head, hk, m_block;
};

// The divisors that turn a tile index into (batch, head, m-block), fixed for the launch. With
// Div = device::FastDiv every thread sets them up once and decodes each tile with multiplies (a
// run-time division is a ~20-instruction chain on the tile's critical path; ladder step 31 in
// docs/PERFORMANCE.md); device::PlainDiv divides, for kernels without the registers to spare.
template <class Div>
struct Sm90TileDecode {
  int m_blocks;
  int h;
  Div by_m_blocks, by_h, by_group;
  __device__ __forceinline__ Sm90TileDecode(const FwdParams& p, int m_blocks_)
      : m_blocks(m_blocks_), h(p.h), by_m_blocks(m_blocks_), by_h(p.h), by_group(p.h / p.h_k) {}

  __device__ __forceinline__ Sm90TileIndex index(int t) const {
    const int mh = by_m_blocks.div(t);  // the (batch, head) pair
    const int bi = by_h.div(mh);
    const int head = mh - bi * h;
    return {bi, head, by_group.div(head), m_blocks - 1 - (t - mh * m_blocks)};
  }
};
template <class Tr>
using Sm90TileDecodeOf =
    Sm90TileDecode<std::conditional_t<Tr::kFastTileDecode, device::FastDiv, device::PlainDiv>>;

// One tile of the persistent schedule: kBlockM query rows of one (batch, head), and the key
// blocks they see. The producer and the consumers derive it identically from the tile index.
// Tiles are numbered m-blocks fastest, from the last (the heaviest under a causal mask) to the
// first, then heads, then batches: blocks running at once share one head's K and V in L2.
struct Sm90Tile {
  int head, hk, m0;
  BatchInfo b;
  KeyBounds kb;
  int i_min, i_max;
  KeyBlockRange range;
  int n_blocks;
  bool empty;  // no query row of this batch falls in the tile

  __device__ __forceinline__ Sm90Tile(const FwdParams& p, const Sm90TileIndex& at, int block_m,
                                      int block_n)
      : head(at.head),
        hk(at.hk),
        m0(at.m_block * block_m),
        b(batch_info(p, at.bi)),
        kb(p, b),
        i_min(m0),
        i_max(min(m0 + block_m - 1, b.sq - 1)),
        range(key_block_range(kb, b.sk, i_min, i_max, block_n, 0, 1)),
        n_blocks(range.nb_max - range.nb_min),
        empty(m0 >= b.sq) {}
};

}  // namespace detail

// Blocks of a persistent launch: one per SM at most (launch_plan.cpp's plan_forward_sm90).
__host__ __device__ constexpr int sm90_tiles(int seqlen_q, int h, int b, int block_m) {
  return (seqlen_q + block_m - 1) / block_m * h * b;
}

namespace detail {

// The tile this block takes in round r: a persistent block (gridDim.x < tiles) takes one tile of
// each run of gridDim.x, every other run in reverse (a snake), so that under a causal mask, where
// each head's tiles get lighter one after another, every block's heavy and light tiles even out.
// With one block per tile there is one round. Both the producer and the consumers walk it.
__device__ __forceinline__ int sm90_tile_of_round(int r) {
  const int first = r * static_cast<int>(gridDim.x);
  return first +
         ((r & 1) ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : static_cast<int>(blockIdx.x));
}

}  // namespace detail

namespace detail {

// The producer warpgroup for paged K/V that TMA cannot copy (pages of fewer than 16 rows, or
// sizes that do not divide the key block or its multiples): thread 0 still loads each tile's Q by
// TMA; all 128 threads gather the K and V blocks row by row, 16 bytes at a time, into the same
// 128-byte-swizzled layout the TMA copies produce (16-byte unit u of row r of a column chunk at
// unit u ^ (r % 8)). A block's copies are two cp.async groups (K, V); they are waited for one
// block later, so a block's gather overlaps the previous one's flight, and each thread then
// makes them visible to the tensor cores (proxy fence) and arrives on the slots' full barriers.
// Keys past the batch's last are read as its last key (masked later; never a page past the
// table's).
template <class Tr>
__device__ __forceinline__ void produce_gathered(const TmaFwdParams& tp, const Sm90Barriers& bar,
                                                 unsigned char* sQ, unsigned char* sK,
                                                 unsigned char* sV, int2* row_table,
                                                 const Sm90TileDecodeOf<Tr>& dec, int num_tiles) {
  constexpr int kBlockN = Tr::kBlockN;
  constexpr int kStages = Tr::kStages;
  constexpr int kRowsBarrier = Tr::kConsumers + 2;  // after the consumers' named barriers
  const FwdParams& p = tp.fwd;
  const int t = threadIdx.x;  // 0..127
  if (t == 0) device::prefetch_tma_descriptor(&tp.q);
  // The block's (page, slot) per key row, a row per thread: the page-table reads of a block
  // run in parallel instead of one behind another in each thread's copy loop. Two tables, so
  // writing the next block's cannot overtake a slow thread still copying this one (the barrier
  // between them is passed only after every thread's copies of the block before).
  auto fill_rows = [&](const Sm90Tile& w, const int32_t* table, int key0, int2* rows) {
    for (int r = t; r < kBlockN; r += 128) {
      const int key = min(key0 + r, w.b.sk - 1);
      rows[r] = make_int2(table[key / p.page_size], key % p.page_size);
    }
    device::named_barrier_sync(kRowsBarrier, 128);
  };
  auto gather_block = [&](auto cols, unsigned char* slot_base, const void* base,
                          int64_t page_stride, int64_t row_stride, int64_t head_stride,
                          const Sm90Tile& w, const int2* rows) {
    constexpr int kCols = decltype(cols)::value;
    constexpr int kUnits = (kCols + 63) / 64 * 8;  // 16-byte units of a row in shared memory
    const char* src0 = static_cast<const char*>(base) + w.hk * head_stride * 2;
    const uint32_t dst0 = device::smem_u32(slot_base);
#pragma unroll 2
    for (int i = t; i < kBlockN * kUnits; i += 128) {
      const int row = i / kUnits;
      const int u = i % kUnits;
      const int2 ps = rows[row];
      const char* src = src0 + (ps.x * page_stride + ps.y * row_stride) * 2 + (u / 8) * 128 +
                        (u % 8) * 16;
      const uint32_t dst = dst0 + (u / 8) * kBlockN * 128 + row * 128 + ((u % 8) ^ (row % 8)) * 16;
      device::cp_async_16(dst, src, u * 8 < kCols);  // past the head dim (96): zeros
    }
    device::cp_async_commit();
  };
  // A group is complete: make it visible to the tensor cores (written through the generic proxy,
  // read by wgmma) and arrive on its slot's full barrier.
  auto publish = [&](uint64_t* full) {
    device::fence_proxy_async_shared();
    device::mbarrier_arrive(full);
  };
  int kv = 0;
  int q_count = 0;
  for (int r = 0; r * static_cast<int>(gridDim.x) < num_tiles; ++r) {
    const int tt = sm90_tile_of_round(r);
    if (tt >= num_tiles) continue;
    const Sm90Tile w(p, dec.index(tt), Tr::kBlockM, kBlockN);
    if (w.empty || w.n_blocks == 0) continue;
    if (t == 0) {
      const TmaRows rows = tma_rows(p, w.b.bi);
      const int qs = q_count % Tr::kQStages;
      device::mbarrier_wait(bar.q_empty + qs, ((q_count / Tr::kQStages) & 1) ^ 1);
      device::mbarrier_arrive_expect_tx(bar.q_full + qs, Tr::kQBytes);
#pragma unroll
      for (int c = 0; c < Tr::kChunks; ++c)
        device::tma_load_4d(sQ + qs * Tr::kQBytes + c * Tr::kBlockM * 128, &tp.q, bar.q_full + qs,
                            c * 64, rows.q_row + w.m0, w.head, rows.q_batch);
    }
    ++q_count;
    const int32_t* table = p.page_table + w.b.bi * p.page_table_batch_stride;
    for (int it = 0; it < w.n_blocks; ++it, ++kv) {
      const int key0 = (w.range.nb_max - 1 - it) * kBlockN;
      const int slot = kv % kStages;
      const uint32_t phase = (kv / kStages) & 1;
      // Groups run K_0, V_0, K_1, ...; each is published once the next is in flight. (K_g is
      // published before waiting for V_{g+1}'s slot, whose readers need K_g: no cycle.)
      int2* rows = row_table + (kv & 1) * kBlockN;
      fill_rows(w, table, key0, rows);
      device::mbarrier_wait(bar.k_empty + slot, phase ^ 1);
      gather_block(std::integral_constant<int, Tr::D>{}, sK + slot * Tr::kKBytes, p.k,
                   p.k_batch_stride, p.k_row_stride, p.k_head_stride, w, rows);
      if (kv > 0) {
        device::cp_async_wait<1>();  // V_{g-1}
        publish(bar.v_full + (kv - 1) % kStages);
      }
      device::mbarrier_wait(bar.v_empty + slot, phase ^ 1);
      gather_block(std::integral_constant<int, Tr::DV>{}, sV + slot * Tr::kVBytes, p.v,
                   p.v_batch_stride, p.v_row_stride, p.v_head_stride, w, rows);
      device::cp_async_wait<1>();  // K_g
      publish(bar.k_full + slot);
    }
  }
  if (kv > 0) {
    device::cp_async_wait<0>();
    publish(bar.v_full + (kv - 1) % kStages);
  }
}

}  // namespace detail

template <class Tr>
__device__ __forceinline__ void attention_forward_sm90(const TmaFwdParams& tp) {
  using T = typename Tr::T;
  using Mma = device::MmaOp<T>;
  constexpr int D = Tr::D;
  constexpr int DV = Tr::DV;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kBlockN = Tr::kBlockN;
  constexpr int kStages = Tr::kStages;
  const FwdParams& p = tp.fwd;

  extern __shared__ __align__(1024) unsigned char sm90_smem[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(sm90_smem) + 1023) & ~static_cast<uintptr_t>(1023));
  unsigned char* sQ = smem;
  unsigned char* sK = sQ + Tr::kQStages * Tr::kQBytes;
  unsigned char* sV = sK + kStages * Tr::kKBytes;
  uint64_t* bar_base = reinterpret_cast<uint64_t*>(sV + kStages * Tr::kVBytes);
  uint64_t* kv_bar = bar_base + 2 * Tr::kQStages;
  const detail::Sm90Barriers bar{bar_base,         bar_base + Tr::kQStages, kv_bar,
                                 kv_bar + kStages, kv_bar + 2 * kStages,    kv_bar + 3 * kStages};

  const int m_blocks = (p.seqlen_q + kBlockM - 1) / kBlockM;
  const int num_tiles = sm90_tiles(p.seqlen_q, p.h, p.b, kBlockM);
  const detail::Sm90TileDecodeOf<Tr> decode(p, m_blocks);
  auto tile = [&](int t) { return detail::Sm90Tile(p, decode.index(t), kBlockM, kBlockN); };

  constexpr int kConsumerWarps = 4 * Tr::kConsumers;
  // Paged K/V whose pages TMA cannot copy whole (sm90_pages_by_tma): every producer thread
  // gathers rows with cp.async and arrives on the slot's full barrier once its copies landed.
  const bool gather = sm90_gathers_pages(D, kBlockN) && p.page_table != nullptr &&
                      !sm90_pages_by_tma(p.page_size, kBlockN);
  const uint32_t kv_full_arrivals = gather ? 128 : 1;
  if (threadIdx.x == 0) {
    for (int s = 0; s < Tr::kQStages; ++s) {
      device::mbarrier_init(bar.q_full + s, 1);
      device::mbarrier_init(bar.q_empty + s, kConsumerWarps);
    }
    for (int s = 0; s < kStages; ++s) {
      device::mbarrier_init(bar.k_full + s, kv_full_arrivals);
      device::mbarrier_init(bar.v_full + s, kv_full_arrivals);
      device::mbarrier_init(bar.k_empty + s, kConsumerWarps);
      device::mbarrier_init(bar.v_empty + s, kConsumerWarps);
    }
    device::fence_barrier_init();
  }
  __syncthreads();

  const int warpgroup = threadIdx.x / 128;
  if constexpr (sm90_gathers_pages(D, kBlockN)) {
    if (warpgroup == 0 && gather) {
      device::setmaxnreg_dec<Tr::kProducerRegs>();
      detail::produce_gathered<Tr>(tp, bar, sQ, sK, sV,
                                   reinterpret_cast<int2*>(bar_base + Tr::kBarriers), decode,
                                   num_tiles);
      return;
    }
  }
  if (warpgroup == 0) {
    // Producer: one thread issues every copy; the others only give their registers away.
    device::setmaxnreg_dec<Tr::kProducerRegs>();
    if (threadIdx.x == 0) {
      device::prefetch_tma_descriptor(&tp.q);
      device::prefetch_tma_descriptor(&tp.k);
      device::prefetch_tma_descriptor(&tp.v);
      int kv = 0;       // K/V blocks loaded so far: ring slot and phase
      int q_count = 0;  // Q tiles loaded so far: slot and phase of q_full / q_empty
      for (int r = 0; r * static_cast<int>(gridDim.x) < num_tiles; ++r) {
        const int t = detail::sm90_tile_of_round(r);
        if (t >= num_tiles) continue;
        const detail::Sm90Tile w = tile(t);
        if (w.empty || w.n_blocks == 0) continue;  // the consumers need no Q and no K/V
        KERNELS_SM90_TRACE_AT(0);
        const detail::TmaRows rows = detail::tma_rows(p, w.b.bi);
        // A Q slot is refilled once every consumer warp has issued its last S = Q K^T on it.
        const int qs = q_count % Tr::kQStages;
        device::mbarrier_wait(bar.q_empty + qs, ((q_count / Tr::kQStages) & 1) ^ 1);
        KERNELS_SM90_TRACE_AT(1);
        device::mbarrier_arrive_expect_tx(bar.q_full + qs, Tr::kQBytes);
#pragma unroll
        for (int c = 0; c < Tr::kChunks; ++c)
          device::tma_load_4d(sQ + qs * Tr::kQBytes + c * kBlockM * 128, &tp.q, bar.q_full + qs,
                              c * 64, rows.q_row + w.m0, w.head, rows.q_batch);
        ++q_count;
        // One K or V block (kChunks column chunks) into its ring slot once the slot's readers
        // are done with it. Paged: the block is kBlockN / seg copies of seg rows, each from one
        // page (pages past the batch's last are never looked up: the last one is read again, and
        // masked). The block's page numbers are read up front, as independent loads, and serve K
        // and V.
        const bool paged = p.page_table != nullptr;
        const int seg = paged ? min(kBlockN, p.page_size) : kBlockN;
        constexpr int kMaxSegs = kBlockN / 16;  // plan_forward_sm90: pages of 16 rows or more
        int page_of[kMaxSegs];
        auto load_block = [&](auto chunks, unsigned char* ring, const TensorMap* map,
                              uint64_t* full, uint64_t* empty, int slot, uint32_t phase, int key0) {
          constexpr int kBlockChunks = decltype(chunks)::value;
          constexpr int kSlotBytes = kBlockChunks * kBlockN * 128;
          device::mbarrier_wait(empty + slot, phase ^ 1);
          device::mbarrier_arrive_expect_tx(full + slot, kSlotBytes);
#pragma unroll
          for (int i = 0; i < kMaxSegs; ++i) {
            const int r = i * seg;
            if (r >= kBlockN) break;
            const int row = paged ? (key0 + r) % p.page_size : rows.k_row + key0 + r;
            const int batch = paged ? page_of[i] : rows.k_batch;
#pragma unroll
            for (int c = 0; c < kBlockChunks; ++c)
              device::tma_load_4d(ring + slot * kSlotBytes + c * kBlockN * 128 + r * 128, map,
                                  full + slot, c * 64, row, w.hk, batch);
          }
        };
        for (int it = 0; it < w.n_blocks; ++it, ++kv) {
          const int key0 = (w.range.nb_max - 1 - it) * kBlockN;
          const int slot = kv % kStages;
          const uint32_t phase = (kv / kStages) & 1;
          if (paged) {
            const int32_t* table = p.page_table + w.b.bi * p.page_table_batch_stride;
#pragma unroll
            for (int i = 0; i < kMaxSegs; ++i)
              if (i * seg < kBlockN)
                page_of[i] = table[min(key0 + i * seg, w.b.sk - 1) / p.page_size];
          }
          load_block(std::integral_constant<int, Tr::kChunks>{}, sK, &tp.k, bar.k_full, bar.k_empty,
                     slot, phase, key0);
          KERNELS_SM90_TRACE_AT(2);
          load_block(std::integral_constant<int, Tr::kChunksV>{}, sV, &tp.v, bar.v_full,
                     bar.v_empty, slot, phase, key0);
          KERNELS_SM90_TRACE_AT(3);
        }
      }
    }
    return;
  }

  device::setmaxnreg_inc<Tr::kConsumerRegs>();
  const int wg = warpgroup - 1;
  const int t = threadIdx.x % 128;
  const int lane = t % 32;
  const bool warp_leader = lane == 0;
  // This thread's two rows of the block (accumulator rows r and r + 8 of its warp).
  const int row0 = wg * 64 + (t / 32) * 16 + lane / 4;

  const ScoreScale scale(p);
  const bool softcap_on = scale.softcap_on;
  const float cap_in = scale.cap_in;
  const float scale_log2 = scale.scale_log2;

  float o[DV / 2];
  float row_max[2] = {-INFINITY, -INFINITY};  // the rows' offsets: raw (capped, unscaled) scores
  float row_sum[2];                           // this lane's partial sums
  float s[kBlockN / 2];                       // S of the newest key block, then its P
  uint32_t a[kBlockN / 16][4];                // P of the previous block as the A operand

  // Ring positions count K/V blocks over all tiles of this block, as the producer does.
  int kv = 0;
  int q_count = 0;
  auto q_tile = [&] {
    return device::smem_u32(sQ + (q_count % Tr::kQStages) * Tr::kQBytes) + wg * 64 * 128;
  };
  auto k_tile = [&](int g) { return device::smem_u32(sK + (g % kStages) * Tr::kKBytes); };
  auto v_tile = [&](int g) { return device::smem_u32(sV + (g % kStages) * Tr::kVBytes); };
  auto phase = [&](int g) { return static_cast<uint32_t>((g / kStages) & 1); };
  auto release = [&](uint64_t* empty) {
    __syncwarp();
    if (warp_leader) device::mbarrier_arrive(empty);
  };

  // Ping-pong: the consumer warpgroups take turns issuing their GEMMs (warpgroup w waits on
  // barrier kFirstBarrier + w, then lets the next one go), so one's softmax runs while the
  // others' GEMMs keep the tensor cores busy. Every warpgroup has n + 1 turns in a tile of n
  // key blocks, so with chained turns the order runs on across tiles: the first warpgroup
  // starts its next tile while the last one still computes, instead of both meeting at the
  // tile boundary.
  constexpr int kFirstBarrier = 1;
  constexpr int kPair = 256;  // one warpgroup syncs, the previous one arrives
  auto gemm_turn_begin = [&] { device::named_barrier_sync(kFirstBarrier + wg, kPair); };
  auto gemm_turn_end = [&] {
    device::named_barrier_arrive(kFirstBarrier + (wg + 1) % Tr::kConsumers, kPair);
  };
  // The last warpgroup lets the first one issue first.
  auto first_turn = [&] {
    if (wg == Tr::kConsumers - 1) device::named_barrier_arrive(kFirstBarrier, kPair);
  };

  auto issue_qk = [&](int g) {
    device::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      device::Wgmma<T, kBlockN>::ss(s, device::k_major_desc<kBlockM>(q_tile(), kk),
                                    device::k_major_desc<kBlockN>(k_tile(g), kk), kk > 0);
    device::wgmma_commit();
  };
  auto issue_pv = [&](int g) {
    device::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
      device::Wgmma<T, DV>::template rs<1>(o, a[kk], device::mn_major_desc<kBlockN>(v_tile(g), kk),
                                           1);
    device::wgmma_commit();
  };

  // Whether key block `it` of tile `w` needs the mask (causal diagonal, window, or past the keys).
  auto needs_mask = [&](const detail::Sm90Tile& w, int it) {
    const int n0 = (w.range.nb_max - 1 - it) * kBlockN;
    return detail::block_needs_mask(w.kb, w.b.sk, n0, kBlockN, w.i_min, w.i_max);
  };

  // The softcap and the mask of key block `it` of tile `w`, on S in place. `cap` and `mask` say
  // whether to apply them: a runtime bool / detail::MaskIfNeeded, or std::true_type /
  // std::false_type for a copy without that branch.
  auto cap_and_mask = [&](auto cap, auto mask, const detail::Sm90Tile& w, int it) {
    // A warp's rows of a wgmma accumulator are laid out as mma.sync's m16n8 fragments, one per
    // 8 columns: element 4 * c + 2 * r + e is row lane / 4 + 8 * r, column 8 * c + 2 * (lane % 4)
    // + e. So the built-in kernels' softcap and mask apply as they are.
    auto& frags = reinterpret_cast<float(&)[1][kBlockN / 8][4]>(s);
    if (detail::flag_on(cap)) apply_softcap(frags, cap_in);
    const int n0 = (w.range.nb_max - 1 - it) * kBlockN;
    bool masked;
    if constexpr (std::is_same_v<decltype(mask), detail::MaskIfNeeded>) masked = needs_mask(w, it);
    else masked = detail::flag_on(mask);
    if (masked) {
      if constexpr (Tr::kMaskBits)
        mask_scores_bits(frags, w.kb, w.b.sk, n0, w.m0 + row0 - lane / 4, lane);
      else mask_scores(frags, w.kb, w.b.sk, n0, w.m0 + row0 - lane / 4, 1, lane);
    }
  };
  // The max of row r over this block's scores and the row's offset in use (the quad's lanes).
  auto block_row_max = [&](int r) {
    float mx = row_max[r];
#pragma unroll
    for (int c = 0; c < kBlockN / 8; ++c)
      mx = fmaxf(mx, fmaxf(s[4 * c + 2 * r], s[4 * c + 2 * r + 1]));
    return device::quad_max(mx);
  };

  // S of key block `it` of tile `w` -> P (in s), running max and sums updated; sets the factor
  // the output rows must be scaled by, and returns whether any row of the warp has one other
  // than 1.
  auto softmax_step = [&](auto cap, auto mask, const detail::Sm90Tile& w, int it,
                          float(&correction)[2]) {
    bool moved = false;
    cap_and_mask(cap, mask, w, it);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = block_row_max(r);
      if constexpr (Tr::kLazyRescale) {
        const bool moves = device::softmax_max_moves(row_max[r], mx, scale_log2);
        moved |= moves;
        if (!moves) mx = row_max[r];
      }
      const float base = device::softmax_base(mx, scale_log2);
      correction[r] = device::fast_exp2(row_max[r] * scale_log2 - base);
      if constexpr (Tr::kLazyRescale)
        if (mx == row_max[r]) correction[r] = 1.0f;  // exactly, whatever exp2 rounds to
      row_max[r] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < kBlockN / 8; ++c)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pe = device::fast_exp2(fmaf(s[4 * c + 2 * r + e], scale_log2, -base));
          s[4 * c + 2 * r + e] = pe;
          sum += pe;
        }
      row_sum[r] = row_sum[r] * correction[r] + sum;
    }
    return !Tr::kLazyRescale || __any_sync(0xffffffffu, moved);
  };

  // A key block's S, softcapped and masked (not a tile's first block), with the row offsets in
  // use (kCheckedOffset): P goes straight into `a`, P V's A operand (so the block before's P V
  // must be done), and S is kept.
  // A lane's partial row sum of at most 2^kMaxStaleLog2 bounds every probability it summed, as
  // the lazy rescale's rule asks; above it, or for a row with no offset yet (no visible key so
  // far), the warp takes the rows' maxima, moves the offsets of the rows whose max grew past
  // the bound (softmax_max_moves) and recomputes the block from S. Returns whether the output
  // must be scaled by `correction`.
  auto softmax_step_checked = [&](float(&correction)[2]) {
    float sum[2];
    auto exponentials = [&] {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float base = device::softmax_base(row_max[r], scale_log2);
        sum[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < kBlockN / 8; ++c) {
          const float p0 = device::fast_exp2(fmaf(s[4 * c + 2 * r], scale_log2, -base));
          const float p1 = device::fast_exp2(fmaf(s[4 * c + 2 * r + 1], scale_log2, -base));
          sum[r] += p0;
          sum[r] += p1;
          a[c / 2][2 * (c % 2) + r] = Mma::pack(p0, p1);  // pack_p's order
        }
      }
    };
    exponentials();
    bool check = false;
#pragma unroll
    for (int r = 0; r < 2; ++r) check |= sum[r] > device::kMaxStaleP || row_max[r] == -INFINITY;
    bool moved = false;
    if (__any_sync(0xffffffffu, check)) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float mx = block_row_max(r);
        correction[r] = 1.0f;
        if (device::softmax_max_moves(row_max[r], mx, scale_log2)) {
          correction[r] = device::fast_exp2(row_max[r] * scale_log2 -
                                            device::softmax_base(mx, scale_log2));
          row_max[r] = mx;
          moved = true;
        }
      }
      moved = __any_sync(0xffffffffu, moved);
      if (moved) exponentials();
    }
#pragma unroll
    for (int r = 0; r < 2; ++r)
      row_sum[r] = (moved ? row_sum[r] * correction[r] : row_sum[r]) + sum[r];
    return moved;
  };
  auto rescale_o = [&](const float(&correction)[2], bool needed) {
    if (!needed) return;
#pragma unroll
    for (int c = 0; c < DV / 8; ++c)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        o[4 * c + 2 * r] *= correction[r];
        o[4 * c + 2 * r + 1] *= correction[r];
      }
  };
  // P as the A operand: the accumulator pairs of each 16-column step, packed to 16 bits.
  auto pack_p = [&] {
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
#pragma unroll
      for (int q = 0; q < 4; ++q) a[kk][q] = Mma::pack(s[8 * kk + 2 * q], s[8 * kk + 2 * q + 1]);
  };

  // Keys at or past the batch's seqused_k (paged, or a cache longer than what is used) are not
  // zero-filled by TMA and may hold NaN, which P = 0 would not cancel in P V: the consumers zero
  // those V rows of the tile's first (the only partial) key block, each warpgroup a share, and
  // meet on a named barrier before any P V reads them.
  constexpr int kZeroBarrier = kFirstBarrier + Tr::kConsumers;
  // (Gathered rows past the last key are copies of it: finite, nothing to zero.)
  const bool tail_may_be_garbage = !gather && (p.page_table != nullptr || p.seqused_k != nullptr);
  auto zero_v_tail = [&](const detail::Sm90Tile& w) {
    const int n0 = (w.range.nb_max - 1) * kBlockN;
    const int valid = w.b.sk - n0;
    if (!tail_may_be_garbage || valid >= kBlockN) return;
    device::mbarrier_wait(bar.v_full + kv % kStages, phase(kv));
    const uint32_t base = v_tile(kv);
    constexpr int kUnits = Tr::kChunksV * 8;  // 16-byte units of a row, over all chunks
    for (int u = wg * 128 + t; u < (kBlockN - valid) * kUnits; u += Tr::kConsumers * 128) {
      const int row = valid + u / kUnits;
      const int chunk = u % kUnits / 8;
      device::store_shared_zero_16(base + chunk * kBlockN * 128 + row * 128 + u % 8 * 16);
    }
    device::fence_proxy_async_shared();
    device::named_barrier_sync(kZeroBarrier, Tr::kConsumers * 128);
  };

  // The key blocks of one tile: S_it = Q K_it^T and O += P_{it-1} V_{it-1} in flight together;
  // the softmax of S_it runs while P V still computes, and O is rescaled once P V is done.
  auto mainloop = [&](const detail::Sm90Tile& w) {
    const int n = w.n_blocks;
    const int qs = q_count % Tr::kQStages;
    if constexpr (!Tr::kChainTurns) first_turn();
    device::mbarrier_wait(bar.q_full + qs, (q_count / Tr::kQStages) & 1);
    device::mbarrier_wait(bar.k_full + kv % kStages, phase(kv));
    KERNELS_SM90_TRACE_AT(11);
    gemm_turn_begin();
    KERNELS_SM90_TRACE_AT(12);
    issue_qk(kv);
    gemm_turn_end();
    zero_v_tail(w);
    device::wgmma_wait<0>();
    device::fence_registers(s);
    KERNELS_SM90_TRACE_AT(13);
    release(bar.k_empty + kv % kStages);
    if (n == 1) release(bar.q_empty + qs);  // the last S of this Q is done
    float correction[2];
    softmax_step(softcap_on, detail::MaskIfNeeded{}, w, 0, correction);
    pack_p();
    KERNELS_SM90_TRACE_AT(14);
    auto step = [&](auto cap, auto mask, int it) {
      const int g = kv + it;
      device::mbarrier_wait(bar.k_full + g % kStages, phase(g));
      device::mbarrier_wait(bar.v_full + (g - 1) % kStages, phase(g - 1));
      KERNELS_SM90_TRACE_AT(15);
      gemm_turn_begin();
      KERNELS_SM90_TRACE_AT(16);
      issue_qk(g);
      issue_pv(g - 1);
      gemm_turn_end();
      device::wgmma_wait<1>();
      device::fence_registers(s);
      KERNELS_SM90_TRACE_AT(17);
      if constexpr (Tr::kCheckedOffset) {
        release(bar.k_empty + g % kStages);
        if (it == n - 1) release(bar.q_empty + qs);
        cap_and_mask(cap, mask, w, it);  // under P V
        device::wgmma_wait<0>();         // the block before's P V is done with `a`
        device::fence_registers(o);
        device::fence_registers(a);
        KERNELS_SM90_TRACE_AT(19);
        release(bar.v_empty + (g - 1) % kStages);
        rescale_o(correction, softmax_step_checked(correction));
        return;
      }
      if constexpr (!Tr::kSoftmaxUnderPv) {
        release(bar.k_empty + g % kStages);
        if (it == n - 1) release(bar.q_empty + qs);
      }
      const bool rescale = softmax_step(cap, mask, w, it, correction);
      if constexpr (Tr::kSoftmaxUnderPv) {
        device::fence_registers(s);  // the softmax stays ahead of the releases' branches
        release(bar.k_empty + g % kStages);
        if (it == n - 1) release(bar.q_empty + qs);
      }
      KERNELS_SM90_TRACE_AT(18);
      device::wgmma_wait<0>();
      device::fence_registers(o);
      device::fence_registers(a);
      KERNELS_SM90_TRACE_AT(19);
      release(bar.v_empty + (g - 1) % kStages);
      rescale_o(correction, rescale);
      pack_p();
    };
    for (int it = 1; it < n; ++it) {
      if constexpr (Tr::kSoftmaxUnderPv) {
        // Softcap calls take the copy that also masks every block.
        if (softcap_on) step(std::true_type{}, std::true_type{}, it);
        else if (needs_mask(w, it)) step(std::false_type{}, std::true_type{}, it);
        else step(std::false_type{}, std::false_type{}, it);
      } else {
        step(softcap_on, detail::MaskIfNeeded{}, it);
      }
    }
    const int last = kv + n - 1;
    device::mbarrier_wait(bar.v_full + last % kStages, phase(last));
    gemm_turn_begin();
    KERNELS_SM90_TRACE_AT(20);
    issue_pv(last);
    // Unchained, every turn is matched within the tile: the last warpgroup's first "go" stands
    // for its final one.
    if (Tr::kChainTurns || wg != Tr::kConsumers - 1) gemm_turn_end();
    device::wgmma_wait<0>();
    device::fence_registers(o);
    device::fence_registers(a);
    KERNELS_SM90_TRACE_AT(21);
    release(bar.v_empty + last % kStages);
    kv += n;
    ++q_count;
  };

  // Normalise, add the sink, write out and LSE.
  auto epilogue = [&](const detail::Sm90Tile& w) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = w.m0 + row0 + 8 * r;
      float sum = device::quad_sum(row_sum[r]);
      float mx = row_max[r] * scale_log2;  // log2 domain from here on
      const float corr = p.sinks != nullptr ? fold_sink(sum, mx, p.sinks[w.head] * kLog2e) : 1.0f;
      const RowNorm f = normalise_row(sum, mx);
      const float inv = f.inv * corr;
      // Each lane holds 2 columns of every 8-column group of the row; after a transpose within
      // the quad, one whole group (16 bytes) of every 4, stored with one vector store: a quarter
      // of the store instructions, each writing 64 contiguous bytes of a row (4-byte stores
      // across 8 rows kept the load/store unit busy for ~2500 clocks a tile).
      T* dst = static_cast<T*>(p.out) + w.b.o_row0 + static_cast<int64_t>(i) * p.out_row_stride +
               static_cast<int64_t>(w.head) * p.out_head_stride;
#pragma unroll
      for (int g = 0; g < DV / 32; ++g) {
        uint32_t v[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int c = 4 * g + j;
          v[j] = Mma::pack(o[4 * c + 2 * r] * inv, o[4 * c + 2 * r + 1] * inv);
        }
        device::quad_transpose(v);  // every lane of the quad takes part, row in range or not
        if (i < w.b.sq) device::store_global_16(dst + 8 * (4 * g + lane % 4), v);
      }
      if (i >= w.b.sq) continue;
      if (p.lse != nullptr && lane % 4 == 0) {
        const int64_t idx = p.lse_layout == LseLayout::head_total_q
                                ? static_cast<int64_t>(w.head) * p.total_q + w.b.acc_row0 + i
                                : (static_cast<int64_t>(w.b.bi) * p.h + w.head) * p.seqlen_q + i;
        p.lse[idx] = f.lse;
      }
    }
  };

  if constexpr (Tr::kChainTurns) first_turn();
  for (int r = 0; r * static_cast<int>(gridDim.x) < num_tiles; ++r) {
    const int t = detail::sm90_tile_of_round(r);
    if (t >= num_tiles) continue;
    const detail::Sm90Tile w = tile(t);
    if (w.empty) continue;
    KERNELS_SM90_TRACE_AT(10);
#pragma unroll
    for (int i = 0; i < DV / 2; ++i) o[i] = 0.0f;
    row_max[0] = row_max[1] = -INFINITY;
    row_sum[0] = row_sum[1] = 0.0f;
    if (w.n_blocks > 0) mainloop(w);
    epilogue(w);
    KERNELS_SM90_TRACE_AT(22);
  }
  // Chained, the first warpgroup has one "go" more than turns: take it, so no arrival is left
  // on a barrier when the block exits.
  if constexpr (Tr::kChainTurns)
    if (wg == 0) device::named_barrier_sync(kFirstBarrier, kPair);
}

}  // namespace kernels::attention
