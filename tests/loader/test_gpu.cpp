// End to end on a real GPU through the real driver: the built-in kernels, a real bundle in a real
// cache, several threads and several GPUs, each checked against an fp64 CPU reference on fresh
// random inputs with poisoned outputs. Skipped visibly without a device. The example program is
// run here too (on CI it must report "no GPU" with its documented exit status).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "kernels/loader/loader.h"
#include "loader/cache_builder.h"
#include "support/skip.h"

#ifdef KERNELS_TESTS_HAVE_CUDART
#include <cuda_runtime.h>
#endif

using namespace kernels;
using namespace kernels::loader;
using namespace kernels::loader::testing;

TEST_CASE("the example program runs, or reports no GPU with exit status 14", "[loader][example]") {
#ifndef KERNELS_LOADER_EXAMPLE
  KERNELS_SKIP("the example is built only with the CUDA toolkit (nvcc not found)");
#else
  // The build tree's path, unless the binaries were moved (the GPU machine runs copies).
  const char* moved = std::getenv("KERNELS_LOADER_EXAMPLE");
  const std::string example = moved ? moved : KERNELS_LOADER_EXAMPLE;
  const std::string log = (std::filesystem::temp_directory_path() /
                           ("kernels-example-" + std::to_string(::getpid()) + ".err"))
                              .string();
  const int status = std::system((example + " > /dev/null 2> " + log).c_str());
  REQUIRE(WIFEXITED(status));
  const int rc = WEXITSTATUS(status);
  std::ifstream err(log);
  const std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  std::filesystem::remove(log);
  INFO(text);
  auto driver = open_cuda_driver();
  const bool gpu = driver.ok() && (*driver)->device_count().ok() && *(*driver)->device_count() > 0;
  if (gpu) {
    CHECK(rc == 0);
  } else {
    CHECK(rc == KL_ERR_NO_DEVICE);
    CHECK(text.find("no GPU") != std::string::npos);
  }
#endif
}

#ifdef KERNELS_TESTS_HAVE_CUDART
namespace {

std::string gpu_missing() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
  if (n == 0) return "no CUDA device: none visible";
  return {};
}

std::uint16_t to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<std::uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
float from_bf16(std::uint16_t h) {
  std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Throws instead of REQUIRE: buffers are also used from worker threads, where Catch2 must not be.
void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  std::size_t n = 0;
  explicit DeviceBuffer(std::size_t count) : n(count) {
    check_cuda(cudaMalloc(&ptr, std::max<std::size_t>(count, 1) * sizeof(T)), "cudaMalloc");
  }
  DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    check_cuda(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  std::vector<T> get(cudaStream_t s = nullptr) const {
    std::vector<T> h(n);
    check_cuda(cudaMemcpyAsync(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync");
    check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    return h;
  }
  void poison(cudaStream_t s = nullptr) {
    check_cuda(cudaMemsetAsync(ptr, 0xFF, n * sizeof(T), s), "cudaMemsetAsync");  // NaN bf16/fp32
  }
};

kl_tensor tensor(void* data, int dtype, std::vector<std::int64_t> shape, int device) {
  kl_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = static_cast<int>(shape.size());
  std::int64_t stride = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.stride[i] = stride;
    stride *= shape[i];
  }
  t.device = device;
  return t;
}

// fp64 attention for one (batch, query row, head): causal bottom-right aligned.
struct Ref {
  int h, h_k, d;
  bool causal;
  std::function<float(int bi, int i, int head, int x)> q;
  std::function<float(int bi, int j, int kh, int x)> k, v;
  void row(int bi, int i, int head, int s_q, int s_k, std::vector<double>& out, double& lse) const {
    const int kh = head / (h / h_k);
    const double scale = 1.0 / std::sqrt(double(d));
    const int last = causal ? std::min(s_k - 1, i + s_k - s_q) : s_k - 1;
    std::vector<double> p;
    double mx = -INFINITY;
    for (int j = 0; j <= last; ++j) {
      double dot = 0;
      for (int x = 0; x < d; ++x) dot += double(q(bi, i, head, x)) * k(bi, j, kh, x);
      p.push_back(dot * scale);
      mx = std::max(mx, p.back());
    }
    out.assign(d, 0.0);
    if (p.empty()) {
      lse = -INFINITY;
      return;
    }
    double sum = 0;
    for (auto& e : p) sum += (e = std::exp(e - mx));
    for (int j = 0; j <= last; ++j)
      for (int x = 0; x < d; ++x) out[x] += p[j] / sum * v(bi, j, kh, x);
    lse = mx + std::log(sum);
  }
};

// Tolerances: bf16 output rounding is 2^-8 relative (~4e-3 for |x| <= 1); the kernels' fp32
// accumulation adds far less. 2e-2 absolute on out and 1e-2 on the LSE leave room for both.
constexpr double kOutTol = 2e-2;
constexpr double kLseTol = 1e-2;

struct VarlenCase {
  int device = 0;
  int h = 8, h_k = 2, d = 128;
  std::vector<int> lens;
  std::vector<std::uint16_t> q, k, v;
  std::vector<std::int32_t> cu;
  int total = 0, max_len = 0;

  VarlenCase(int dev, std::mt19937& rng) : device(dev) {
    std::uniform_int_distribution<int> len(0, 96);
    lens = {len(rng), 1, len(rng), 130};
    cu = {0};
    for (int l : lens) {
      cu.push_back(cu.back() + l);
      max_len = std::max(max_len, l);
    }
    total = cu.back();
    std::normal_distribution<float> n;
    q.resize(std::size_t(total) * h * d);
    k.resize(std::size_t(total) * h_k * d);
    v.resize(k.size());
    for (auto* x : {&q, &k, &v})
      for (auto& e : *x) e = to_bf16(n(rng));
  }

  // Runs through `loader` on `stream` and returns the worst errors (out, lse).
  std::pair<double, double> run(Loader& loader, cudaStream_t stream) const {
    DeviceBuffer<std::uint16_t> dq(q), dk(k), dv(v), dout(q.size());
    DeviceBuffer<std::int32_t> dcu(cu);
    DeviceBuffer<float> dlse(std::size_t(h) * total);
    dout.poison(stream);
    dlse.poison(stream);
    kl_varlen_args a;
    kernels_loader_varlen_args_init(&a);
    a.q = tensor(dq.ptr, KL_DTYPE_BFLOAT16, {total, h, d}, device);
    a.k = tensor(dk.ptr, KL_DTYPE_BFLOAT16, {total, h_k, d}, device);
    a.v = tensor(dv.ptr, KL_DTYPE_BFLOAT16, {total, h_k, d}, device);
    a.out = tensor(dout.ptr, KL_DTYPE_BFLOAT16, {total, h, d}, device);
    a.softmax_lse = tensor(dlse.ptr, KL_DTYPE_FLOAT32, {h, total}, device);
    a.cu_seqlens_q = a.cu_seqlens_k = tensor(dcu.ptr, KL_DTYPE_INT32, {int(cu.size())}, device);
    a.max_seqlen_q = a.max_seqlen_k = max_len;
    a.causal = 1;
    auto r = loader.flash_attn_varlen_func(a, stream);
    if (!r) throw std::runtime_error(r.error().message());
    const auto out = dout.get(stream);
    const auto lse = dlse.get(stream);
    Ref ref{h,
            h_k,
            d,
            true,
            [&](int bi, int i, int hh, int x) {
              return from_bf16(q[(std::size_t(cu[bi] + i) * h + hh) * d + x]);
            },
            [&](int bi, int j, int kh, int x) {
              return from_bf16(k[(std::size_t(cu[bi] + j) * h_k + kh) * d + x]);
            },
            [&](int bi, int j, int kh, int x) {
              return from_bf16(v[(std::size_t(cu[bi] + j) * h_k + kh) * d + x]);
            }};
    double err = 0, lse_err = 0;
    std::vector<double> o;
    for (int bi = 0; bi < int(lens.size()); ++bi)
      for (int i = 0; i < lens[bi]; ++i)
        for (int hh = 0; hh < h; ++hh) {
          double l = 0;
          ref.row(bi, i, hh, lens[bi], lens[bi], o, l);
          for (int x = 0; x < d; ++x) {
            const double got = from_bf16(out[(std::size_t(cu[bi] + i) * h + hh) * d + x]);
            err = std::max(err, std::isfinite(got) ? std::abs(got - o[x]) : INFINITY);
          }
          const double got_lse = lse[std::size_t(hh) * total + cu[bi] + i];
          lse_err = std::max(lse_err, std::isfinite(got_lse) ? std::abs(got_lse - l) : INFINITY);
        }
    return {err, lse_err};
  }
};

Options gpu_options(bool force_builtin) {
  Options o;
  o.force_builtin = force_builtin;
  o.log = [](LogLevel level, std::string_view text) {
    if (level >= LogLevel::info) std::printf("loader log: %.*s\n", int(text.size()), text.data());
  };
  return o;
}

}  // namespace

TEST_CASE("built-in kernels: varlen causal GQA matches the CPU reference", "[gpu][loader]") {
  if (auto why = gpu_missing(); !why.empty()) KERNELS_SKIP(why);
  auto l = Loader::create(gpu_options(true));
  INFO((l ? std::string() : l.error().message()));
  REQUIRE(l.ok());
  auto s = (*l)->device_source(0, 3);
  REQUIRE(s.ok());
  CHECK(s->source == Source::builtin);
  std::mt19937 rng(std::random_device{}());
  VarlenCase c(0, rng);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  const auto [err, lse_err] = c.run(**l, nullptr);
  CHECK(err <= kOutTol);
  CHECK(lse_err <= kLseTol);
}

TEST_CASE("built-in kernels: paged decode with split-KV matches the CPU reference",
          "[gpu][loader]") {
  if (auto why = gpu_missing(); !why.empty()) KERNELS_SKIP(why);
  auto l = Loader::create(gpu_options(true));
  REQUIRE(l.ok());
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  std::mt19937 rng(std::random_device{}());
  const int b = 3, h = 16, h_k = 2, d = 128, page = 16, max_pages = 40, num_pages = b * max_pages;
  std::vector<std::int32_t> seqlens = {640, 1, 333};
  std::vector<std::int32_t> table(std::size_t(b) * max_pages);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  std::normal_distribution<float> n;
  std::vector<std::uint16_t> q(std::size_t(b) * h * d), kc(std::size_t(num_pages) * page * h_k * d),
      vc(kc.size());
  for (auto* x : {&q, &kc, &vc})
    for (auto& e : *x) e = to_bf16(n(rng));
  DeviceBuffer<std::uint16_t> dq(q), dk(kc), dv(vc), dout(q.size());
  DeviceBuffer<std::int32_t> dtable(table), dlens(seqlens);
  DeviceBuffer<float> dlse(std::size_t(b) * h);
  dout.poison();
  dlse.poison();
  kl_kvcache_args a;
  kernels_loader_kvcache_args_init(&a);
  a.q = tensor(dq.ptr, KL_DTYPE_BFLOAT16, {b, 1, h, d}, 0);
  a.k_cache = tensor(dk.ptr, KL_DTYPE_BFLOAT16, {num_pages, page, h_k, d}, 0);
  a.v_cache = tensor(dv.ptr, KL_DTYPE_BFLOAT16, {num_pages, page, h_k, d}, 0);
  a.page_table = tensor(dtable.ptr, KL_DTYPE_INT32, {b, max_pages}, 0);
  a.cache_seqlens = tensor(dlens.ptr, KL_DTYPE_INT32, {b}, 0);
  a.out = tensor(dout.ptr, KL_DTYPE_BFLOAT16, {b, 1, h, d}, 0);
  a.softmax_lse = tensor(dlse.ptr, KL_DTYPE_FLOAT32, {b, h, 1}, 0);
  a.causal = 1;
  a.num_splits = 0;
  auto ws = (*l)->kvcache_workspace_size(a, nullptr);
  REQUIRE(ws.ok());
  DeviceBuffer<unsigned char> dws(*ws);
  a.workspace = dws.ptr;
  a.workspace_bytes = *ws;
  auto r = (*l)->flash_attn_with_kvcache(a, nullptr);
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  const auto out = dout.get();
  const auto lse = dlse.get();
  auto kv = [&](const std::vector<std::uint16_t>& cache) {
    return [&, ptr = &cache](int bi, int j, int kh, int x) {
      const int pg = table[std::size_t(bi) * max_pages + j / page];
      return from_bf16((*ptr)[((std::size_t(pg) * page + j % page) * h_k + kh) * d + x]);
    };
  };
  Ref ref{h,
          h_k,
          d,
          true,
          [&](int bi, int, int hh, int x) {
            return from_bf16(q[(std::size_t(bi) * h + hh) * d + x]);
          },
          kv(kc),
          kv(vc)};
  double err = 0, lse_err = 0;
  std::vector<double> o;
  for (int bi = 0; bi < b; ++bi)
    for (int hh = 0; hh < h; ++hh) {
      double lref = 0;
      ref.row(bi, 0, hh, 1, seqlens[bi], o, lref);
      for (int x = 0; x < d; ++x) {
        const double got = from_bf16(out[(std::size_t(bi) * h + hh) * d + x]);
        err = std::max(err, std::isfinite(got) ? std::abs(got - o[x]) : INFINITY);
      }
      lse_err = std::max(lse_err, std::abs(double(lse[std::size_t(bi) * h + hh]) - lref));
    }
  CHECK(err <= kOutTol);
  CHECK(lse_err <= kLseTol);
}

TEST_CASE("a real bundle in a real cache serves the GPU and matches the reference",
          "[gpu][loader]") {
  if (auto why = gpu_missing(); !why.empty()) KERNELS_SKIP(why);
#ifndef KERNELS_BUNDLE_SM90A_DIR
  KERNELS_SKIP("this build has no sm90a bundle (nvcc not found)");
#else
  const char* moved = std::getenv("KERNELS_BUNDLE_SM90A_DIR");
  const std::filesystem::path dir = moved ? moved : KERNELS_BUNDLE_SM90A_DIR;
  if (!std::filesystem::exists(dir / "attention.cubin"))
    KERNELS_SKIP("the sm90a bundle was not built: " + dir.string());
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  auto read = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)),
                                     std::istreambuf_iterator<char>());
  };
  TempDir tmp;
  const auto repo = add_repo(tmp.path(), "kernels-community/attention-fa3",
                             {{dir.filename().string(),
                               {BundleFile{"attention.cubin", read(dir / "attention.cubin"), true},
                                BundleFile{"manifest.json", read(dir / "manifest.json"), false}}}});
  write_lock(tmp.path() / "kernels.lock", {repo});
  auto o = gpu_options(false);
  o.cache_dir = tmp.path();
  o.lockfile = tmp.path() / "kernels.lock";
  auto l = Loader::create(o);
  REQUIRE(l.ok());
  auto s = (*l)->device_source(0, 3);
  REQUIRE(s.ok());
  INFO(s->why.message());
  if (major != 9 || minor != 0) {
    CHECK(s->source == Source::builtin);
    CHECK(s->reason == FallbackReason::no_variant);
    KERNELS_SKIP("the sm90a bundle runs only on compute capability 9.0");
  }
  REQUIRE(s->source == Source::bundle);
  CHECK(s->sha == repo.sha);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  std::mt19937 rng(std::random_device{}());
  VarlenCase c(0, rng);
  const auto [err, lse_err] = c.run(**l, nullptr);
  CHECK(err <= kOutTol);
  CHECK(lse_err <= kLseTol);
#endif
}

TEST_CASE("several threads with their own streams get correct results", "[gpu][loader]") {
  if (auto why = gpu_missing(); !why.empty()) KERNELS_SKIP(why);
  auto l = Loader::create(gpu_options(false));
  REQUIRE(l.ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      cudaSetDevice(0);
      cudaStream_t s;
      cudaStreamCreate(&s);
      std::mt19937 rng(std::random_device{}() + t);
      for (int i = 0; i < 5; ++i) {
        try {
          VarlenCase c(0, rng);
          const auto [err, lse_err] = c.run(**l, s);
          if (!(err <= kOutTol && lse_err <= kLseTol)) ++bad;
        } catch (const std::exception& e) {
          std::printf("thread %d: %s\n", t, e.what());
          ++bad;
        }
      }
      cudaStreamDestroy(s);
    });
  for (auto& t : threads) t.join();
  CHECK(bad == 0);
}

TEST_CASE("several GPUs in one process: each device served and correct", "[gpu][loader]") {
  if (auto why = gpu_missing(); !why.empty()) KERNELS_SKIP(why);
  int n = 0;
  cudaGetDeviceCount(&n);
  if (n < 2) KERNELS_SKIP("one GPU visible; needs two");
  auto l = Loader::create(gpu_options(false));
  REQUIRE(l.ok());
  std::vector<std::thread> threads;
  std::vector<std::pair<double, double>> errs(n);
  for (int dev = 0; dev < n; ++dev)
    threads.emplace_back([&, dev] {
      cudaSetDevice(dev);
      std::mt19937 rng(std::random_device{}() + dev);
      try {
        VarlenCase c(dev, rng);
        errs[dev] = c.run(**l, nullptr);
      } catch (const std::exception& e) {
        std::printf("cuda:%d: %s\n", dev, e.what());
        errs[dev] = {INFINITY, INFINITY};
      }
    });
  for (auto& t : threads) t.join();
  for (int dev = 0; dev < n; ++dev) {
    INFO("cuda:" << dev);
    CHECK(errs[dev].first <= kOutTol);
    CHECK(errs[dev].second <= kLseTol);
    auto s = (*l)->device_source(dev, 3);
    REQUIRE(s.ok());
    CHECK(s->source != Source::unavailable);
  }
}
#endif  // KERNELS_TESTS_HAVE_CUDART
