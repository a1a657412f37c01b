// In-process tests of the pieces the commands share: variant choice, target description, the
// per-blob lock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "blob_lock.h"
#include "console.h"
#include "harness.h"
#include "installer.h"
#include "system_probe.h"
#include "variant_choice.h"

using namespace kernels;
using namespace kernels::cli;
using kernels::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("choose_variants: cubin by GPU, torch by described system, notes when neither is known",
          "[units]") {
  std::vector<std::string> names = {"cubin-cu130-sm80", "cubin-cu130-sm90a",
                                    "torch210-cxx11-cu128-x86_64-linux", "torch-cuda"};
  SystemOptions options;
  options.cpu = "x86_64";
  options.os = "linux";
  auto none = describe_targets(options, DriverFacts{});
  REQUIRE(none.ok());
  VariantChoice c = choose_variants(names, *none, "no CUDA driver");
  CHECK(c.chosen.empty());
  REQUIRE(c.notes.size() == 2);

  options.driver_cuda = "13.0";
  options.compute_capability = "9.0";
  options.torch = "2.10";
  options.cuda = "12.8";
  auto h100 = describe_targets(options, DriverFacts{});
  REQUIRE(h100.ok());
  c = choose_variants(names, *h100, "");
  CHECK(c.chosen ==
        std::vector<std::string>{"cubin-cu130-sm90a", "torch210-cxx11-cu128-x86_64-linux"});

  DriverFacts two_gpus;
  two_gpus.driver_cuda = MajorMinor{13, 0};
  two_gpus.gpus = {{0, "H100", {9, 0}}, {1, "A100", {8, 0}}, {2, "H100", {9, 0}}};
  auto mixed = describe_targets(SystemOptions{}, two_gpus);
  REQUIRE(mixed.ok());
  CHECK(mixed->systems.size() == 2);
  c = choose_variants(names, *mixed, "");
  CHECK(c.chosen == std::vector<std::string>{"cubin-cu130-sm90a", "cubin-cu130-sm80"});
}

TEST_CASE("describe_targets rejects malformed versions as usage errors", "[units]") {
  SystemOptions options;
  options.torch = "2";
  auto r = describe_targets(options, DriverFacts{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::usage);
  CHECK(r.error().object == "--torch");
  options.torch = "2.10";
  options.cuda = "12.8";
  options.rocm = "7.1";
  CHECK(describe_targets(options, DriverFacts{}).error().code == ErrorCode::usage);
}

TEST_CASE("probe_driver without libcuda reports the fact instead of failing", "[units]") {
  setenv("KERNELS_DRIVER_LIBRARY", "libcuda-absent-in-tests.so.1", 1);
  DriverFacts f = probe_driver();
  unsetenv("KERNELS_DRIVER_LIBRARY");
  CHECK_FALSE(f.driver_found);
  CHECK(f.gpus.empty());
  CHECK(f.problem.find("no CUDA driver") != std::string::npos);
}

TEST_CASE("BlobLock: exclusive, bounded wait, released on destruction, a no-op when disabled",
          "[units][lock]") {
  TempDir dir;
  fs::path path = dir / ".locks/kernels--org--x/abc.lock";
  BlobLockPolicy policy;
  policy.timeout = std::chrono::milliseconds(300);
  auto first = BlobLock::try_acquire(path, policy);
  REQUIRE(first.has_value());
  // flock is per open file description, so a second open in this process contends like a peer.
  CHECK_FALSE(BlobLock::try_acquire(path, policy).has_value());
  auto start = std::chrono::steady_clock::now();
  Result<BlobLock> waited = BlobLock::acquire(path, policy);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_FALSE(waited.ok());
  CHECK(waited.error().code == ErrorCode::lock_timeout);
  CHECK(waited.error().object == path.string());
  CHECK(seconds >= 0.29);
  CHECK(seconds < 2.0);
  BlobLockPolicy off;
  off.enabled = false;
  CHECK(BlobLock::try_acquire(path, off).has_value());
  first.reset();
  CHECK(BlobLock::try_acquire(path, policy).has_value());
  CHECK(fs::exists(path));  // lock files are never deleted
}

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

// Every boolean variable takes the same spellings (README: 1, true, yes, on, any case), through
// lockfile's env_truthy. KERNELS_DISABLE_FLOCK used to treat any value but "0" as on ("false"
// disabled locking) and KERNELS_FSYNC only "1".
TEST_CASE("KERNELS_DISABLE_FLOCK and KERNELS_FSYNC are boolean switches read by env_truthy",
          "[units][env]") {
  for (const char* on : {"1", "true", "YES", "On"}) {
    INFO(on);
    auto policy = BlobLockPolicy::from_env(env_of({{"KERNELS_DISABLE_FLOCK", on}}));
    REQUIRE(policy.ok());
    CHECK_FALSE(policy->enabled);
    CHECK(blob_fsync_requested(env_of({{"KERNELS_FSYNC", on}})));
  }
  for (const char* off : {"0", "false", "no", "off", "", "y"}) {
    INFO(off);
    auto policy = BlobLockPolicy::from_env(env_of({{"KERNELS_DISABLE_FLOCK", off}}));
    REQUIRE(policy.ok());
    CHECK(policy->enabled);
    CHECK_FALSE(blob_fsync_requested(env_of({{"KERNELS_FSYNC", off}})));
  }
  auto unset = BlobLockPolicy::from_env(env_of({}));
  REQUIRE(unset.ok());
  CHECK(unset->enabled);
  CHECK(unset->timeout == std::chrono::milliseconds(600'000));
  CHECK_FALSE(blob_fsync_requested(env_of({})));
  // The lookup carries KERNELS_LOCK_TIMEOUT too.
  auto timeout = BlobLockPolicy::from_env(env_of({{"KERNELS_LOCK_TIMEOUT", "2.5"}}));
  REQUIRE(timeout.ok());
  CHECK(timeout->timeout == std::chrono::milliseconds(2500));
  CHECK_FALSE(BlobLockPolicy::from_env(env_of({{"KERNELS_LOCK_TIMEOUT", "inf"}})).ok());
}

TEST_CASE("ProgressLine::fit never fills the last column and keeps the bar longest",
          "[units][output]") {
  ProgressLine line;
  line.label = "Downloading kernels-community/attention-fa3";
  line.bytes = "117.2 MiB / 1.2 GiB";
  line.rate = "38.1 MiB/s  ETA 29.5s";
  line.files = "(12/300 files)";
  line.fraction = 0.1;
  for (std::size_t columns = 1; columns <= 200; ++columns) {
    INFO(columns);
    const std::string text = line.fit(columns);
    CHECK(text.size() < std::max<std::size_t>(columns, 1));
    CHECK(text.find('\n') == std::string::npos);
  }
  const std::string wide = line.fit(200);
  CHECK(wide.find(" [##") != std::string::npos);
  CHECK(wide.find("(12/300 files)") != std::string::npos);
  const std::string at_100 = line.fit(100);  // the bar stays, the file count goes
  CHECK(at_100.find(" [") != std::string::npos);
  CHECK(at_100.find("files") == std::string::npos);
  CHECK(at_100.find("ETA") != std::string::npos);
  CHECK(line.fit(50) == "Downloading kernels-community/attention-fa3 117.2");
}
