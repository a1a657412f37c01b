// The runtime loader, C++ API. The C ABI in kernels/kernels_loader.h is a thin layer over this;
// read that header first for the behaviour (which kernels serve a device, fallback, validation).
//
//   auto loader = kernels::loader::Loader::create({});      // loads + checks the built-in kernels
//   if (!loader) { log(loader.error().message()); ... }
//   kl_varlen_args args; kernels_loader_varlen_args_init(&args); ...fill...
//   auto ws = (*loader)->varlen_workspace_size(args, stream);
//   auto r = (*loader)->flash_attn_varlen_func(args, stream);
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/kernels_loader.h"
#include "kernels/loader/driver.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/error.h"

namespace kernels::loader {

inline constexpr std::string_view kDefaultFa3Repo = "kernels-community/attention-fa3";
inline constexpr std::string_view kDefaultFa4Repo = "kernels-community/attention-fa4";

enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3 };
using LogSink = std::function<void(LogLevel, std::string_view message)>;

// Why a device is not served by its bundle. Each reason is logged once per Loader.
enum class FallbackReason {
  none = 0,
  forced_builtin,      // KERNELS_USE_BUILTIN=1 or Options::force_builtin
  lockfile_missing,    // no kernels.lock where the loader looks
  lockfile_invalid,    // kernels.lock does not parse
  repo_not_locked,     // the lock has no entry for the family's repo
  no_variant,          // no locked variant fits this GPU and driver
  not_downloaded,      // the cache lacks the tree or a file of the variant
  integrity_mismatch,  // a byte differs from what the lock pins
  abi_mismatch,        // manifest missing or malformed, other family / params ABI / arch / configs
  load_failed,         // the driver refused the image, or a kernel it lists is missing
  shape_not_covered,   // (per call) the bundle has no kernel for this shape: such calls run on the
                       // built-in kernels and are noted once at info level, never warned about
  unsafe_cache,  // another user can write the cache (the CLI's exit 11): nothing of it is read
  // KERNELS_REQUIRE_SIGNED=1 (Options::require_signed) and no verified signature is recorded for
  // the variant: it has no metadata.json, or `kernels download --require-signatures` never
  // recorded one for this commit and variant (lockfile/signature_record.h).
  unsigned_bundle,  // named "unsigned"
  // KERNELS_REQUIRE_SIGNED=1 and a record is there but does not vouch for the cached bytes:
  // malformed or older format, another repo / commit / variant, not verified, or naming another
  // metadata.json than the one the lock verifies.
  signature_unverified,
};
std::string_view fallback_reason_name(FallbackReason reason);

struct Options {
  std::optional<std::filesystem::path> lockfile;   // default: resolve_lockfile_path(env)
  std::optional<std::filesystem::path> cache_dir;  // default: resolve_cache_root(env)
  std::optional<std::string> fa3_repo;             // default: $KERNELS_FA3_REPO, kDefaultFa3Repo
  std::optional<std::string> fa4_repo;             // default: $KERNELS_FA4_REPO, kDefaultFa4Repo
  std::optional<bool> force_builtin;               // default: $KERNELS_USE_BUILTIN
  // Serve a bundle only when a verified signature is recorded for its variant (reasons
  // unsigned_bundle, signature_unverified). Default: $KERNELS_REQUIRE_SIGNED.
  std::optional<bool> require_signed;
  // Also check index values (cu_seqlens, cache_seqlens, page ids) before each launch; this
  // synchronises the stream. Default: $KERNELS_LOADER_DEBUG_CHECKS.
  std::optional<bool> debug_checks;
  EnvLookup env;                   // default: the process environment
  LogSink log;                     // default: warnings and errors to stderr
  std::shared_ptr<Driver> driver;  // default: open_cuda_driver()
  // Default: the image built into this library. Tests substitute their own.
  std::optional<std::span<const std::uint8_t>> builtin_image;
};

enum class Source { unavailable = 0, bundle = 1, builtin = 2 };

struct DeviceSource {
  Source source = Source::unavailable;
  FallbackReason reason = FallbackReason::none;  // why not the bundle
  Error why;                                     // the failure behind `reason`
  std::string repo_id, sha, variant;             // as far as the search got
  std::string signer;  // the recorded build signer, when require_signed and the bundle serves
};

class Loader {
 public:
  // Opens the driver (unless given) and loads and checks the built-in kernels; a missing or
  // broken fallback is an error here, not at the first request.
  static Result<std::unique_ptr<Loader>> create(Options options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  Result<std::size_t> varlen_workspace_size(const kl_varlen_args& args, Stream stream);
  Result<void> flash_attn_varlen_func(const kl_varlen_args& args, Stream stream);
  Result<std::size_t> kvcache_workspace_size(const kl_kvcache_args& args, Stream stream);
  Result<void> flash_attn_with_kvcache(const kl_kvcache_args& args, Stream stream);

  // Which kernels serve (device, ver); decides (and loads) on first use.
  Result<DeviceSource> device_source(int device, int ver);

  struct Impl;

 private:
  explicit Loader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kernels::loader
