// bench_hub_download: the Hub client's transfer engine alone, against the in-process fake Hub on
// 127.0.0.1 (no cache, no publish, no fsync): refs + tree + one GET per file.
//
//   bench_hub_download FILES SIZE_KIB JOBS [LFS_EVERY] [REPEATS]
//
// LFS_EVERY = k makes every k-th file an LFS file (302 to the LFS port, then a blob GET);
// 0 (default) means none. Prints one line per run and the best run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "hub_test_support.h"

using namespace kernels;
using namespace kernels::hub_test;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_hub_download FILES SIZE_KIB JOBS [LFS_EVERY] [REPEATS]\n");
    return 2;
  }
  int files = std::atoi(argv[1]);
  std::size_t size = static_cast<std::size_t>(std::atol(argv[2])) * 1024;
  int jobs = std::atoi(argv[3]);
  int lfs_every = argc > 4 ? std::atoi(argv[4]) : 0;
  int repeats = argc > 5 ? std::atoi(argv[5]) : 3;
  if (files <= 0 || jobs <= 0 || repeats <= 0) {
    std::fprintf(stderr, "bench_hub_download: FILES, JOBS and REPEATS must be positive\n");
    return 2;
  }

  FakeHub hub;
  std::vector<FakeFile> content;
  std::mt19937_64 rng(42);
  for (int i = 0; i < files; ++i) {
    std::string bytes(size, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    content.push_back(
        {"build/v/f" + std::to_string(i), std::move(bytes), lfs_every > 0 && i % lfs_every == 0});
  }
  hub.add_repo("bench/repo").branch("v1", std::move(content));

  double best = 1e30;
  for (int run = 0; run < repeats; ++run) {
    TempDir dir;
    auto options = fast_options(hub.endpoint());
    options.jobs = jobs;
    auto client = make_client(options);
    auto start = std::chrono::steady_clock::now();
    auto refs = client->list_refs("bench/repo");
    auto commit = refs.value().versions().at(1);
    auto tree = client->list_tree("bench/repo", commit);
    auto requests = requests_for(tree.value(), "bench/repo", commit, dir.path());
    auto results = client->download(requests);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                         .count();
    for (const auto& r : results) {
      if (!r.ok()) {
        std::fprintf(stderr, "bench_hub_download: %s\n", r.error().message().c_str());
        return 1;
      }
    }
    auto stats = client->stats();
    double mib = static_cast<double>(stats.bytes) / (1 << 20);
    std::printf(
        "run %d: %d files x %zu KiB, jobs %d: %.3f s, %.1f MiB/s, %llu requests (%llu to the Hub "
        "port)\n",
        run + 1, files, size / 1024, jobs, seconds, mib / seconds,
        static_cast<unsigned long long>(stats.requests),
        static_cast<unsigned long long>(stats.hub_requests));
    best = std::min(best, seconds);
  }
  std::printf("best: %.3f s\n", best);
  return 0;
}
