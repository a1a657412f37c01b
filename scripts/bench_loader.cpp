// Loader cold start and per-call host overhead.
//
//   bench_loader cpu                 verification of a synthetic 50 MB bundle (lockfile parse,
//                                    read + hash + manifest), and validation + plan per call.
//   bench_loader make-cache <bundle_dir> <root>   a locked cache holding the bundle.
//   bench_loader gpu <bundle_dir>    on a GPU: driver open + built-in load, bundle verify + load
//                                    (real cubin, padded to 50 MB of verified bytes), first
//                                    launch, and the C ABI's per-call host time against a bare
//                                    cuLaunchKernel of the same kernel and params.
// Prints one "name value unit" line per measurement (medians of repeated runs).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bundle.h"
#include "kernels/attention/launch_plan.h"
#include "kernels/kernels_loader.h"
#include "kernels/loader/loader.h"
#include "kernels/lockfile/lockfile.h"
#include "loader/cache_builder.h"
#include "loader/fake_driver.h"
#include "loader/harness.h"
#include "validate.h"

using namespace kernels;
using namespace kernels::loader;
using namespace kernels::loader::testing;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report(const char* name, double value, const char* unit) {
  std::printf("%-44s %10.3f %s\n", name, value, unit);
  std::fflush(stdout);
}

std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint64_t x = rng();
    std::memcpy(b.data() + i, &x, 8);
  }
  return b;
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

constexpr std::size_t k50MB = 50u << 20;

// A cache holding `files` as the fa3 bundle, locked at <root>/kernels.lock.
void publish(const std::filesystem::path& root, std::vector<BundleFile> files) {
  auto repo = add_repo(root, "kernels-community/attention-fa3", {{"cubin-cu130-sm90a", files}});
  write_lock(root / "kernels.lock", {repo});
}

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

// Decode-sized varlen call: b=1, 1 query, 256 keys, 8 heads over 1 kv head, d=128.
kl_varlen_args small_call(void* base, int device) {
  auto* p = static_cast<char*>(base);
  kl_varlen_args a;
  kernels_loader_varlen_args_init(&a);
  a.q = tensor(p, KL_DTYPE_BFLOAT16, {1, 8, 128}, device);
  a.k = tensor(p + (1 << 16), KL_DTYPE_BFLOAT16, {256, 1, 128}, device);
  a.v = tensor(p + (2 << 16), KL_DTYPE_BFLOAT16, {256, 1, 128}, device);
  a.out = tensor(p + (3 << 16), KL_DTYPE_BFLOAT16, {1, 8, 128}, device);
  a.cu_seqlens_q = tensor(p + (4 << 16), KL_DTYPE_INT32, {2}, device);
  a.cu_seqlens_k = tensor(p + (4 << 16) + 256, KL_DTYPE_INT32, {2}, device);
  a.max_seqlen_q = 1;
  a.max_seqlen_k = 256;
  a.causal = 1;
  return a;
}

int bench_cpu() {
  TempDir dir;
  auto files = bundle_files({});
  files[0].bytes.resize(k50MB);  // the fake image header stays; the rest is padding
  auto pad = random_bytes(k50MB - 4096);
  std::copy(pad.begin(), pad.end(), files[0].bytes.begin() + 4096);
  publish(dir.path(), files);
  std::vector<double> parse, verify;
  for (int i = 0; i < 7; ++i) {
    auto t0 = Clock::now();
    auto lock = read_lockfile(dir.path() / "kernels.lock");
    parse.push_back(ms_since(t0));
    if (!lock) return std::fprintf(stderr, "%s\n", lock.error().message().c_str()), 1;
    t0 = Clock::now();
    auto out = find_verified_bundle({dir.path() / "kernels.lock",
                                     dir.path(),
                                     "kernels-community/attention-fa3",
                                     "fa3",
                                     {13, 0},
                                     {9, 0}});
    verify.push_back(ms_since(t0));
    if (!out.bundle) return std::fprintf(stderr, "%s\n", out.error.message().c_str()), 1;
  }
  report("cpu.lockfile_parse", median(parse), "ms");
  report("cpu.verify_50MB_bundle (read+hash+manifest)", median(verify), "ms");

  DeviceProperties props;
  props.compute_capability = {9, 0};
  props.sm_count = 132;
  props.max_smem_per_block_optin = 227 * 1024;
  auto args = small_call(reinterpret_cast<void*>(0x7f0000000000ull), 0);
  const attention::DeviceFacts facts{9, 0, 132, 227 * 1024};
  const int n = 200000;
  auto t0 = Clock::now();
  std::size_t sink = 0;
  for (int i = 0; i < n; ++i) {
    auto v = validate_varlen(args, props);
    auto plan = attention::plan_forward(v.params, facts, nullptr, 0);
    sink += plan ? plan->count : 0;
  }
  report("cpu.validate+plan per call", ms_since(t0) * 1e3 / n, "us");

  Harness h;
  auto l = h.make();
  if (!l) return std::fprintf(stderr, "%s\n", l.error().message().c_str()), 1;
  args = small_call(fake_ptr(1), 0);
  const int m = 20000;
  t0 = Clock::now();
  for (int i = 0; i < m; ++i) sink += (*l)->flash_attn_varlen_func(args, fake_stream(0)).ok();
  report("cpu.Loader call over the fake driver", ms_since(t0) * 1e3 / m,
         "us (incl. fake's recording)");
  return sink == 0;
}

}  // namespace

#ifdef KERNELS_BENCH_HAVE_CUDART
#include <cuda_runtime.h>

#include "kernels/attention/builtin_image.h"

namespace {

int bench_gpu(const std::filesystem::path& bundle_dir) {
  // Cold start, each stage on its own: a fresh process would pay all of them once.
  TempDir dir;
  std::vector<BundleFile> files = {BundleFile{"attention.cubin",
                                              read_file(bundle_dir / "attention.cubin"), true},
                                   BundleFile{"manifest.json",
                                              read_file(bundle_dir / "manifest.json"), false}};
  const std::size_t cubin = files[0].bytes.size();
  // Verified but not loaded: brings the verified bytes to 50 MB, the target's bundle size.
  files.push_back(BundleFile{"padding.bin", random_bytes(k50MB - cubin), true});
  publish(dir.path(), files);
  report("gpu.bundle_cubin_size", cubin / 1048576.0, "MiB");

  auto t0 = Clock::now();
  auto driver = open_cuda_driver();
  if (!driver) return std::fprintf(stderr, "%s\n", driver.error().message().c_str()), 1;
  report("gpu.cold.driver_open+cuInit", ms_since(t0), "ms");

  Options o;
  o.driver = *driver;
  o.lockfile = dir.path() / "kernels.lock";
  o.cache_dir = dir.path();
  o.force_builtin = false;
  t0 = Clock::now();
  auto l = Loader::create(o);
  if (!l) return std::fprintf(stderr, "%s\n", l.error().message().c_str()), 1;
  report("gpu.cold.create (built-in image load+check)", ms_since(t0), "ms");

  cudaSetDevice(0);
  cudaFree(nullptr);  // the primary context, as a server has it before its first request
  t0 = Clock::now();
  auto src = (*l)->device_source(0, 3);
  const double first_use = ms_since(t0);
  if (!src) return std::fprintf(stderr, "%s\n", src.error().message().c_str()), 1;
  std::printf("source: %s %s\n", src->source == Source::bundle ? "bundle" : "builtin",
              src->why.message().c_str());
  report("gpu.cold.first_use (lockfile+verify 50MB+load+resolve)", first_use, "ms");

  void* mem = nullptr;
  cudaMalloc(&mem, 1 << 20);
  cudaMemset(mem, 0, 1 << 20);
  std::vector<std::int32_t> cu = {0, 1, 0, 256};
  cudaMemcpy(static_cast<char*>(mem) + (4 << 16), cu.data(), 8, cudaMemcpyHostToDevice);
  cudaMemcpy(static_cast<char*>(mem) + (4 << 16) + 256, cu.data() + 2, 8, cudaMemcpyHostToDevice);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  cudaDeviceSynchronize();
  auto args = small_call(mem, 0);
  t0 = Clock::now();
  auto r = (*l)->flash_attn_varlen_func(args, stream);
  cudaStreamSynchronize(stream);
  if (!r) return std::fprintf(stderr, "%s\n", r.error().message().c_str()), 1;
  report("gpu.cold.first_call (+sync)", ms_since(t0), "ms");

  // Per-call host time through the C ABI (the process-wide loader: same bundle via env).
  setenv("KERNELS_LOCKFILE", (dir.path() / "kernels.lock").c_str(), 1);
  setenv("KERNELS_CACHE", dir.path().c_str(), 1);
  if (kernels_loader_init(nullptr) != KL_OK)
    return std::fprintf(stderr, "%s\n", kernels_loader_last_error()), 1;
  const int batch = 256, rounds = 40;
  auto timed = [&](auto&& one_call) {
    std::vector<double> per_call;
    for (int round = 0; round < rounds; ++round) {
      cudaStreamSynchronize(stream);
      auto t = Clock::now();
      for (int i = 0; i < batch; ++i) one_call();
      per_call.push_back(ms_since(t) * 1e3 / batch);
    }
    cudaStreamSynchronize(stream);
    return median(per_call);
  };
  int failures = 0;
  std::string first_error;
  auto note = [&](bool ok, const std::string& what) {
    if (ok) return;
    if (failures++ == 0) first_error = what;
  };
  const double abi = timed([&] {
    const int rc = kernels_loader_flash_attn_varlen_func(&args, stream);
    note(rc == KL_OK, rc == KL_OK ? std::string() : kernels_loader_last_error());
  });
  report("gpu.call.c_abi_varlen (validate+plan+launch)", abi, "us");

  // The same launch, bare: one cuLaunchKernel with the plan's params.
  DeviceProperties props = *(*driver)->device_properties(0);
  auto v = validate_varlen(args, props);
  auto plan = attention::plan_forward(v.params,
                                      {props.compute_capability.major,
                                       props.compute_capability.minor, props.sm_count,
                                       props.max_smem_per_block_optin},
                                      nullptr, 0);
  if (!plan) return std::fprintf(stderr, "%s\n", plan.error().message().c_str()), 1;
  const auto bytes = attention::builtin_image();
  auto lib = (*driver)->load_library(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                    bytes.size()),
      "bench");
  auto ctx = (*driver)->retain_primary_context(0);
  auto kernel = (*driver)->library_kernel(*lib, plan->launches[0].kernel_name);
  auto fn = (*driver)->kernel_function(*kernel, *ctx);
  void* params = const_cast<void*>(plan->launches[0].params_ptr());
  LaunchConfig cfg;
  cfg.function = *fn;
  cfg.context = *ctx;
  cfg.stream = stream;
  std::copy(plan->launches[0].grid, plan->launches[0].grid + 3, cfg.grid);
  std::copy(plan->launches[0].block, plan->launches[0].block + 3, cfg.block);
  cfg.smem_bytes = plan->launches[0].smem_bytes;
  cfg.args = &params;
  if (!lib || !ctx || !kernel || !fn) return std::fprintf(stderr, "bare launch setup failed\n"), 1;
  if (plan->launches[0].smem_bytes > 48 * 1024) {
    auto r = (*driver)->set_max_dynamic_smem(*fn, *ctx,
                                             static_cast<int>(plan->launches[0].smem_bytes));
    if (!r) return std::fprintf(stderr, "%s\n", r.error().message().c_str()), 1;
  }
  const double bare = timed([&] {
    auto r = (*driver)->launch(cfg);
    note(r.ok(), r.ok() ? std::string() : r.error().message());
  });
  report("gpu.call.bare_cuLaunchKernel", bare, "us");
  report("gpu.call.loader_overhead (c_abi - bare)", abi - bare, "us");
  cudaStreamSynchronize(stream);
  if (failures) std::fprintf(stderr, "%d failed calls; first: %s\n", failures, first_error.c_str());
  return failures != 0;
}

}  // namespace
#endif

// A cache at <root> holding the bundle as kernels-community/attention-fa3, locked at
// <root>/kernels.lock: what `kernels download` leaves, for the Python tests on a real bundle.
int make_cache(const std::filesystem::path& bundle_dir, const std::filesystem::path& root) {
  std::filesystem::create_directories(root);
  const std::string variant = bundle_dir.filename().string();
  auto repo = add_repo(
      root, "kernels-community/attention-fa3",
      {{variant,
        {BundleFile{"attention.cubin", read_file(bundle_dir / "attention.cubin"), true},
         BundleFile{"manifest.json", read_file(bundle_dir / "manifest.json"), false}}}});
  write_lock(root / "kernels.lock", {repo});
  std::printf("cache %s: %s@%s %s\n", root.c_str(), repo.repo_id.c_str(), repo.sha.c_str(),
              variant.c_str());
  return 0;
}

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "cpu";
  if (mode == "cpu") return bench_cpu();
  if (mode == "make-cache" && argc > 3) return make_cache(argv[2], argv[3]);
#ifdef KERNELS_BENCH_HAVE_CUDART
  if (mode == "gpu" && argc > 2) return bench_gpu(argv[2]);
#endif
  std::fprintf(stderr,
               "usage: bench_loader cpu | gpu <bundle_dir> | make-cache <bundle_dir> <root>\n");
  return 2;
}
