// Test kernels for kernels/common/*.cuh, one warp each, and their host launchers. The Catch2
// cases that compare their results with a CPU reference are in test_primitives.cpp.
#include "device_primitives.h"

#include <cuda_runtime.h>

#include "kernels/common/mma.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/swizzle.cuh"

namespace kernels::test {
namespace {

using device::SwizzledTile;

// A is 16x16 row-major, B holds 16 rows of 16 (rows = n, cols = k, like K), V is 16x16 (rows = k,
// cols = n). Out: C = A * B^T and D = A * V, both 16x16 fp32 row-major.
template <class T>
__global__ void mma_tile_kernel(const T* a, const T* b, const T* v, float* c, float* d) {
  // 64-column swizzled tiles (the kernels' layout); only columns 0..15 are used.
  __shared__ __align__(128) T sa[16 * 64], sb[16 * 64], sv[16 * 64];
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) {
    const int r = i / 16, col = i % 16;
    sa[SwizzledTile<16>::offset(r, col)] = a[i];
    sb[SwizzledTile<16>::offset(r, col)] = b[i];
    sv[SwizzledTile<16>::offset(r, col)] = v[i];
  }
  __syncwarp();
  uint32_t fa[4], fb[4], fv[4];
  device::ldmatrix_x4(fa,
                      SwizzledTile<16>::at(SwizzledTile<16>::lane_base(device::smem_addr(sa),
                                                                       lane % 16, (lane / 16) * 8),
                                           0, 0));
  device::ldmatrix_x4(fb,
                      SwizzledTile<16>::at(SwizzledTile<16>::lane_base(device::smem_addr(sb),
                                                                       (lane / 16) * 8 + lane % 8,
                                                                       ((lane / 8) % 2) * 8),
                                           0, 0));
  device::ldmatrix_x4_trans(
      fv, SwizzledTile<16>::at(SwizzledTile<16>::lane_base(device::smem_addr(sv),
                                                           ((lane / 8) % 2) * 8 + lane % 8,
                                                           (lane / 16) * 8),
                               0, 0));
  float acc[4][4] = {};
  device::MmaOp<T>::run(acc[0], fa, fb[0], fb[1]);  // C columns 0..7
  device::MmaOp<T>::run(acc[1], fa, fb[2], fb[3]);  // C columns 8..15
  device::MmaOp<T>::run(acc[2], fa, fv[0], fv[1]);  // D columns 0..7
  device::MmaOp<T>::run(acc[3], fa, fv[2], fv[3]);  // D columns 8..15
  const int g = lane / 4, t = lane % 4;
  for (int n = 0; n < 2; ++n)
    for (int e = 0; e < 4; ++e) {
      const int row = g + (e / 2) * 8, col = n * 8 + 2 * t + (e % 2);
      c[row * 16 + col] = acc[n][e];
      d[row * 16 + col] = acc[2 + n][e];
    }
}

__global__ void quad_kernel(const float* x, float* mx, float* sum) {
  const int lane = threadIdx.x;
  mx[lane] = device::quad_max(x[lane]);
  sum[lane] = device::quad_sum(x[lane]);
}

__global__ void quad_transpose_kernel(const uint32_t* in, uint32_t* out) {
  const int lane = threadIdx.x;
  uint32_t v[4];
  for (int j = 0; j < 4; ++j) v[j] = in[lane * 4 + j];
  device::quad_transpose(v);
  for (int j = 0; j < 4; ++j) out[lane * 4 + j] = v[j];
}

// Copies 4 chunks of 16 bytes with cp.async; chunks 1 and 3 are marked invalid (zero-filled).
__global__ void cp_async_kernel(const uint4* src, uint4* dst) {
  __shared__ uint4 s[4];
  const int lane = threadIdx.x;
  if (lane < 4)
    device::cp_async_16(device::smem_addr(&s[lane]), lane % 2 ? src : src + lane, lane % 2 == 0);
  device::cp_async_commit();
  device::cp_async_wait<0>();
  __syncwarp();
  if (lane < 4) dst[lane] = s[lane];
}

// Two key blocks of 16 columns through online_softmax_step (MT = 1, NT = 2, OT = 2) for one
// 16-row tile: s1, then acc += 1 (a stand-in for P V), then s2. Out: block 2's P, the running
// max, the quad-reduced sum and acc, all 16x16 (or 16) row-major.
__global__ void online_softmax_kernel(const float* s1, const float* s2, float scale_log2, float* p2,
                                      float* row_max_out, float* row_sum_out, float* acc_out) {
  const int lane = threadIdx.x;
  const int g = lane / 4, t = lane % 4;
  auto at = [&](int n, int e) { return (g + (e / 2) * 8) * 16 + n * 8 + 2 * t + (e % 2); };
  float s[1][2][4], acc[1][2][4];
  float row_max[1][2] = {{-INFINITY, -INFINITY}}, row_sum[1][2] = {{0.0f, 0.0f}};
  for (int n = 0; n < 2; ++n)
    for (int e = 0; e < 4; ++e) {
      s[0][n][e] = s1[at(n, e)];
      acc[0][n][e] = 7.0f;  // must be scaled away: no key seen before block 1
    }
  device::online_softmax_step(s, row_max, row_sum, acc, scale_log2);
  for (int n = 0; n < 2; ++n)
    for (int e = 0; e < 4; ++e) {
      acc[0][n][e] += 1.0f;
      s[0][n][e] = s2[at(n, e)];
    }
  device::online_softmax_step(s, row_max, row_sum, acc, scale_log2);
  for (int n = 0; n < 2; ++n)
    for (int e = 0; e < 4; ++e) {
      p2[at(n, e)] = s[0][n][e];
      acc_out[at(n, e)] = acc[0][n][e];
    }
  for (int r = 0; r < 2; ++r) {
    const float sum = device::quad_sum(row_sum[0][r]);
    if (t == 0) {
      row_max_out[g + 8 * r] = row_max[0][r];
      row_sum_out[g + 8 * r] = sum;
    }
  }
}

std::string status(const char* what) {
  const cudaError_t err = cudaDeviceSynchronize();
  if (err == cudaSuccess) return {};
  return std::string(what) + ": " + cudaGetErrorString(err);
}

template <class T>
std::string mma_tile_impl(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b,
                          const std::vector<uint16_t>& v, std::vector<float>& c,
                          std::vector<float>& d) {
  T *da, *db, *dv;
  float *dc, *dd;
  cudaMalloc(&da, 512);
  cudaMalloc(&db, 512);
  cudaMalloc(&dv, 512);
  cudaMalloc(&dc, 1024);
  cudaMalloc(&dd, 1024);
  cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice);
  cudaMemcpy(db, b.data(), 512, cudaMemcpyHostToDevice);
  cudaMemcpy(dv, v.data(), 512, cudaMemcpyHostToDevice);
  mma_tile_kernel<T><<<1, 32>>>(da, db, dv, dc, dd);
  std::string err = status("mma_tile_kernel");
  c.resize(256);
  d.resize(256);
  cudaMemcpy(c.data(), dc, 1024, cudaMemcpyDeviceToHost);
  cudaMemcpy(d.data(), dd, 1024, cudaMemcpyDeviceToHost);
  for (void* p : {static_cast<void*>(da), static_cast<void*>(db), static_cast<void*>(dv),
                  static_cast<void*>(dc), static_cast<void*>(dd)})
    cudaFree(p);
  return err;
}

}  // namespace

std::string run_mma_tile(bool bf16, const std::vector<uint16_t>& a, const std::vector<uint16_t>& b,
                         const std::vector<uint16_t>& v, std::vector<float>& c,
                         std::vector<float>& d) {
  return bf16 ? mma_tile_impl<__nv_bfloat16>(a, b, v, c, d) : mma_tile_impl<__half>(a, b, v, c, d);
}

std::string run_quad(const std::vector<float>& x, std::vector<float>& mx, std::vector<float>& sum) {
  float *dx, *dm, *ds;
  cudaMalloc(&dx, 128);
  cudaMalloc(&dm, 128);
  cudaMalloc(&ds, 128);
  cudaMemcpy(dx, x.data(), 128, cudaMemcpyHostToDevice);
  quad_kernel<<<1, 32>>>(dx, dm, ds);
  std::string err = status("quad_kernel");
  mx.resize(32);
  sum.resize(32);
  cudaMemcpy(mx.data(), dm, 128, cudaMemcpyDeviceToHost);
  cudaMemcpy(sum.data(), ds, 128, cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dm);
  cudaFree(ds);
  return err;
}

std::string run_quad_transpose(const std::vector<uint32_t>& in, std::vector<uint32_t>& out) {
  uint32_t *di, *dout;
  cudaMalloc(&di, 512);
  cudaMalloc(&dout, 512);
  cudaMemcpy(di, in.data(), 512, cudaMemcpyHostToDevice);
  quad_transpose_kernel<<<1, 32>>>(di, dout);
  std::string err = status("quad_transpose_kernel");
  out.resize(128);
  cudaMemcpy(out.data(), dout, 512, cudaMemcpyDeviceToHost);
  cudaFree(di);
  cudaFree(dout);
  return err;
}

std::string run_online_softmax(const std::vector<float>& s1, const std::vector<float>& s2,
                               float scale_log2, std::vector<float>& p2,
                               std::vector<float>& row_max, std::vector<float>& row_sum,
                               std::vector<float>& acc) {
  float *d1, *d2, *dp, *dm, *ds, *da;
  cudaMalloc(&d1, 1024);
  cudaMalloc(&d2, 1024);
  cudaMalloc(&dp, 1024);
  cudaMalloc(&dm, 64);
  cudaMalloc(&ds, 64);
  cudaMalloc(&da, 1024);
  cudaMemcpy(d1, s1.data(), 1024, cudaMemcpyHostToDevice);
  cudaMemcpy(d2, s2.data(), 1024, cudaMemcpyHostToDevice);
  online_softmax_kernel<<<1, 32>>>(d1, d2, scale_log2, dp, dm, ds, da);
  std::string err = status("online_softmax_kernel");
  p2.resize(256);
  row_max.resize(16);
  row_sum.resize(16);
  acc.resize(256);
  cudaMemcpy(p2.data(), dp, 1024, cudaMemcpyDeviceToHost);
  cudaMemcpy(row_max.data(), dm, 64, cudaMemcpyDeviceToHost);
  cudaMemcpy(row_sum.data(), ds, 64, cudaMemcpyDeviceToHost);
  cudaMemcpy(acc.data(), da, 1024, cudaMemcpyDeviceToHost);
  for (float* p : {d1, d2, dp, dm, ds, da}) cudaFree(p);
  return err;
}

std::string run_cp_async(const std::vector<uint32_t>& src, std::vector<uint32_t>& dst) {
  uint4 *ds, *dd;
  cudaMalloc(&ds, 64);
  cudaMalloc(&dd, 64);
  cudaMemcpy(ds, src.data(), 64, cudaMemcpyHostToDevice);
  cudaMemset(dd, 0xff, 64);
  cp_async_kernel<<<1, 32>>>(ds, dd);
  std::string err = status("cp_async_kernel");
  dst.resize(16);
  cudaMemcpy(dst.data(), dd, 64, cudaMemcpyDeviceToHost);
  cudaFree(ds);
  cudaFree(dd);
  return err;
}

}  // namespace kernels::test
