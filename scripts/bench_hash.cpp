// One-core throughput of the streaming digests used to verify downloads and cached files:
// SHA-256 (LFS/Xet files) and git blob SHA-1 (regular Hub files), fed in fixed-size chunks.
//
//   bench_hash [total_MiB=1024] [chunk_MiB=4] [repeats=3]
//
// Prints one line per digest with the best of `repeats` runs in GB/s (10^9 bytes per second).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/lockfile/digest.h"

namespace {

template <class Hasher>
double best_gbps(const std::vector<std::uint8_t>& chunk, std::uint64_t total, int repeats,
                 std::string* out_hex, Hasher&& make_and_run) {
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    *out_hex = make_and_run(chunk, total);
    const auto t1 = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    best = std::max(best, static_cast<double>(total) / s / 1e9);
  }
  return best;
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
  const double sha256 = best_gbps(chunk, total, repeats, &hex, [](const auto& c, std::uint64_t n) {
    kernels::Sha256 h;
    for (std::uint64_t done = 0; done < n; done += c.size()) h.update(c);
    return h.finish_hex();
  });
  std::printf("sha256    %6.2f GB/s  (%llu MiB in %llu MiB chunks, best of %d)  %s\n", sha256,
              static_cast<unsigned long long>(total_mib),
              static_cast<unsigned long long>(chunk_mib), repeats, hex.c_str());

  const double sha1 = best_gbps(chunk, total, repeats, &hex, [](const auto& c, std::uint64_t n) {
    kernels::GitBlobSha1 h(n);
    for (std::uint64_t done = 0; done < n; done += c.size()) h.update(c);
    auto r = h.finish_hex();
    return r ? *r : std::string("error");
  });
  std::printf("git-sha1  %6.2f GB/s  (%llu MiB in %llu MiB chunks, best of %d)  %s\n", sha1,
              static_cast<unsigned long long>(total_mib),
              static_cast<unsigned long long>(chunk_mib), repeats, hex.c_str());
  return 0;
}
