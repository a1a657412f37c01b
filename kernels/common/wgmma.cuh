// Warpgroup matrix multiply (sm_90a): shared-memory matrix descriptors and the fences around
// wgmma.mma_async. The instructions themselves are in wgmma_ops.cuh (generated).
//
// Tiles are laid out as the TMA engine writes them with 128-byte swizzle: a tile of R rows and
// C 16-bit columns is C/64 column chunks, each R rows of 128 bytes, and every 8 rows (1024 bytes)
// form one swizzle atom. Chunks must start 1024-byte aligned (the descriptor's base offset is 0).
//
// K-major operand (Q or K for S = Q K^T: the reduction dim is contiguous): the stride between
// 8-row groups (SBO) is 1024 bytes, the leading offset is unused; the k16 step kk of chunk c
// starts at c*R*128 + (kk%4)*32 bytes.
// MN-major operand (V for O = P V: rows are keys, the reduction dim, and the output columns are
// contiguous): SBO = 1024 bytes between 8-key groups, LBO = R*128 bytes between 64-column chunks;
// the k16 step kk starts at kk*2048 bytes.
#pragma once

#include <cstdint>

#include "kernels/common/tma.cuh"
#include "kernels/common/wgmma_ops.cuh"

namespace kernels::device {

__device__ __forceinline__ uint64_t smem_descriptor(uint32_t smem_addr, uint32_t lbo_bytes,
                                                    uint32_t sbo_bytes) {
  uint64_t desc = 0;
  desc |= static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4);
  desc |= static_cast<uint64_t>((lbo_bytes & 0x3FFFF) >> 4) << 16;
  desc |= static_cast<uint64_t>((sbo_bytes & 0x3FFFF) >> 4) << 32;
  desc |= 1ull << 62;  // 128-byte swizzle
  return desc;
}

// The descriptor of the same layout `bytes` further on. The start address is the low field, in
// 16-byte units, and shared memory ends below 2^18 bytes, so the sum never carries into the next
// field: one add per k step on a descriptor built once per tile, instead of building each.
__device__ __forceinline__ uint64_t desc_advance(uint64_t desc, uint32_t bytes) {
  return desc + (bytes >> 4);
}

// Descriptor of k16 step `kk` of a K-major tile with `Rows` rows starting at `tile`.
template <int Rows>
__device__ __forceinline__ uint64_t k_major_desc(uint32_t tile, int kk) {
  return desc_advance(smem_descriptor(tile, 16, 1024), (kk / 4) * Rows * 128 + (kk % 4) * 32);
}

// Descriptor of k16 step `kk` of an MN-major tile with `Rows` (reduction) rows.
template <int Rows>
__device__ __forceinline__ uint64_t mn_major_desc(uint32_t tile, int kk) {
  return desc_advance(smem_descriptor(tile, Rows * 128, 1024), kk * 2048);
}

// Orders this warpgroup's register writes (accumulators, A fragments) before the next wgmma.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator reads or writes across an asynchronous wgmma.
// For the accumulators after a wgmma_wait, and for register A operands: their registers must not
// be reused before the wait, since the tensor cores read them asynchronously.
template <int N>
__device__ __forceinline__ void fence_registers(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_registers(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

}  // namespace kernels::device
