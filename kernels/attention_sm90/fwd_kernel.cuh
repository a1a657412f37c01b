// Attention forward for Hopper (sm_90a): TMA loads, wgmma, warp specialization.
//
// One block computes kBlockM query rows of one (batch, query head). Warpgroup 0 is the producer:
// after giving most of its registers away (setmaxnreg), one of its threads issues every TMA copy
// (Q once, then K and V tiles into a ring of kStages slots). Warpgroups 1..kConsumers each own
// 64 query rows: S = Q K^T (wgmma, both operands in shared memory), mask, online softmax in
// registers, then O += P V with P taken straight from the S accumulators (register-A wgmma).
// Slots are handed over with mbarriers: k_full/v_full complete when the copy's bytes land,
// k_empty/v_empty when every consumer warp has finished reading the slot.
//
// Two overlaps keep the tensor cores busy while the exponentials run (FA3's schedule): within a
// warpgroup, S of block j and P V of block j-1 are issued together and the softmax of S_j runs
// while P V computes; between warpgroups, named barriers make them take turns issuing GEMMs
// ("ping-pong"), so one warpgroup's softmax overlaps the others' GEMMs.
//
// Keys are walked from the last block down, so blocks that need masks come first. Semantics are
// the built-in kernel's (params.h); this kernel covers the subset launch_plan.h's
// plan_forward_sm90 accepts: q/k/v contiguous in the head dim with head dim D = DV in
// {64, 128, 256}, no paging, no seqused_k, no splits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "kernels/attention/block_range.cuh"
#include "kernels/attention/params.h"
#include "kernels/common/mma.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/tma.cuh"
#include "kernels/common/wgmma.cuh"

namespace kernels::attention {

template <int D_, int BlockN_, int Stages_, class T_, int Consumers_ = 2, bool PingPong_ = true>
struct Sm90FwdTraits {
  using T = T_;
  static constexpr int D = D_;  // q/k and v head dim
  static constexpr int kConsumers = Consumers_;  // warpgroups of 64 query rows
  static constexpr bool kPingPong = PingPong_;
  static constexpr int kBlockM = 64 * kConsumers;
  static constexpr int kBlockN = BlockN_;
  static constexpr int kStages = Stages_;
  static constexpr int kThreads = 128 * (kConsumers + 1);
  static constexpr int kChunks = D / 64;  // 128-byte column chunks of a row
  static constexpr int kQBytes = kBlockM * D * 2;
  static constexpr int kKVBytes = kBlockN * D * 2;  // one K (or V) slot
  static constexpr int kBarriers = 1 + 4 * kStages;
  // 1024 bytes of slack: the dynamic shared memory base is only 16-byte aligned, and 128-byte
  // swizzled tiles must start on 1024 bytes.
  static constexpr int kSmemBytes = kQBytes + 2 * kStages * kKVBytes + kBarriers * 8 + 1024;
  // Registers after reallocation: 24 for the producer, the rest split over the consumers
  // (65536 per SM, one block per SM).
  static constexpr int kProducerRegs = kConsumers == 2 ? 24 : 32;
  static constexpr int kConsumerRegs = kConsumers == 2 ? 240 : 160;

  static_assert(D % 64 == 0 && D <= 256, "whole 128-byte chunks; wgmma n <= 256");
  static_assert(kConsumers == 2 || kConsumers == 3, "register split for 2 or 3 consumers");
  static_assert(kBlockN % 16 == 0 && kBlockN <= 256, "wgmma n and k multiples");
  static_assert((kBlockN * 128) % 1024 == 0, "each K/V chunk starts on a swizzle atom");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory budget of one sm_90 block");
  static_assert(128 * kProducerRegs + 128 * kConsumers * kConsumerRegs <= 65536,
                "register file of one SM");
};

namespace detail {

// Barrier slots in shared memory, named for what their completion means.
struct Sm90Barriers {
  uint64_t* q_full;
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
  return {varlen_q ? p.cu_seqlens_q[bi] : 0, varlen_q ? 0 : bi,
          varlen_k ? p.cu_seqlens_k[bi] : 0, varlen_k ? 0 : bi};
}

}  // namespace detail

template <class Tr>
__device__ __forceinline__ void attention_forward_sm90(const TmaFwdParams& tp) {
  using T = typename Tr::T;
  using Mma = device::MmaOp<T>;
  constexpr int D = Tr::D;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kBlockN = Tr::kBlockN;
  constexpr int kStages = Tr::kStages;
  constexpr float kLog2e = 1.4426950408889634f;
  const FwdParams& p = tp.fwd;

  extern __shared__ __align__(1024) unsigned char sm90_smem[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(sm90_smem) + 1023) & ~static_cast<uintptr_t>(1023));
  unsigned char* sQ = smem;
  unsigned char* sK = sQ + Tr::kQBytes;
  unsigned char* sV = sK + kStages * Tr::kKVBytes;
  uint64_t* bar_base = reinterpret_cast<uint64_t*>(sV + kStages * Tr::kKVBytes);
  const detail::Sm90Barriers bar{bar_base, bar_base + 1, bar_base + 1 + kStages,
                                 bar_base + 1 + 2 * kStages, bar_base + 1 + 3 * kStages};

  const int m_block = gridDim.x - 1 - blockIdx.x;  // heaviest (causal) blocks first
  const int head = blockIdx.y;
  const int bi = blockIdx.z;
  const int hk = head / (p.h / p.h_k);
  const detail::BatchInfo b = detail::batch_info(p, bi);
  const int m0 = m_block * kBlockM;
  if (m0 >= b.sq) return;  // the whole block leaves before any barrier exists

  const detail::KeyBounds kb(p, b);
  const int i_min = m0;
  const int i_max = min(m0 + kBlockM - 1, b.sq - 1);
  const detail::KeyBlockRange range = detail::key_block_range(kb, b.sk, i_min, i_max, kBlockN, 0, 1);
  const int n_blocks = range.nb_max - range.nb_min;

  constexpr int kConsumerWarps = 4 * Tr::kConsumers;
  if (threadIdx.x == 0) {
    device::mbarrier_init(bar.q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      device::mbarrier_init(bar.k_full + s, 1);
      device::mbarrier_init(bar.v_full + s, 1);
      device::mbarrier_init(bar.k_empty + s, kConsumerWarps);
      device::mbarrier_init(bar.v_empty + s, kConsumerWarps);
    }
    device::fence_barrier_init();
  }
  __syncthreads();

  const int warpgroup = threadIdx.x / 128;
  if (warpgroup == 0) {
    // Producer: one thread issues every copy; the others only give their registers away.
    device::setmaxnreg_dec<Tr::kProducerRegs>();
    if (threadIdx.x == 0) {
      device::prefetch_tma_descriptor(&tp.q);
      device::prefetch_tma_descriptor(&tp.k);
      device::prefetch_tma_descriptor(&tp.v);
      const detail::TmaRows rows = detail::tma_rows(p, bi);
      device::mbarrier_arrive_expect_tx(bar.q_full, Tr::kQBytes);
#pragma unroll
      for (int c = 0; c < Tr::kChunks; ++c)
        device::tma_load_4d(sQ + c * kBlockM * 128, &tp.q, bar.q_full, c * 64, rows.q_row + m0,
                            head, rows.q_batch);
      for (int it = 0; it < n_blocks; ++it) {
        const int nb = range.nb_max - 1 - it;
        const int slot = it % kStages;
        const uint32_t phase = (it / kStages) & 1;
        const int key_row = rows.k_row + nb * kBlockN;
        device::mbarrier_wait(bar.k_empty + slot, phase ^ 1);
        device::mbarrier_arrive_expect_tx(bar.k_full + slot, Tr::kKVBytes);
#pragma unroll
        for (int c = 0; c < Tr::kChunks; ++c)
          device::tma_load_4d(sK + slot * Tr::kKVBytes + c * kBlockN * 128, &tp.k,
                              bar.k_full + slot, c * 64, key_row, hk, rows.k_batch);
        device::mbarrier_wait(bar.v_empty + slot, phase ^ 1);
        device::mbarrier_arrive_expect_tx(bar.v_full + slot, Tr::kKVBytes);
#pragma unroll
        for (int c = 0; c < Tr::kChunks; ++c)
          device::tma_load_4d(sV + slot * Tr::kKVBytes + c * kBlockN * 128, &tp.v,
                              bar.v_full + slot, c * 64, key_row, hk, rows.k_batch);
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

  // Softcap: s = softcap * tanh(scale * qk / softcap); the softcap factor joins the exp2 scale.
  const bool softcap_on = p.softcap > 0.0f;
  const float cap_in = softcap_on ? p.softmax_scale / p.softcap : 1.0f;
  const float scale_log2 = (softcap_on ? p.softcap : p.softmax_scale) * kLog2e;

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};  // raw (capped, unscaled) scores
  float row_sum[2] = {0.0f, 0.0f};            // this lane's partial sums
  float s[kBlockN / 2];                       // S of the newest key block, then its P
  uint32_t a[kBlockN / 16][4];                // P of the previous block as the A operand

  const uint32_t q_tile = device::smem_u32(sQ) + wg * 64 * 128;
  auto k_tile = [&](int it) { return device::smem_u32(sK + (it % kStages) * Tr::kKVBytes); };
  auto v_tile = [&](int it) { return device::smem_u32(sV + (it % kStages) * Tr::kKVBytes); };
  auto phase = [&](int it) { return static_cast<uint32_t>((it / kStages) & 1); };
  auto release = [&](uint64_t* empty, int it) {
    __syncwarp();
    if (warp_leader) device::mbarrier_arrive(empty + it % kStages);
  };

  // Ping-pong: the consumer warpgroups take turns issuing their GEMMs (warpgroup w waits on
  // barrier kFirstBarrier + w, then lets the next one go), so one's softmax runs while the
  // other's GEMMs keep the tensor cores busy.
  constexpr int kFirstBarrier = 1;
  constexpr int kPair = 256;  // one warpgroup syncs, the previous one arrives
  auto gemm_turn_begin = [&] {
    if constexpr (Tr::kPingPong) device::named_barrier_sync(kFirstBarrier + wg, kPair);
  };
  auto gemm_turn_end = [&] {
    if constexpr (Tr::kPingPong)
      device::named_barrier_arrive(kFirstBarrier + (wg + 1) % Tr::kConsumers, kPair);
  };

  auto issue_qk = [&](int it) {
    device::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      device::Wgmma<T, kBlockN>::ss(s, device::k_major_desc<kBlockM>(q_tile, kk),
                                    device::k_major_desc<kBlockN>(k_tile(it), kk), kk > 0);
    device::wgmma_commit();
  };
  auto issue_pv = [&](int it) {
    device::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
      device::Wgmma<T, D>::template rs<1>(o, a[kk], device::mn_major_desc<kBlockN>(v_tile(it), kk),
                                          1);
    device::wgmma_commit();
  };

  // S of key block `it` -> P (in s), running max and sums updated; returns the factor the
  // output rows must be scaled by.
  auto softmax_step = [&](int it, float (&correction)[2]) {
    if (softcap_on) {
#pragma unroll
      for (int i = 0; i < kBlockN / 2; ++i) s[i] = tanhf(s[i] * cap_in);
    }
    // Accumulator element i of this thread: row row0 + 8 * ((i / 2) % 2), column
    // 8 * (i / 4) + 2 * (lane % 4) + i % 2.
    const int n0 = (range.nb_max - 1 - it) * kBlockN;
    if (detail::block_needs_mask(kb, b.sk, n0, kBlockN, i_min, i_max)) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int i = m0 + row0 + 8 * r;
        const int hi_j = kb.hi(i, b.sk);
        const int lo_j = kb.lo(i);
#pragma unroll
        for (int c = 0; c < kBlockN / 8; ++c)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = n0 + 8 * c + 2 * (lane % 4) + e;
            if (j > hi_j || j < lo_j) s[4 * c + 2 * r + e] = -INFINITY;
          }
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int c = 0; c < kBlockN / 8; ++c)
        mx = fmaxf(mx, fmaxf(s[4 * c + 2 * r], s[4 * c + 2 * r + 1]));
      mx = device::quad_max(mx);
      // A row with no visible key so far keeps max -inf; use 0 so exp2 gives 0, not NaN.
      const float base = mx == -INFINITY ? 0.0f : mx * scale_log2;
      correction[r] = device::fast_exp2(row_max[r] * scale_log2 - base);
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
  };
  auto rescale_o = [&](const float (&correction)[2]) {
#pragma unroll
    for (int c = 0; c < D / 8; ++c)
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

  device::mbarrier_wait(bar.q_full, 0);
  if (n_blocks > 0) {
    // The last warpgroup lets the first one issue first.
    if constexpr (Tr::kPingPong)
      if (wg == Tr::kConsumers - 1) device::named_barrier_arrive(kFirstBarrier, kPair);
    // Block 0: S only.
    device::mbarrier_wait(bar.k_full, 0);
    gemm_turn_begin();
    issue_qk(0);
    gemm_turn_end();
    device::wgmma_wait<0>();
    device::fence_registers(s);
    release(bar.k_empty, 0);
    float correction[2];
    softmax_step(0, correction);
    pack_p();
    // Block it: S_it = Q K_it^T and O += P_{it-1} V_{it-1} in flight together; the softmax of
    // S_it runs while P V still computes, and O is rescaled once P V is done.
    for (int it = 1; it < n_blocks; ++it) {
      device::mbarrier_wait(bar.k_full + it % kStages, phase(it));
      device::mbarrier_wait(bar.v_full + (it - 1) % kStages, phase(it - 1));
      gemm_turn_begin();
      issue_qk(it);
      issue_pv(it - 1);
      gemm_turn_end();
      device::wgmma_wait<1>();
      device::fence_registers(s);
      release(bar.k_empty, it);
      softmax_step(it, correction);
      device::wgmma_wait<0>();
      device::fence_registers(o);
      device::fence_registers(a);
      release(bar.v_empty, it - 1);
      rescale_o(correction);
      pack_p();
    }
    device::mbarrier_wait(bar.v_full + (n_blocks - 1) % kStages, phase(n_blocks - 1));
    gemm_turn_begin();
    issue_pv(n_blocks - 1);
    // Every turn is matched: the last warpgroup's first "go" stands for its final one.
    if (wg != Tr::kConsumers - 1) gemm_turn_end();
    device::wgmma_wait<0>();
    device::fence_registers(o);
    device::fence_registers(a);
    release(bar.v_empty, n_blocks - 1);
  }

  // Epilogue: normalise, add the sink, write out and LSE.
  const float kLn2 = 0.6931471805599453f;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = m0 + row0 + 8 * r;
    float sum = device::quad_sum(row_sum[r]);
    float mx = row_max[r] * scale_log2;  // log2 domain from here on
    float corr = 1.0f;
    if (p.sinks != nullptr) {
      const float sink = p.sinks[head] * kLog2e;
      const float new_max = fmaxf(mx, sink);
      corr = mx == -INFINITY ? 0.0f : device::fast_exp2(mx - new_max);
      sum = sum * corr + device::fast_exp2(sink - new_max);
      mx = new_max;
    }
    const bool empty = !(sum > 0.0f);  // also catches NaN
    const float inv = empty ? 0.0f : corr / sum;
    const float lse = empty ? -INFINITY : (mx + log2f(sum)) * kLn2;
    if (i >= b.sq) continue;
    T* dst = static_cast<T*>(p.out) + b.o_row0 + static_cast<int64_t>(i) * p.out_row_stride +
             static_cast<int64_t>(head) * p.out_head_stride;
#pragma unroll
    for (int c = 0; c < D / 8; ++c) {
      const int col = 8 * c + 2 * (lane % 4);
      *reinterpret_cast<uint32_t*>(dst + col) =
          Mma::pack(o[4 * c + 2 * r] * inv, o[4 * c + 2 * r + 1] * inv);
    }
    if (p.lse != nullptr && lane % 4 == 0) {
      const int64_t idx = p.lse_layout == LseLayout::head_total_q
                              ? static_cast<int64_t>(head) * p.total_q + b.acc_row0 + i
                              : (static_cast<int64_t>(bi) * p.h + head) * p.seqlen_q + i;
      p.lse[idx] = lse;
    }
  }
}

}  // namespace kernels::attention
