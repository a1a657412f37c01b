// Downloads and mirror copies on several threads, with the progress reported on the caller's
// thread. Internal to kernels_hub.
#pragma once

#include <cstddef>
#include <functional>

namespace kernels::cli::hub {

// One thread receives, hashes (SHA-256 ~2 GB/s) and writes at about one core's speed, so a
// transfer of many files uses up to this many threads: no more than the cores, the parallel
// transfers asked for (`jobs`) or the files.
std::size_t transfer_threads(int jobs, std::size_t files);

// Runs work(t, report) for t in [0, threads) on that many threads. A worker calls report(i)
// once item i is finished; on_done(i) then runs on the calling thread, as does tick() about
// every 100 ms (either may be empty). Returns when every worker has returned and every
// reported item has been passed to on_done.
void run_on_threads(
    std::size_t threads,
    const std::function<void(std::size_t t, const std::function<void(std::size_t)>& report)>& work,
    const std::function<void(std::size_t)>& on_done, const std::function<void()>& tick);

}  // namespace kernels::cli::hub
