// The decision path (lockfile -> cache -> verification -> manifest -> load -> fallback) over the
// fake driver: which image serves each device, why, and how often the host hears about it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include "bundle.h"  // loader/src: variant_hash_of
#include "kernels/attention/launch_plan.h"
#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/variant_hash.h"
#include "loader/harness.h"

using namespace kernels;
using namespace kernels::loader;
using namespace kernels::loader::testing;

namespace {

DeviceSource source_of(Loader& l, int device = 0, int ver = 3) {
  auto s = l.device_source(device, ver);
  REQUIRE(s.ok());
  return *s;
}

// Runs one valid varlen call on device 0 and returns the image label it launched from.
std::string launch_label(Harness& h, Loader& l, int d = 128) {
  const auto before = h.driver->launches().size();
  auto args = valid_varlen(d);
  auto r = l.flash_attn_varlen_func(args, fake_stream(0));
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  const auto launches = h.driver->launches();
  REQUIRE(launches.size() == before + 1);
  return launches.back().image_label;
}

bool loaded_any_bundle(const Harness& h) {
  for (const auto& label : h.driver->loaded_labels())
    if (label.find("attention-fa") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a verified bundle serves the device and its kernels are launched", "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.source == Source::bundle);
  CHECK(s.reason == FallbackReason::none);
  CHECK(s.repo_id == "kernels-community/attention-fa3");
  CHECK(s.sha == repo.sha);
  CHECK(s.variant == "cubin-cu130-sm90a");
  CHECK(launch_label(h, **l).find("kernels-community/attention-fa3@" + repo.sha) == 0);
  CHECK(h.warnings() == 0);
}

TEST_CASE("no lockfile: built-in kernels, one lockfile_missing warning", "[loader]") {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == FallbackReason::lockfile_missing);
  CHECK(s.why.object.find("kernels.lock") != std::string::npos);
  CHECK(launch_label(h, **l) == "built-in attention kernels");
  CHECK(launch_label(h, **l) == "built-in attention kernels");
  CHECK(h.warnings() == 1);
  CHECK(h.warnings_containing("lockfile_missing") == 1);
}

TEST_CASE("an unparsable lockfile: lockfile_invalid", "[loader]") {
  Harness h;
  std::ofstream(h.default_lock()) << "[{\"repo_id\": ";
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).reason == FallbackReason::lockfile_invalid);
  CHECK(h.warnings_containing("lockfile_invalid") == 1);
}

TEST_CASE("a lock without the family's repo: repo_not_locked", "[loader]") {
  Harness h;
  h.publish_fa3({}, {}, "cubin-cu130-sm90a", "someone-else/attention");
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.reason == FallbackReason::repo_not_locked);
  CHECK(s.why.what.find("kernels-community/attention-fa3") != std::string::npos);
}

TEST_CASE("the repo is configurable: KERNELS_FA3_REPO and the fa3_repo option", "[loader]") {
  Harness h;
  h.publish_fa3({}, {}, "cubin-cu130-sm90a", "my-org/my-attention");
  SECTION("environment") {
    h.env["KERNELS_FA3_REPO"] = "my-org/my-attention";
    auto l = h.make();
    REQUIRE(l.ok());
    CHECK(source_of(**l).source == Source::bundle);
  }
  SECTION("option") {
    auto o = h.options();
    o.fa3_repo = "my-org/my-attention";
    auto l = Loader::create(o);
    REQUIRE(l.ok());
    CHECK(source_of(**l).source == Source::bundle);
  }
}

TEST_CASE("KERNELS_LOCKFILE points the loader at another lockfile", "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  const auto elsewhere = h.cache().parent_path() / "elsewhere" / "kernels.lock";
  write_lock(elsewhere, {repo});
  std::filesystem::remove(h.default_lock());
  h.env["KERNELS_LOCKFILE"] = elsewhere.string();
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).source == Source::bundle);
}

TEST_CASE("no locked variant fits the GPU: no_variant, listing what is available", "[loader]") {
  Harness h;
  h.publish_fa3({.arch = "sm100a"}, {}, "cubin-cu130-sm100a");
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.reason == FallbackReason::no_variant);
  CHECK(s.why.what.find("cubin-cu130-sm100a") != std::string::npos);
  CHECK_FALSE(loaded_any_bundle(h));
}

TEST_CASE("a lock without variant hashes (kernels-data list form) is never trusted", "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  std::ofstream(h.default_lock())
      << R"([{"dependency": {"repo-id": "kernels-community/attention-fa3", )"
      << R"("version": 1}, "lock": {"commit": ")" << repo.sha << R"("}}])";
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.reason == FallbackReason::no_variant);
  CHECK(s.why.what.find("no variant hashes") != std::string::npos);
  CHECK_FALSE(loaded_any_bundle(h));
}

// kernels 0.17's lock (format 2) pins commits only; `kernels lock` records the variant hashes in
// kernels.lock.hashes and `kernels download` copies both into the cache (docs/LOCKFILE.md).
TEST_CASE(
    "a format 2 lock with its hashes sidecar serves the bundle, and the sidecar's hash is checked",
    "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  auto lock = read_lockfile(h.default_lock());
  REQUIRE(lock.ok());
  lock->form = Lockfile::Form::dependency_list;
  for (KernelLock& k : lock->kernels) k.version = 1;
  REQUIRE(write_lockfile(h.default_lock(), *lock).ok());
  REQUIRE(write_lock_hashes(lock_hashes_path(h.default_lock()), lock_hashes_of(*lock)).ok());
  SECTION("served") {
    auto l = h.make();
    REQUIRE(l.ok());
    const auto s = source_of(**l);
    CHECK(s.source == Source::bundle);
    CHECK(s.sha == repo.sha);
  }
  SECTION("a sidecar hash that is not the cached tree's: integrity_mismatch") {
    LockHashes other = lock_hashes_of(*lock);
    for (auto& [key, variants] : other.commits) {
      for (auto& [name, v] : variants) v.hash = "sha256-" + std::string(64, '0');
    }
    REQUIRE(write_lock_hashes(lock_hashes_path(h.default_lock()), other).ok());
    auto l = h.make();
    REQUIRE(l.ok());
    CHECK(source_of(**l).reason == FallbackReason::integrity_mismatch);
    CHECK_FALSE(loaded_any_bundle(h));
  }
  SECTION("without the sidecar nothing is trusted") {
    std::filesystem::remove(lock_hashes_path(h.default_lock()));
    auto l = h.make();
    REQUIRE(l.ok());
    const auto s = source_of(**l);
    CHECK(s.reason == FallbackReason::no_variant);
    CHECK(s.why.hint.find("kernels.lock.hashes") != std::string::npos);
    CHECK_FALSE(loaded_any_bundle(h));
  }
}

TEST_CASE("a variant built for a newer CUDA than the driver is not chosen", "[loader]") {
  FakeDriver::Config cfg;
  cfg.cuda = {12, 8};
  Harness h(cfg);
  h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).reason == FallbackReason::no_variant);
}

TEST_CASE("files missing from the cache: not_downloaded", "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  SECTION("a blob") {
    std::filesystem::remove(blob_of(h.cache(), repo, "build/cubin-cu130-sm90a/attention.cubin"));
  }
  SECTION("the tree") {
    std::filesystem::remove(CacheLayout(h.cache()).tree_path(repo.repo_id, repo.sha));
  }
  SECTION("the whole repo") {
    std::filesystem::remove_all(CacheLayout(h.cache()).repo_dir(repo.repo_id));
  }
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == FallbackReason::not_downloaded);
  CHECK(s.why.hint.find("kernels download") != std::string::npos);
  CHECK_FALSE(loaded_any_bundle(h));
}

TEST_CASE("a flipped byte in the cubin: integrity_mismatch, nothing of it is loaded", "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  const auto blob = blob_of(h.cache(), repo, "build/cubin-cu130-sm90a/attention.cubin");
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('X');
  }
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.reason == FallbackReason::integrity_mismatch);
  CHECK(s.why.code == ErrorCode::integrity_mismatch);
  CHECK_FALSE(loaded_any_bundle(h));
  CHECK(launch_label(h, **l) == "built-in attention kernels");
  CHECK(h.warnings_containing("integrity_mismatch") == 1);
}

// Regression (issue 12, defect 4): a FIFO in place of a bundle file blocked the loader forever in
// open(), so the first attention call of a server hung.
TEST_CASE("a FIFO in place of a bundle file is refused at once, never waited on", "[loader]") {
  Harness h;
  const auto repo = h.publish_fa3();
  const char* file = GENERATE("build/cubin-cu130-sm90a/attention.cubin",
                              "build/cubin-cu130-sm90a/manifest.json");
  const auto blob = blob_of(h.cache(), repo, file);
  std::filesystem::remove(blob);
  REQUIRE(::mkfifo(blob.c_str(), 0644) == 0);
  // No assertion inside the thread: it only reports what it saw.
  auto decided = std::async(std::launch::async, [&]() -> std::optional<DeviceSource> {
    auto l = h.make();
    if (!l) return std::nullopt;
    auto s = (*l)->device_source(0, 3);
    if (!s) return std::nullopt;
    return *s;
  });
  if (decided.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    // Unblock the stuck open() (a writer arrives and leaves) so the test ends, then fail.
    const int fd = ::open(blob.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    decided.wait();
    FAIL("the loader blocked on a FIFO in the cache: " << file);
  }
  const auto s = decided.get();
  REQUIRE(s.has_value());
  CHECK(s->source == Source::builtin);
  CHECK(s->reason == FallbackReason::integrity_mismatch);
  CHECK(s->why.message().find("not a regular file") != std::string::npos);
  CHECK_FALSE(loaded_any_bundle(h));
}

TEST_CASE("a cache other users can write is refused as the CLI refuses it: unsafe_cache",
          "[loader]") {
  namespace fs = std::filesystem;
  Harness h;
  h.publish_fa3();
  // chmod -R 777 on the cache (issue 12, defect 3): the lock in it could be anyone's.
  fs::permissions(h.cache(), fs::perms::all);
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == FallbackReason::unsafe_cache);
  CHECK(s.why.code == ErrorCode::unsafe);
  CHECK(s.why.what.find("unsafe cache permissions: writable by every user") != std::string::npos);
  CHECK(s.why.object == h.cache().string());
  CHECK(s.why.hint.find("chmod go-w") != std::string::npos);
  CHECK(launch_label(h, **l) == "built-in attention kernels");
  CHECK_FALSE(loaded_any_bundle(h));
  CHECK(h.warnings_containing("unsafe_cache") == 1);

  SECTION("KERNELS_ALLOW_SHARED_CACHE=1 opts out, as for the CLI") {
    h.env["KERNELS_ALLOW_SHARED_CACHE"] = "true";
    auto shared = h.make();
    REQUIRE(shared.ok());
    CHECK(source_of(**shared).source == Source::bundle);
  }
  SECTION("a symlink planted in place of the repo's snapshots folder") {
    fs::permissions(h.cache(), fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
    const fs::path snapshots = CacheLayout(h.cache()).repo_dir("kernels-community/attention-fa3") /
                               "snapshots";
    REQUIRE(fs::is_directory(snapshots));
    fs::rename(snapshots, h.cache() / "elsewhere");
    fs::create_directory_symlink(h.cache() / "elsewhere", snapshots);
    auto planted = h.make();
    REQUIRE(planted.ok());
    const auto p = source_of(**planted);
    CHECK(p.reason == FallbackReason::unsafe_cache);
    CHECK(p.why.what.find("a symbolic link") != std::string::npos);
    CHECK(p.why.object == snapshots.string());
  }
}

TEST_CASE("a lock that pins another hash than the cached tree: integrity_mismatch", "[loader]") {
  Harness h;
  auto repo = h.publish_fa3();
  auto other = add_repo(h.cache().parent_path() / "other", repo.repo_id,
                        {{"cubin-cu130-sm90a",
                          bundle_files({.kernels = {"kernels_attn_fwd_hd64_bf16"}})}});
  other.sha = repo.sha;  // same commit, different content: the lock disagrees with the cache
  write_lock(h.default_lock(), {other});
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).reason == FallbackReason::integrity_mismatch);
}

TEST_CASE("manifest ABI mismatches: abi_mismatch", "[loader]") {
  Harness h;
  SECTION("params ABI version") { h.publish_fa3({.params_abi = attention::kParamsAbiVersion + 1}); }
  SECTION("family") { h.publish_fa3({.family = "fa4"}); }
  SECTION("arch") { h.publish_fa3({.arch = "sm90"}); }
  SECTION("kernel configuration") { h.publish_fa3({.threads_delta = 32}); }
  SECTION("unknown kernel") {
    auto files = bundle_files({});
    std::string m(files[1].bytes.begin(), files[1].bytes.end());
    m.replace(m.find("kernels_attn_fwd_hd64_bf16"), 26, "kernels_attn_fwd_hd72_bf16");
    files[1].bytes.assign(m.begin(), m.end());
    write_lock(h.default_lock(), {add_repo(h.cache(), "kernels-community/attention-fa3",
                                           {{"cubin-cu130-sm90a", files}})});
  }
  SECTION("no manifest") {
    auto files = bundle_files({});
    files.pop_back();
    write_lock(h.default_lock(), {add_repo(h.cache(), "kernels-community/attention-fa3",
                                           {{"cubin-cu130-sm90a", files}})});
  }
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == FallbackReason::abi_mismatch);
  CHECK_FALSE(loaded_any_bundle(h));
  CHECK(h.warnings_containing("abi_mismatch") == 1);
}

TEST_CASE("the driver refuses the bundle, or it lacks a kernel it lists: load_failed", "[loader]") {
  SECTION("refused image") {
    FakeDriver::Config cfg;
    cfg.refuse_label = "attention-fa3";
    Harness h(cfg);
    h.publish_fa3();
    auto l = h.make();
    REQUIRE(l.ok());
    CHECK(source_of(**l).reason == FallbackReason::load_failed);
    CHECK(launch_label(h, **l) == "built-in attention kernels");
  }
  SECTION("kernel missing from the image") {
    Harness h;
    h.publish_fa3({}, std::vector<std::string>{"kernels_attn_fwd_hd64_bf16"});
    auto l = h.make();
    REQUIRE(l.ok());
    const auto s = source_of(**l);
    CHECK(s.reason == FallbackReason::load_failed);
    CHECK(h.driver->live_libraries() == 1);  // the bundle was unloaded again
  }
}

int infos_containing(const Harness& h, const std::string& needle) {
  int n = 0;
  for (const auto& line : h.log())
    n += line.level == LogLevel::info && line.text.find(needle) != std::string::npos;
  return n;
}

TEST_CASE("a shape the bundle does not cover runs on the built-in kernels, noted once",
          "[loader]") {
  Harness h;
  h.publish_fa3({.kernels = {"kernels_attn_fwd_hd128_bf16"}});
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).source == Source::bundle);
  CHECK(launch_label(h, **l, 128).find("kernels-community/attention-fa3@") == 0);
  CHECK(launch_label(h, **l, 64) == "built-in attention kernels");
  CHECK(launch_label(h, **l, 64) == "built-in attention kernels");
  // By design (the bundle's family covers some shapes): information, not a warning.
  CHECK(infos_containing(h, "kernels_attn_fwd_hd64_bf16") == 1);
  CHECK(h.warnings() == 0);
}

TEST_CASE("prefill on sm_90 runs the bundle's TMA kernel with tensor maps over q, k and v",
          "[loader]") {
  Harness h;
  h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  auto args = valid_varlen(128);  // q (64, 8, 128), k/v (64, 2, 128), two sequences
  args.max_seqlen_q = 64;
  args.max_seqlen_k = 64;
  auto r = (*l)->flash_attn_varlen_func(args, fake_stream(0));
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  const auto launch = h.driver->launches().back();
  CHECK(launch.kernel == "kernels_attn_fwd_sm90_hd128_bf16");
  CHECK(launch.image_label.find("kernels-community/attention-fa3@") == 0);
  CHECK(launch.block[0] == 384);
  CHECK((launch.grid[0] == 16 && launch.grid[1] == 1));  // 1 m-block x 8 heads x 2 sequences
  const auto maps = h.driver->tensor_maps();
  REQUIRE(maps.size() == 3);
  // Varlen: one batch of all tokens; (head dim, rows, heads, batch), 128-byte boxes.
  CHECK(maps[0].base == fake_ptr(1));
  CHECK((maps[0].dims[0] == 128 && maps[0].dims[1] == 64 && maps[0].dims[2] == 8 &&
         maps[0].dims[3] == 1));
  CHECK((maps[0].strides[0] == 8 * 128 * 2 && maps[0].strides[1] == 128 * 2));
  CHECK((maps[0].box[0] == 64 && maps[0].box[1] == 128 && maps[0].box[2] == 1));
  CHECK(maps[1].base == fake_ptr(2));
  CHECK((maps[1].dims[1] == 64 && maps[1].dims[2] == 2 && maps[1].box[1] == 128));
  CHECK(maps[2].base == fake_ptr(3));
  CHECK(maps[0].bf16);
  CHECK(h.warnings() == 0);
}

TEST_CASE("calls the TMA kernels do not cover use the portable kernels, noted once", "[loader]") {
  Harness h;
  h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  // 40 query rows: decode-like, left to the portable kernels (which pack GQA heads and split).
  for (int i = 0; i < 2; ++i) {
    CHECK(launch_label(h, **l, 128).find("kernels-community/attention-fa3@") == 0);
    CHECK(h.driver->launches().back().kernel == "kernels_attn_fwd_hd128_bf16");
  }
  CHECK(infos_containing(h, "do not cover fewer than 64 query rows") == 1);
  // Paged K/V.
  auto paged = valid_kvcache_paged(128);
  REQUIRE((*l)->flash_attn_with_kvcache(paged, fake_stream(0)).ok());
  CHECK(h.driver->launches().back().kernel.find("_sm90_") == std::string::npos);
  CHECK(h.driver->tensor_maps().empty());
  CHECK(h.warnings() == 0);
}

TEST_CASE("KERNELS_USE_BUILTIN=1 forces the built-in kernels and the bundle is never read",
          "[loader]") {
  Harness h;
  h.publish_fa3();
  SECTION("environment") { h.env["KERNELS_USE_BUILTIN"] = "1"; }
  SECTION("environment, other spelling") { h.env["KERNELS_USE_BUILTIN"] = "true"; }
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).reason == FallbackReason::forced_builtin);
  CHECK_FALSE(loaded_any_bundle(h));
  CHECK(launch_label(h, **l) == "built-in attention kernels");
}

TEST_CASE("a log sink may call back into the loader without deadlocking", "[loader]") {
  Harness h;
  Loader* loader = nullptr;
  int reentered = 0;
  auto o = h.options();
  o.log = [&](LogLevel level, std::string_view) {
    if (level != LogLevel::warning || loader == nullptr) return;
    auto s = loader->device_source(0, 3);  // same device and family the warning is about
    reentered += s.ok() && s->source == Source::builtin;
  };
  auto l = Loader::create(o);
  REQUIRE(l.ok());
  loader = l->get();
  CHECK(launch_label(h, **l) == "built-in attention kernels");
  CHECK(reentered == 1);
}

TEST_CASE("force_builtin option overrides the environment", "[loader]") {
  Harness h;
  h.publish_fa3();
  h.env["KERNELS_USE_BUILTIN"] = "1";
  auto o = h.options();
  o.force_builtin = false;
  auto l = Loader::create(o);
  REQUIRE(l.ok());
  CHECK(source_of(**l).source == Source::bundle);
}

TEST_CASE("no GPU: creation fails with no_device and says so", "[loader]") {
  // FakeDriver adds a default device when given none; a driver with zero devices is a subclass.
  struct NoDevices : FakeDriver {
    Result<int> device_count() override { return 0; }
  };
  Harness h;
  auto o = h.options();
  o.driver = std::make_shared<NoDevices>();
  auto l = Loader::create(o);
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().code == ErrorCode::no_device);
  CHECK(l.error().message().find("no CUDA device") != std::string::npos);
}

TEST_CASE("the real driver on a machine without one: no_device, never a crash", "[loader]") {
  auto d = open_cuda_driver();
  if (d.ok()) {
    auto n = (*d)->device_count();
    REQUIRE(n.ok());
    CHECK(*n >= 0);
  } else {
    CHECK(d.error().code == ErrorCode::no_device);
    CHECK_FALSE(d.error().message().empty());
  }
}

TEST_CASE("an unsupported device: bundle not chosen, calls fail before any launch", "[loader]") {
  FakeDriver::Config cfg;
  DeviceProperties turing;
  turing.name = "Fake T4";
  turing.compute_capability = {7, 5};
  turing.sm_count = 40;
  turing.max_smem_per_block_optin = 64 * 1024;
  cfg.devices = {turing};
  Harness h(cfg);
  h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).reason == FallbackReason::no_variant);
  auto args = valid_varlen();
  auto r = (*l)->flash_attn_varlen_func(args, fake_stream(0));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::no_device);
  CHECK(r.error().what.find("7.5") != std::string::npos);
  CHECK(h.driver->launches().empty());
}

TEST_CASE("a broken fallback fails at creation, not at the first request", "[loader]") {
  Harness h;
  SECTION("the built-in image lacks a kernel") {
    h.builtin = fake_image({"kernels_attn_fwd_hd64_bf16"});
  }
  SECTION("the built-in image is not loadable") { h.builtin = {'E', 'L', 'F'}; }
  auto l = h.make();
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().message().find("built-in") != std::string::npos);
}

TEST_CASE("ver=4 without an FA4 bundle is a clear error, never a silent substitution", "[loader]") {
  Harness h;
  h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  auto args = valid_varlen();
  args.ver = 4;
  auto r = (*l)->flash_attn_varlen_func(args, fake_stream(0));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::no_variant);
  CHECK(r.error().message().find("ver=4") != std::string::npos);
  CHECK(r.error().message().find("kernels-community/attention-fa4") != std::string::npos);
  CHECK(h.driver->launches().empty());
  CHECK(source_of(**l, 0, 4).source == Source::unavailable);
  CHECK(source_of(**l, 0, 3).source == Source::bundle);
}

TEST_CASE("ver=4 is served by a locked FA4 bundle", "[loader]") {
  Harness h;
  auto fa3 = add_repo(h.cache(), "kernels-community/attention-fa3",
                      {{"cubin-cu130-sm90a", bundle_files({})}});
  auto fa4 = add_repo(h.cache(), "kernels-community/attention-fa4",
                      {{"cubin-cu130-sm90a", bundle_files({.family = "fa4"})}});
  write_lock(h.default_lock(), {fa3, fa4});
  auto l = h.make();
  REQUIRE(l.ok());
  auto args = valid_varlen();
  args.ver = 4;
  REQUIRE((*l)->flash_attn_varlen_func(args, fake_stream(0)).ok());
  CHECK(h.driver->launches().back().image_label.find("kernels-community/attention-fa4@") == 0);
  args.ver = 3;
  REQUIRE((*l)->flash_attn_varlen_func(args, fake_stream(0)).ok());
  CHECK(h.driver->launches().back().image_label.find("kernels-community/attention-fa3@") == 0);
}

TEST_CASE("one warning per reason, however many devices and calls", "[loader]") {
  FakeDriver::Config cfg;
  DeviceProperties d;
  d.compute_capability = {9, 0};
  d.sm_count = 132;
  d.max_smem_per_block_optin = 227 * 1024;
  cfg.devices = {d, d, d, d};
  Harness h(cfg);
  auto l = h.make();
  REQUIRE(l.ok());
  for (int dev = 0; dev < 4; ++dev) {
    auto args = valid_varlen();
    for (auto* t : {&args.q, &args.k, &args.v, &args.out, &args.cu_seqlens_q, &args.cu_seqlens_k,
                    &args.softmax_lse})
      t->device = dev;
    for (int i = 0; i < 3; ++i) REQUIRE((*l)->flash_attn_varlen_func(args, fake_stream(dev)).ok());
  }
  CHECK(h.warnings() == 1);
  CHECK(h.driver->launches().size() == 12);
}

TEST_CASE("several threads on several devices: each device set up once, launches land on it",
          "[loader]") {
  FakeDriver::Config cfg;
  DeviceProperties d;
  d.compute_capability = {9, 0};
  d.sm_count = 132;
  d.max_smem_per_block_optin = 227 * 1024;
  cfg.devices = {d, d};
  Harness h(cfg);
  h.publish_fa3();
  auto l = h.make();
  REQUIRE(l.ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      const int dev = t % 2;
      auto args = valid_varlen();
      for (auto* x : {&args.q, &args.k, &args.v, &args.out, &args.cu_seqlens_q, &args.cu_seqlens_k,
                      &args.softmax_lse})
        x->device = dev;
      for (int i = 0; i < 50; ++i)
        if (!(*l)->flash_attn_varlen_func(args, fake_stream(dev)).ok()) ++failures;
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(h.driver->retained_contexts() == 2);
  const auto launches = h.driver->launches();
  CHECK(launches.size() == 400);
  int per_device[2] = {0, 0};
  for (const auto& x : launches) {
    ++per_device[x.device];
    CHECK(x.image_label.find("kernels-community/attention-fa3@") == 0);
  }
  CHECK(per_device[0] == 200);
  CHECK(per_device[1] == 200);
  // One bundle load shared by both devices (same capability and driver).
  int bundle_loads = 0;
  for (const auto& label : h.driver->loaded_labels())
    bundle_loads += label.find("attention-fa3") != std::string::npos;
  CHECK(bundle_loads == 1);
}

TEST_CASE("the launch carries the caller's pointers, shapes and stream", "[loader]") {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  auto args = valid_varlen();
  REQUIRE((*l)->flash_attn_varlen_func(args, fake_stream(0)).ok());
  const auto launches = h.driver->launches();
  REQUIRE(launches.size() == 1);
  const auto& x = launches[0];
  CHECK(x.kernel == "kernels_attn_fwd_hd128_bf16");
  const auto p = params_of(x);
  CHECK(p.abi_version == attention::kParamsAbiVersion);
  CHECK(p.q == args.q.data);
  CHECK(p.k == args.k.data);
  CHECK(p.out == args.out.data);
  CHECK(p.cu_seqlens_q == args.cu_seqlens_q.data);
  CHECK(p.lse == args.softmax_lse.data);
  CHECK(p.lse_layout == attention::LseLayout::head_total_q);
  CHECK(p.b == 2);
  CHECK(p.h == 8);
  CHECK(p.h_k == 2);
  CHECK(p.q_row_stride == 8 * 128);
  CHECK(p.k_head_stride == 128);
  CHECK(p.is_causal == 1);
  CHECK(p.window_right == 0);
  CHECK(p.softmax_scale == Approx(1.0 / std::sqrt(128.0)));
}

TEST_CASE("split-KV: workspace size, two launches, too small a workspace refused", "[loader]") {
  Harness h;
  auto l = h.make();
  REQUIRE(l.ok());
  auto args = valid_kvcache_paged();
  args.page_table = tensor(fake_ptr(14), KL_DTYPE_INT32, {2, 64});  // 1024 keys: 16 key blocks
  args.num_splits = 4;
  auto ws = (*l)->kvcache_workspace_size(args, fake_stream(0));
  REQUIRE(ws.ok());
  REQUIRE(*ws > 0);
  SECTION("no workspace") {
    auto r = (*l)->flash_attn_with_kvcache(args, fake_stream(0));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().object.find("workspace") != std::string::npos);
    CHECK(h.driver->launches().empty());
  }
  SECTION("enough workspace") {
    args.workspace = fake_ptr(100);
    args.workspace_bytes = *ws;
    REQUIRE((*l)->flash_attn_with_kvcache(args, fake_stream(0)).ok());
    const auto launches = h.driver->launches();
    REQUIRE(launches.size() == 2);
    CHECK(launches[1].kernel.find("combine") != std::string::npos);
  }
}

TEST_CASE("the in-memory variant hash equals the lockfile library's", "[loader]") {
  const auto files = bundle_files({});
  TempDir dir;
  const auto repo = add_repo(dir.path(), "org/name", {{"cubin-cu130-sm90a", files}});
  const auto expected = compute_variant_hashes(repo.tree).at("cubin-cu130-sm90a").hash;
  std::vector<MemoryFile> mem;
  for (const auto& f : files)
    mem.push_back({f.rel_path, f.lfs, Bytes(f.bytes.begin(), f.bytes.end()), {}});
  CHECK(variant_hash_of(mem) == expected);
  mem[0].bytes[12] ^= 1;
  CHECK(variant_hash_of(mem) != expected);
}

namespace {

// Keeps `repos` as the lock of project `project` in the harness's cache, as `kernels download`
// of that project does.
void keep_project_lock(Harness& h, const std::string& project,
                       const std::vector<CachedRepo>& repos) {
  const auto path = CacheLayout(h.cache()).project_lock_path(project);
  std::filesystem::create_directories(path.parent_path());
  write_lock(path, repos);
}

}  // namespace

TEST_CASE("projects sharing a cache: the family is found through another project's kept lock",
          "[loader]") {
  Harness h;
  const auto fa3 = h.publish_fa3();
  keep_project_lock(h, "/srv/attention-server", {fa3});
  // The project downloaded last into this cache locks another repo only.
  const auto other = add_repo(h.cache(), "org/other", {{"torch-universal", {}}});
  write_lock(h.default_lock(), {other});
  keep_project_lock(h, "/srv/other-project", {other});
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  INFO(s.why.message());
  CHECK(s.source == Source::bundle);
  CHECK(s.sha == fa3.sha);
  CHECK(h.warnings() == 0);
}

TEST_CASE(
    "projects sharing a cache at different revisions: built-in, one warning naming "
    "KERNELS_LOCKFILE",
    "[loader]") {
  Harness h;
  const auto a = h.publish_fa3();
  const auto b = h.publish_fa3({.kernels = {"kernels_attn_fwd_hd128_bf16"}});  // another commit
  REQUIRE(a.sha != b.sha);
  keep_project_lock(h, "/srv/a", {a});
  keep_project_lock(h, "/srv/b", {b});
  write_lock(h.default_lock(), {});
  auto l = h.make();
  REQUIRE(l.ok());
  const auto s = source_of(**l);
  CHECK(s.source == Source::builtin);
  CHECK(s.reason == FallbackReason::repo_not_locked);
  CHECK(h.warnings_containing("different revisions") == 1);
  CHECK(h.warnings_containing("KERNELS_LOCKFILE") == 1);
}

TEST_CASE("an explicit KERNELS_LOCKFILE is the only lock the loader reads", "[loader]") {
  Harness h;
  const auto fa3 = h.publish_fa3();
  keep_project_lock(h, "/srv/attention-server", {fa3});
  const auto mine = h.cache() / "mine.lock";
  write_lock(mine, {});
  h.env["KERNELS_LOCKFILE"] = mine.string();
  auto l = h.make();
  REQUIRE(l.ok());
  CHECK(source_of(**l).reason == FallbackReason::repo_not_locked);
}
