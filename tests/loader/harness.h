// A Loader over the fake driver with a captured log and an injected environment, plus valid
// argument sets that tests then break one rule at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/attention/params.h"
#include "kernels/loader/loader.h"
#include "loader/cache_builder.h"
#include "loader/fake_driver.h"

namespace kernels::loader::testing {

struct LogLine {
  LogLevel level;
  std::string text;
};

class Harness {
 public:
  explicit Harness(FakeDriver::Config config = {});

  // Cache root, also exported as KERNELS_CACHE, so the default lockfile is <cache>/kernels.lock.
  std::filesystem::path cache() const { return dir_.path() / "cache"; }
  std::filesystem::path default_lock() const { return cache() / "kernels.lock"; }
  std::map<std::string, std::string> env;
  std::vector<std::uint8_t> builtin = fake_builtin_image();
  std::shared_ptr<FakeDriver> driver;

  Options options();
  Result<std::unique_ptr<Loader>> make();

  std::vector<LogLine> log() const;
  int warnings() const;
  int warnings_containing(const std::string& needle) const;

  // A verified fa3 bundle (cubin-cu130-sm90a) locked at the default lockfile.
  CachedRepo publish_fa3(const ManifestSpec& spec = {},
                         std::optional<std::vector<std::string>> image_kernels = {},
                         const std::string& variant = "cubin-cu130-sm90a",
                         const std::string& repo = "kernels-community/attention-fa3");

 private:
  TempDir dir_;
  mutable std::mutex mutex_;
  std::vector<LogLine> log_;
};

// Fake device addresses: distinct, 256-byte aligned, never dereferenced by the fake driver.
inline void* fake_ptr(int i) {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(0x7f0000000000ull + i * 0x100000ull));
}

kl_tensor tensor(void* data, int dtype, std::vector<std::int64_t> shape, int device = 0);

// varlen: b=2, total_q = total_k = 64, h=8, h_k=2, d=dv=128, bf16, with LSE.
kl_varlen_args valid_varlen(int d = 128);
// kvcache, paged: b=2, s_q=1 (decode), h=8, h_k=2, d=128, 16 pages of 16, 4 pages per sequence.
kl_kvcache_args valid_kvcache_paged(int d = 128);

// The FwdParams a recorded forward launch carried.
attention::FwdParams params_of(const RecordedLaunch& launch);

}  // namespace kernels::loader::testing
