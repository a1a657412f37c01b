// One-core throughput of the streaming digests used to verify downloads and cached files:
// SHA-256 (LFS/Xet files) and git blob SHA-1 (regular Hub files), fed in fixed-size chunks.
//
//   bench_hash [total_MiB=1024] [chunk_MiB=4] [repeats=3]
//
// Prints one line per digest with the best of `repeats` runs in GB/s (10^9 bytes per second), by
// wall clock and by this thread's CPU time: on a busy machine the second one is the figure for
// "one core", since time the scheduler gave to other processes is not counted.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/lockfile/digest.h"

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Speed {
  double wall_gbps = 0;
  double cpu_gbps = 0;
};

template <class Hasher>
Speed best_gbps(const std::vector<std::uint8_t>& chunk, std::uint64_t total, int repeats,
                std::string* out_hex, Hasher&& make_and_run) {
  Speed best;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    *out_hex = make_and_run(chunk, total);
    const double c1 = thread_cpu_seconds();
    const auto t1 = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    best.wall_gbps = std::max(best.wall_gbps, static_cast<double>(total) / s / 1e9);
    best.cpu_gbps = std::max(best.cpu_gbps, static_cast<double>(total) / (c1 - c0) / 1e9);
  }
  return best;
}

void report(const char* name, const Speed& s, std::uint64_t total_mib, std::uint64_t chunk_mib,
            int repeats, const std::string& hex) {
  std::printf(
      "%-9s %6.2f GB/s wall  %6.2f GB/s cpu  (%llu MiB in %llu MiB chunks, best of %d)  %s\n", name,
      s.wall_gbps, s.cpu_gbps, static_cast<unsigned long long>(total_mib),
      static_cast<unsigned long long>(chunk_mib), repeats, hex.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t total_mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  const std::uint64_t chunk_mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 4;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  if (total_mib == 0 || chunk_mib == 0 || repeats <= 0 || total_mib % chunk_mib != 0) {
    std::fprintf(stderr, "usage: bench_hash [total_MiB] [chunk_MiB dividing total] [repeats]\n");
    return 2;
  }
  const std::uint64_t chunk_bytes = chunk_mib << 20;
  const std::uint64_t total = total_mib << 20;
  std::vector<std::uint8_t> chunk(chunk_bytes);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;  // non-constant content, no allocation in the loop
  for (auto& b : chunk) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x);
  }

  std::string hex;
  const Speed sha256 = best_gbps(chunk, total, repeats, &hex, [](const auto& c, std::uint64_t n) {
    kernels::Sha256 h;
    for (std::uint64_t done = 0; done < n; done += c.size()) h.update(c);
    return h.finish_hex();
  });
  report("sha256", sha256, total_mib, chunk_mib, repeats, hex);

  const Speed sha1 = best_gbps(chunk, total, repeats, &hex, [](const auto& c, std::uint64_t n) {
    kernels::GitBlobSha1 h(n);
    for (std::uint64_t done = 0; done < n; done += c.size()) h.update(c);
    auto r = h.finish_hex();
    return r ? *r : std::string("error");
  });
  report("git-sha1", sha1, total_mib, chunk_mib, repeats, hex);
  return 0;
}
