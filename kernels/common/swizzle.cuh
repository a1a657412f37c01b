// Shared-memory tile layout for row-major b16 tiles read by ldmatrix.
//
// A tile of `Rows` rows is stored as column blocks of 64 elements (128 bytes); inside a block,
// 16-byte chunk c of row r lives at chunk c ^ (r & 7). Eight consecutive rows of one logical
// chunk, which is what one ldmatrix 8x8 matrix reads, then hit eight different bank groups.
#pragma once

#include <cstdint>

namespace kernels::device {

template <int Rows>
struct SwizzledTile {
  // ldmatrix addressing without per-access index math. A lane reads (rt + rc, ct + cc) where
  // rt, ct depend on the lane (ct is 0 or 8) and rc (a multiple of 8), cc (a multiple of 16) are
  // compile-time constants. Then the swizzled chunk is ((cc/8)&7) ^ x with x = ct/8 ^ (rt&7), and
  //   address = (lane_base(rt, ct) ^ ((cc/8)&7)*16) + (rc + (cc/64)*Rows)*128,
  // one xor and an immediate offset per access.
  static __device__ __forceinline__ uint32_t lane_base(uint32_t tile, int rt, int ct) {
    return tile + rt * 128 + ((((ct >> 3) ^ rt) & 7) << 4);
  }
  // rc, cc are compile-time constants after unrolling.
  static __device__ __forceinline__ uint32_t at(uint32_t lane_base, int rc, int cc) {
    return (lane_base ^ (((cc >> 3) & 7) << 4)) + (rc + (cc >> 6) * Rows) * 128;
  }

  // Element offset of (row, col); col is a multiple of 8 for chunk accesses.
  static __device__ __forceinline__ int offset(int row, int col) {
    return ((col >> 6) * Rows + row) * 64 + ((((col >> 3) & 7) ^ (row & 7)) << 3) + (col & 7);
  }
};

}  // namespace kernels::device
