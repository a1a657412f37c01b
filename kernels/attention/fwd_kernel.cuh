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
//
// attention_forward reads as its steps: which rows and key blocks (block_range.cuh), the loads
// (kv_pipeline.cuh), per key block S = Q K^T (common/warp_gemm.cuh), softcap and mask
// (score_mask.cuh), the online-softmax step (common/softmax.cuh) and O += P V, then the epilogue
// (fwd_epilogue.cuh).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/fwd_epilogue.cuh"
#include "kernels/attention/kv_pipeline.cuh"
#include "kernels/attention/params.h"
#include "kernels/attention/score_mask.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/swizzle.cuh"
#include "kernels/common/warp_gemm.cuh"

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

template <class Tr>
__device__ __forceinline__ void attention_forward(const FwdParams& p) {
  using T = typename Tr::T;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kBlockN = Tr::kBlockN;
  constexpr int kMT = Tr::kMT;
  constexpr int kNT = Tr::kNT;
  constexpr int kOT = Tr::kOT;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + Tr::kSmemQ;
  T* sV = sK + Tr::kStages * Tr::kSmemK;
  int2* sPage = reinterpret_cast<int2*>(sV + Tr::kStages * Tr::kSmemV);

  // This block's rows: packed rows [m0, m0 + kBlockM) of (batch bi, kv head hk, split).
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

  // Key-block range: bottom-right aligned causal / window bounds of the block's positions.
  const detail::KeyBounds kb(p, b);
  const detail::QueryRows rows = detail::query_rows(m0, kBlockM, group, b.sq);
  const detail::KeyBlockRange range = detail::key_block_range(kb, b.sk, rows.i_min, rows.i_max,
                                                              kBlockN, split, num_splits);

  // Loads: Q, then the first kStages - 1 K/V blocks in flight.
  load_q_tile<Tr>(sQ, p, b, hk, m0, group);
  KvPipeline<Tr> kv(p, sK, sV, sPage, b, hk, range);
  kv.prologue();

  float acc_o[kMT][kOT][4];
  device::fill_fragments(acc_o, 0.0f);
  float row_max[kMT][2];  // running max of the raw (capped, unscaled) scores
  float row_sum[kMT][2];  // this lane's partial sum (quad-reduced at the end)
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      row_max[mt][r] = -INFINITY;
      row_sum[mt][r] = 0.0f;
    }
  const ScoreScale scale(p);

  const int warp_row0 = warp * Tr::kRowsPerWarp;
  // Warps whose rows are all padding (decode: a few packed rows) skip the math, not the barriers.
  const bool warp_active = m0 + warp_row0 < b.sq * group;
  using QTile = device::SwizzledTile<kBlockM>;
  using KVTile = device::SwizzledTile<kBlockN>;
  // Lane bases for the ldmatrix reads (see SwizzledTile::lane_base and warp_gemm.cuh).
  const uint32_t q_lane = QTile::lane_base(device::smem_addr(sQ), warp_row0 + lane % 16,
                                           (lane / 16) * 8);
  const uint32_t k_lane = KVTile::lane_base(device::smem_addr(sK), (lane / 16) * 8 + lane % 8,
                                            ((lane / 8) % 2) * 8);
  const uint32_t v_lane = KVTile::lane_base(device::smem_addr(sV), ((lane / 8) % 2) * 8 + lane % 8,
                                            (lane / 16) * 8);
  for (int it = 0; kv.has_block(it); ++it) {
    const int nb = kv.key_block(it);
    const int slot = it % Tr::kStages;
    kv.advance(it);
    const uint32_t k_slot = k_lane + slot * (Tr::kSmemK * 2);
    const uint32_t v_slot = v_lane + slot * (Tr::kSmemV * 2);

    float s[kMT][kNT][4];
    if (warp_active) {
      // Warp GEMM: S = Q K^T.
      device::fill_fragments(s, 0.0f);
      device::warp_gemm_abt<T, QTile, KVTile, Tr::D>(s, q_lane, k_slot);
      // Scores: softcap, then the mask where the block needs one.
      if (scale.softcap_on) apply_softcap(s, scale.cap_in);
      const int n0 = nb * kBlockN;
      if (detail::block_needs_mask(kb, b.sk, n0, kBlockN, rows.i_min, rows.i_max))
        mask_scores(s, kb, b.sk, n0, m0 + warp_row0, group, lane);
      // Online softmax step: S -> P, rescale the running sums and O.
      device::online_softmax_step(s, row_max, row_sum, acc_o, scale.scale_log2);
      // Warp GEMM: O += P V.
      device::warp_gemm_rab<T, KVTile>(acc_o, s, v_slot);
    }
  }
  device::cp_async_wait<0>();
  if (!warp_active) return;  // no barrier follows

  // Epilogue: normalise, add the sink (unsplit only; the combine adds it once), write out + LSE.
  write_rows<T>(p, b, acc_o, row_max, row_sum, scale.scale_log2, m0 + warp_row0, group, hk, split,
                num_splits, lane);
}

}  // namespace kernels::attention
