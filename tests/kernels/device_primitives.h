// Host launchers for the device-primitive test kernels (device_primitives.cu). Each returns ""
// or what failed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kernels::test {

// mma.sync m16n8k16 through ldmatrix from swizzled tiles: a (16x16), b (16 rows n x 16 k) and
// v (16 rows k x 16 n) as 16-bit values; c = a * b^T, d = a * v, fp32 16x16 row-major.
std::string run_mma_tile(bool bf16, const std::vector<uint16_t>& a, const std::vector<uint16_t>& b,
                         const std::vector<uint16_t>& v, std::vector<float>& c,
                         std::vector<float>& d);

// quad_max / quad_sum of 32 lane values.
std::string run_quad(const std::vector<float>& x, std::vector<float>& mx, std::vector<float>& sum);

// quad_transpose of 4 words per lane (in[lane * 4 + j]), out in the same layout.
std::string run_quad_transpose(const std::vector<uint32_t>& in, std::vector<uint32_t>& out);

// online_softmax_step over two 16x16 score blocks s1, s2 (row-major) of one 16-row tile, with
// acc += 1 between them: block 2's probabilities p2, the running max and the quad-reduced sum per
// row, and acc (16x16).
std::string run_online_softmax(const std::vector<float>& s1, const std::vector<float>& s2,
                               float scale_log2, std::vector<float>& p2,
                               std::vector<float>& row_max, std::vector<float>& row_sum,
                               std::vector<float>& acc);

// cp.async of four 16-byte chunks (16 words) with chunks 1 and 3 invalid (zero-filled).
std::string run_cp_async(const std::vector<uint32_t>& src, std::vector<uint32_t>& dst);

}  // namespace kernels::test
