#include "transfer_threads.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace kernels::cli::hub {

namespace {
constexpr std::size_t kMaxTransferThreads = 4;
}

std::size_t transfer_threads(int jobs, std::size_t files) {
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min({kMaxTransferThreads, cores, static_cast<std::size_t>(std::max(1, jobs)), files});
}

void run_on_threads(
    std::size_t threads,
    const std::function<void(std::size_t t, const std::function<void(std::size_t)>& report)>& work,
    const std::function<void(std::size_t)>& on_done, const std::function<void()>& tick) {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::size_t> finished;  // under mu
  std::size_t running = threads;      // under mu
  const std::function<void(std::size_t)> report = [&](std::size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    finished.push_back(i);
    changed.notify_one();
  };
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      work(t, report);
      std::lock_guard<std::mutex> lock(mu);
      --running;
      changed.notify_one();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    changed.wait_for(lock, std::chrono::milliseconds(100));
    std::vector<std::size_t> done = std::move(finished);
    finished.clear();
    const bool all_done = running == 0;
    lock.unlock();
    if (on_done) {
      for (std::size_t i : done) on_done(i);
    }
    if (tick) tick();
    lock.lock();
    if (all_done && finished.empty()) break;
  }
  lock.unlock();
  for (auto& w : workers) w.join();
}

}  // namespace kernels::cli::hub
