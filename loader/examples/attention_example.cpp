// A server's use of kernels_loader, end to end: initialise once at start-up (this loads and
// checks the built-in kernels, so a broken install fails here), report which kernels serve the
// GPU, size and allocate the workspace once, then call attention on the server's stream.
//
// Exit status: 0 the output matches a CPU reference; 14 (KL_ERR_NO_DEVICE) no GPU or no CUDA
// driver on this machine (reported on stderr, not an error on CI); 1 anything else.
//
// Build: link libkernels_loader.so and the CUDA runtime (only for cudaMalloc/cudaMemcpy here; a
// server already has its own allocator and streams).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels_loader.h"

namespace {

// bf16 <-> float on the host (round to nearest even).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A (rows, heads, dim) tensor on `device`, contiguous.
kl_tensor tensor3(void* data, int dtype, int64_t rows, int64_t heads, int64_t dim, int device) {
  kl_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = 3;
  t.shape[0] = rows, t.shape[1] = heads, t.shape[2] = dim;
  t.stride[0] = heads * dim, t.stride[1] = dim, t.stride[2] = 1;
  t.device = device;
  return t;
}
kl_tensor tensor1(void* data, int dtype, int64_t n, int device) {
  kl_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = 1;
  t.shape[0] = n;
  t.stride[0] = 1;
  t.device = device;
  return t;
}

#define CHECK_CUDA(call)                                                      \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) {                                                  \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_)); \
      return 1;                                                               \
    }                                                                         \
  } while (0)

}  // namespace

int main() {
  // 1. Start-up: no GPU or no driver is reported here, once.
  if (int rc = kernels_loader_init(nullptr); rc != KL_OK) {
    std::fprintf(stderr, "attention_example: %s\n", kernels_loader_last_error());
    if (rc == KL_ERR_NO_DEVICE) std::fprintf(stderr, "attention_example: no GPU, nothing to run\n");
    return rc == KL_ERR_NO_DEVICE ? KL_ERR_NO_DEVICE : 1;
  }
  const int device = 0;
  CHECK_CUDA(cudaSetDevice(device));
  kl_source_info source;
  kernels_loader_source_info_init(&source);
  if (kernels_loader_device_source(device, 3, &source) != KL_OK) {
    std::fprintf(stderr, "attention_example: %s\n", kernels_loader_last_error());
    return 1;
  }
  std::printf("cuda:%d ver=3 served by %s%s%s\n", device,
              source.source == KL_SOURCE_BUNDLE ? "bundle " : "built-in kernels",
              source.source == KL_SOURCE_BUNDLE ? source.repo_id : "",
              source.source == KL_SOURCE_BUNDLE
                  ? ""
                  : (std::string(" (") + source.reason + ")").c_str());

  // 2. A ragged batch: two sequences of 3 and 5 tokens, GQA 4 query heads over 2 kv heads.
  const int h = 4, h_k = 2, d = 64;
  const std::vector<int32_t> cu = {0, 3, 8};
  const int total = cu.back(), max_len = 5;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal;
  std::vector<uint16_t> q(total * h * d), k(total * h_k * d), v(total * h_k * d);
  for (auto* x : {&q, &k, &v})
    for (auto& e : *x) e = to_bf16(normal(rng));

  void *dq, *dk, *dv, *dout, *dcu;
  CHECK_CUDA(cudaMalloc(&dq, q.size() * 2));
  CHECK_CUDA(cudaMalloc(&dk, k.size() * 2));
  CHECK_CUDA(cudaMalloc(&dv, v.size() * 2));
  CHECK_CUDA(cudaMalloc(&dout, q.size() * 2));
  CHECK_CUDA(cudaMalloc(&dcu, cu.size() * 4));
  CHECK_CUDA(cudaMemcpy(dq, q.data(), q.size() * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dk, k.data(), k.size() * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dv, v.data(), v.size() * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(dcu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));

  // 3. The call, as FA3's flash_attn_varlen_func(q, k, v, cu_q, cu_k, 5, 5, causal=True).
  kl_varlen_args a;
  kernels_loader_varlen_args_init(&a);
  a.q = tensor3(dq, KL_DTYPE_BFLOAT16, total, h, d, device);
  a.k = tensor3(dk, KL_DTYPE_BFLOAT16, total, h_k, d, device);
  a.v = tensor3(dv, KL_DTYPE_BFLOAT16, total, h_k, d, device);
  a.out = tensor3(dout, KL_DTYPE_BFLOAT16, total, h, d, device);
  a.cu_seqlens_q = a.cu_seqlens_k = tensor1(dcu, KL_DTYPE_INT32, 3, device);
  a.max_seqlen_q = a.max_seqlen_k = max_len;
  a.causal = 1;
  size_t ws_bytes = 0;
  if (kernels_loader_varlen_workspace_size(&a, stream, &ws_bytes) != KL_OK) {
    std::fprintf(stderr, "attention_example: %s\n", kernels_loader_last_error());
    return 1;
  }
  void* ws = nullptr;
  if (ws_bytes > 0) CHECK_CUDA(cudaMalloc(&ws, ws_bytes));  // once, reused by every call
  a.workspace = ws;
  a.workspace_bytes = ws_bytes;
  if (kernels_loader_flash_attn_varlen_func(&a, stream) != KL_OK) {
    std::fprintf(stderr, "attention_example: %s\n", kernels_loader_last_error());
    return 1;
  }
  std::vector<uint16_t> out(q.size());
  CHECK_CUDA(cudaMemcpyAsync(out.data(), dout, out.size() * 2, cudaMemcpyDeviceToHost, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));

  // 4. A CPU reference (fp64), causal bottom-right aligned; bf16 tolerance 2e-2.
  double max_err = 0;
  const double scale = 1.0 / std::sqrt(double(d));
  for (int s = 0; s + 1 < static_cast<int>(cu.size()); ++s) {
    const int len = cu[s + 1] - cu[s];
    for (int i = 0; i < len; ++i)
      for (int hh = 0; hh < h; ++hh) {
        const int kh = hh / (h / h_k);
        std::vector<double> p(i + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int x = 0; x < d; ++x)
            dot += from_bf16(q[((cu[s] + i) * h + hh) * d + x]) *
                   from_bf16(k[((cu[s] + j) * h_k + kh) * d + x]);
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        for (auto& e : p) sum += (e = std::exp(e - mx));
        for (int x = 0; x < d; ++x) {
          double acc = 0;
          for (int j = 0; j <= i; ++j) acc += p[j] * from_bf16(v[((cu[s] + j) * h_k + kh) * d + x]);
          const double got = from_bf16(out[((cu[s] + i) * h + hh) * d + x]);
          max_err = std::max(max_err, std::abs(got - acc / sum));
        }
      }
  }
  std::printf("max |out - reference| = %.3g (tolerance 2e-2)\n", max_err);
  cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dout), cudaFree(dcu), cudaFree(ws);
  cudaStreamDestroy(stream);
  return max_err <= 2e-2 ? 0 : 1;
}
