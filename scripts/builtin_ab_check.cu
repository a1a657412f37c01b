// Bit-identity check of the built-in forward kernel between two source trees, for refactors that
// must not change one output byte (issue 11). Runs six instances on fixed pseudo-random inputs
// over 64 flag combinations each (varlen, paged, causal, window, softcap, sinks, seqused_k, splits,
// GQA) and writes every output byte (out + LSE, or the split accumulators) to a file. Needs a
// GPU; use -arch=sm_80 on an A100. From the repository root:
//   mkdir -p /tmp/old && git archive OLD_REV kernels | tar -x -C /tmp/old
//   f="-std=c++20 -O3 --use_fast_math -DNDEBUG -arch=sm_90"
//   nvcc $f -I/tmp/old -o /tmp/ab_old scripts/builtin_ab_check.cu
//   nvcc $f -I. -o /tmp/ab_new scripts/builtin_ab_check.cu
//   /tmp/ab_old /tmp/old.bin && /tmp/ab_new /tmp/new.bin && cmp /tmp/old.bin /tmp/new.bin
// (about 1 GB each; running one binary twice and comparing checks determinism).
#include <cuda_runtime.h>
#include <cstdio>
#include <cstring>
#include <vector>
#include "kernels/attention/fwd_kernel.cuh"
using namespace kernels::attention;
using bf16 = __nv_bfloat16;

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads) fwd(const __grid_constant__ FwdParams p) {
  attention_forward<Tr>(p);
}

static uint64_t rng = 88172645463325252ull;
static uint32_t next() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}
static uint16_t rnd16(bool bf) {  // value in [-2, 2)
  float x = ((next() >> 8) / 16777216.0f) * 4.0f - 2.0f;
  if (bf) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)(u >> 16);
  }
  __half h = __float2half(x);
  uint16_t b;
  memcpy(&b, &h, 2);
  return b;
}
template <class T>
static T* up(const std::vector<T>& v) {
  T* d;
  cudaMalloc(&d, v.size() * sizeof(T) + 16);
  cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}
template <class T>
static void down(FILE* f, const T* d, size_t n) {
  std::vector<T> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  fwrite(h.data(), sizeof(T), n, f);
}

template <class Tr>
static void run(FILE* f, int b, int sq, int sk, int h, int hk, bool varlen, bool paged, bool causal,
                int wl, int wr, float softcap, bool sinks, int splits, bool seqused) {
  using T = typename Tr::T;
  const bool bf = std::is_same<T, bf16>::value;
  const int d = Tr::D, dv = Tr::DV, page = 16;
  std::vector<int> sqs(b), sks(b);
  for (int i = 0; i < b; ++i) {
    sqs[i] = varlen ? 1 + next() % sq : sq;
    sks[i] = varlen || seqused ? 1 + next() % sk : sk;
  }
  std::vector<int32_t> cuq(b + 1, 0), cuk(b + 1, 0);
  for (int i = 0; i < b; ++i) {
    cuq[i + 1] = cuq[i] + sqs[i];
    cuk[i + 1] = cuk[i] + sks[i];
  }
  const int total_q = varlen ? cuq[b] : b * sq;
  const int total_k = varlen ? cuk[b] : b * sk;
  const int max_pages = (sk + page - 1) / page, num_pages = b * max_pages;
  std::vector<uint16_t> q((size_t)total_q * h * d), k, v;
  for (auto& x : q) x = rnd16(bf);
  const size_t krows = paged ? (size_t)num_pages * page : (size_t)total_k;
  k.resize(krows * hk * d);
  v.resize(krows * hk * dv);
  for (auto& x : k) x = rnd16(bf);
  for (auto& x : v) x = rnd16(bf);
  std::vector<int32_t> table(num_pages);
  for (int i = 0; i < num_pages; ++i) table[i] = i;
  for (int i = num_pages - 1; i > 0; --i) std::swap(table[i], table[next() % (i + 1)]);
  std::vector<float> sink(h);
  for (auto& x : sink) x = (next() % 1000) / 250.0f - 2.0f;
  FwdParams p{};
  p.abi_version = kParamsAbiVersion;
  p.dtype = bf ? DType::bf16 : DType::fp16;
  p.q = up(q);
  p.k = up(k);
  p.v = up(v);
  const size_t out_n = (size_t)total_q * h * dv;
  void* out;
  cudaMalloc(&out, out_n * 2);
  cudaMemset(out, 0xff, out_n * 2);
  p.out = out;
  p.q_row_stride = (int64_t)h * d;
  p.q_head_stride = d;
  p.q_batch_stride = (int64_t)sq * h * d;
  p.out_row_stride = (int64_t)h * dv;
  p.out_head_stride = dv;
  p.out_batch_stride = (int64_t)sq * h * dv;
  p.k_row_stride = (int64_t)hk * d;
  p.k_head_stride = d;
  p.v_row_stride = (int64_t)hk * dv;
  p.v_head_stride = dv;
  p.k_batch_stride = paged ? (int64_t)page * hk * d : (int64_t)sk * hk * d;
  p.v_batch_stride = paged ? (int64_t)page * hk * dv : (int64_t)sk * hk * dv;
  if (varlen) {
    p.cu_seqlens_q = up(cuq);
    if (!paged) p.cu_seqlens_k = up(cuk);
  }
  if (varlen && paged) p.seqused_k = up(sks);
  if (seqused && !varlen) p.seqused_k = up(sks);
  if (paged) {
    p.page_table = up(table);
    p.page_table_batch_stride = max_pages;
    p.page_size = page;
    p.num_pages = num_pages;
  }
  p.b = b;
  p.h = h;
  p.h_k = hk;
  p.d = d;
  p.dv = dv;
  p.seqlen_q = sq;
  p.seqlen_k = paged ? max_pages * page : sk;
  p.total_q = total_q;
  p.softmax_scale = 0.0883883f;
  p.softcap = softcap;
  p.window_left = wl;
  p.window_right = wr;
  p.is_causal = causal;
  if (sinks) p.sinks = up(sink);
  const size_t lse_n = (size_t)h * total_q;
  float* lse;
  cudaMalloc(&lse, lse_n * 4);
  cudaMemset(lse, 0xff, lse_n * 4);
  p.lse = lse;
  p.lse_layout = varlen ? LseLayout::head_total_q : LseLayout::batch_head_seq;
  p.num_splits = splits;
  float *oa = nullptr, *la = nullptr;
  if (splits > 1) {
    cudaMalloc(&oa, (size_t)splits * h * total_q * dv * 4);
    cudaMemset(oa, 0xff, (size_t)splits * h * total_q * dv * 4);
    cudaMalloc(&la, (size_t)splits * h * total_q * 4);
    cudaMemset(la, 0xff, (size_t)splits * h * total_q * 4);
    p.out_accum = oa;
    p.lse_accum = la;
  }
  cudaFuncSetAttribute(fwd<Tr>, cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::kSmemBytes);
  dim3 grid((sq * (h / hk) + Tr::kBlockM - 1) / Tr::kBlockM, hk, b * splits);
  fwd<Tr><<<grid, Tr::kThreads, Tr::kSmemBytes>>>(p);
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    fprintf(stderr, "launch failed: %s\n", cudaGetErrorString(e));
    exit(1);
  }
  if (splits > 1) {
    down(f, oa, (size_t)splits * h * total_q * dv);
    down(f, la, (size_t)splits * h * total_q);
  } else {
    down(f, (uint16_t*)out, out_n);
    down(f, lse, lse_n);
  }
}

template <class Tr>
static int sweep(FILE* f) {
  int n = 0;
  for (int varlen = 0; varlen < 2; ++varlen)
    for (int paged = 0; paged < 2; ++paged)
      for (int causal = 0; causal < 2; ++causal)
        for (int win = 0; win < 2; ++win)
          for (int flags = 0; flags < 4; ++flags)
            for (int splits : {1, 3}) {
              const int sq = causal ? 150 : (flags & 1 ? 1 : 77);
              run<Tr>(f, 3, sq, 300, 8, 2, varlen, paged, causal, win ? 40 : -1, win ? 7 : -1,
                      flags & 1 ? 30.0f : 0.0f, flags & 2, splits, !varlen && flags == 3);
              ++n;
            }
  return n;
}

int main(int argc, char** argv) {
  FILE* f = fopen(argv[1], "wb");
  int n = 0;
  n += sweep<FwdTraits<128, 128, 4, 128, 64, 2, bf16>>(f);
  n += sweep<FwdTraits<128, 128, 4, 64, 64, 3, __half>>(f);
  n += sweep<FwdTraits<64, 64, 4, 128, 64, 2, __half>>(f);
  n += sweep<FwdTraits<96, 96, 4, 64, 64, 3, bf16>>(f);
  n += sweep<FwdTraits<192, 128, 8, 128, 64, 2, bf16>>(f);
  n += sweep<FwdTraits<256, 256, 4, 64, 32, 2, bf16>>(f);
  fclose(f);
  printf("%d launches written to %s\n", n, argv[1]);
  return 0;
}
