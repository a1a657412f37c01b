// The loader: per-device, per-family state created lazily and published through atomics, so a
// call after the first on a device takes no lock. Everything a call needs from the driver is
// resolved when the device is first used (functions, shared-memory attributes), so a call is
// validate -> plan -> pick (source_select.h) -> at most two cuLaunchKernel.
#include "kernels/loader/loader.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "bundle.h"
#include "kernels/attention/launch_plan.h"
#include "kernels/lockfile/env.h"
#include "source_select.h"
#include "validate.h"
#include "value_checks.h"

#ifdef KERNELS_HAVE_BUILTIN_IMAGE
#include "kernels/attention/builtin_image.h"
#endif

namespace kernels::loader {
namespace {

constexpr int kFamilies = 2;  // ver 3, ver 4
int family_index(int ver) { return ver == 4 ? 1 : 0; }
constexpr unsigned kDefaultSmemLimit = 48 * 1024;

// A verified bundle loaded into the driver; shared by every device that selects it.
struct LoadedBundle {
  BundleOutcome outcome;  // outcome.bundle set when verification passed
  FallbackReason reason = FallbackReason::none;
  Error error;
  Library library = nullptr;
  std::unordered_map<std::string_view, Kernel> kernels;  // keys: kernel_table() names
};

struct DeviceState {
  DeviceProperties props;
  Context context = nullptr;
  FunctionMap builtin_functions;
  std::mutex family_mutex;
  std::array<std::atomic<const SourceSelection*>, kFamilies> family{};
  std::array<std::unique_ptr<const SourceSelection>, kFamilies> family_owned;
};

struct Slot {
  std::mutex mutex;
  std::atomic<DeviceState*> state{nullptr};
  std::unique_ptr<DeviceState> owned;
};

Error from_violation(const ArgViolation& v, std::string_view entry) {
  return make_error(ErrorCode::usage, v.message + " [" + v.rule + "]",
                    std::string(entry) + ": " + v.argument, v.hint);
}

}  // namespace

struct Loader::Impl {
  Options options;
  std::shared_ptr<Driver> driver;
  std::filesystem::path lockfile, cache_root;
  bool lockfile_explicit = false;  // Options::lockfile or KERNELS_LOCKFILE: no other lock is tried
  std::string repos[kFamilies];
  bool force_builtin = false;
  bool require_signed = false;
  bool debug_checks = false;

  Library builtin_library = nullptr;
  std::unordered_map<std::string_view, Kernel> builtin_kernels;
  std::unordered_map<std::string_view, const attention::KernelInfo*> table;

  std::vector<std::unique_ptr<Slot>> slots;

  std::mutex bundles_mutex;
  std::map<std::string, std::shared_ptr<LoadedBundle>> bundles;  // by family + cc + driver

  std::mutex log_mutex;
  std::set<FallbackReason> warned;
  std::set<std::string> noted;  // info messages already logged (note_once)

  ~Impl() {
    for (auto& [_, b] : bundles)
      if (b->library != nullptr) driver->unload_library(b->library);
    if (builtin_library != nullptr) driver->unload_library(builtin_library);
    for (std::size_t i = 0; i < slots.size(); ++i)
      if (slots[i]->owned) driver->release_primary_context(static_cast<int>(i));
  }

  void log(LogLevel level, const std::string& message) {
    if (options.log) {
      options.log(level, message);
    } else if (level >= LogLevel::warning) {
      std::fprintf(stderr, "kernels_loader: %s: %s\n",
                   level == LogLevel::warning ? "warning" : "error", message.c_str());
    }
  }

  void warn_once(FallbackReason reason, const std::string& message) {
    {
      std::lock_guard lock(log_mutex);
      if (!warned.insert(reason).second) return;
    }
    log(LogLevel::warning, message);
  }

  Result<void> load_builtin(std::span<const std::uint8_t> image) {
    auto lib = driver->load_library(image, "built-in attention kernels");
    if (!lib) return lib.error();
    builtin_library = *lib;
    for (const auto& info : attention::kernel_table()) {
      if (info.kind == attention::KernelKind::forward_sm90) continue;  // bundle only
      auto k = driver->library_kernel(builtin_library, info.name);
      if (!k) {
        Error e = k.error();
        e.what = "the built-in image lacks kernel " + std::string(info.name) + ": " + e.what;
        e.hint = "this library was built inconsistently; rebuild it";
        return e;
      }
      builtin_kernels.emplace(info.name, *k);
    }
    return ok();
  }

  // Resolves kernels in one context and raises their shared-memory limit once. Kernels needing
  // more than the device offers stay at the default limit: the plan never picks them there.
  Result<void> resolve_functions(const std::unordered_map<std::string_view, Kernel>& kernels,
                                 const DeviceProperties& props, Context context, FunctionMap& out) {
    for (const auto& [name, kernel] : kernels) {
      auto fn = driver->kernel_function(kernel, context);
      if (!fn) return fn.error();
      const auto it = table.find(name);
      if (it != table.end() && static_cast<unsigned>(it->second->smem_bytes) > kDefaultSmemLimit &&
          static_cast<std::size_t>(it->second->smem_bytes) <= props.max_smem_per_block_optin) {
        if (auto r = driver->set_max_dynamic_smem(*fn, context, it->second->smem_bytes); !r)
          return r.error();
      }
      out.emplace(name, *fn);
    }
    return ok();
  }

  Result<DeviceState*> device_state(int ordinal) {
    if (ordinal < 0 || ordinal >= static_cast<int>(slots.size()))
      return make_error(ErrorCode::no_device,
                        "device " + std::to_string(ordinal) + " does not exist (" +
                            std::to_string(slots.size()) + " visible)",
                        "cuda:" + std::to_string(ordinal));
    Slot& slot = *slots[ordinal];
    if (DeviceState* s = slot.state.load(std::memory_order_acquire)) return s;
    std::lock_guard lock(slot.mutex);
    if (DeviceState* s = slot.state.load(std::memory_order_acquire)) return s;
    auto state = std::make_unique<DeviceState>();
    auto props = driver->device_properties(ordinal);
    if (!props) return props.error();
    state->props = *props;
    auto ctx = driver->retain_primary_context(ordinal);
    if (!ctx) return ctx.error();
    state->context = *ctx;
    if (auto r = resolve_functions(builtin_kernels, state->props, state->context,
                                   state->builtin_functions);
        !r) {
      driver->release_primary_context(ordinal);
      Error e = r.error();
      e.what = "the built-in kernels do not load on cuda:" + std::to_string(ordinal) + " (" +
               state->props.name + ", sm_" + std::to_string(state->props.compute_capability.major) +
               std::to_string(state->props.compute_capability.minor) + "): " + e.what;
      return e;
    }
    slot.owned = std::move(state);
    slot.state.store(slot.owned.get(), std::memory_order_release);
    return slot.owned.get();
  }

  // <cache>/kernels.lock is the project downloaded last. When it does not serve the family (the
  // repo is not in it, or its files are not here), the other projects' locks in the cache may:
  // used when every one of them that serves the family agrees on the revision, else the first
  // outcome stands and the warning says to choose with KERNELS_LOCKFILE.
  BundleOutcome from_project_locks(BundleRequest req, BundleOutcome first) {
    const FallbackReason r = first.reason;
    if (r != FallbackReason::lockfile_missing && r != FallbackReason::repo_not_locked &&
        r != FallbackReason::not_downloaded)
      return first;
    std::optional<BundleOutcome> found;
    std::vector<std::string> revisions;
    for (const auto& kept : CacheLayout(cache_root).project_lockfiles()) {
      req.lockfile = kept;
      BundleOutcome o = find_verified_bundle(req);
      if (!o.bundle) continue;
      if (std::find(revisions.begin(), revisions.end(), o.sha) == revisions.end())
        revisions.push_back(o.sha);
      if (!found) found = std::move(o);
    }
    if (revisions.size() == 1) return std::move(*found);
    if (revisions.size() > 1) {
      std::string list;
      for (const auto& sha : revisions) list += (list.empty() ? "" : ", ") + sha.substr(0, 12);
      first.error.what += "; projects in this cache lock " + req.repo_id +
                          " at different revisions (" + list + ")";
      first.error.hint = "set KERNELS_LOCKFILE to the lock of the project this server runs";
    }
    return first;
  }

  std::shared_ptr<LoadedBundle> loaded_bundle(int ver, const DeviceProperties& props,
                                              MajorMinor driver_cuda) {
    const std::string key = std::string(family_name(ver)) + "/" + props.compute_capability.str() +
                            "/" + driver_cuda.str();
    std::lock_guard lock(bundles_mutex);
    if (auto it = bundles.find(key); it != bundles.end()) return it->second;
    auto b = std::make_shared<LoadedBundle>();
    BundleRequest req{lockfile,         cache_root,    repos[family_index(ver)],
                      family_name(ver), driver_cuda,   props.compute_capability,
                      options.env,      require_signed};
    b->outcome = find_verified_bundle(req);
    if (!b->outcome.bundle && !lockfile_explicit)
      b->outcome = from_project_locks(req, std::move(b->outcome));
    if (!b->outcome.bundle) {
      b->reason = b->outcome.reason;
      b->error = b->outcome.error;
    } else {
      const VerifiedBundle& vb = *b->outcome.bundle;
      auto lib = driver->load_library(vb.image, vb.repo_id + "@" + vb.sha + ":" + vb.variant);
      if (!lib) {
        b->reason = FallbackReason::load_failed;
        b->error = lib.error();
      } else {
        b->library = *lib;
        for (const std::string& name : vb.covered) {
          const auto it = table.find(name);
          if (it == table.end()) continue;  // check_manifest admits only names of the table
          auto k = driver->library_kernel(b->library, it->first.data());
          if (!k) {
            b->reason = FallbackReason::load_failed;
            b->error = make_error(ErrorCode::no_variant,
                                  "the manifest lists kernel " + name +
                                      " but the image lacks it: " + k.error().what,
                                  vb.repo_id + "@" + vb.sha + ":" + vb.variant,
                                  "the bundle is inconsistent; re-publish it");
            break;
          }
          b->kernels.emplace(it->first, *k);
        }
        if (b->reason != FallbackReason::none) {
          driver->unload_library(b->library);
          b->library = nullptr;
          b->kernels.clear();
        }
      }
    }
    bundles.emplace(key, b);
    return b;
  }

  // The source serving family `ver` on `dev`, decided on first use (the bundle searched, loaded
  // and resolved in the device's context) and published for lock-free reads.
  const SourceSelection& selection(DeviceState& dev, int ver) {
    const int fi = family_index(ver);
    if (const SourceSelection* f = dev.family[fi].load(std::memory_order_acquire)) return *f;
    std::unique_lock lock(dev.family_mutex);
    if (const SourceSelection* f = dev.family[fi].load(std::memory_order_acquire)) return *f;
    DeviceSource src;
    FunctionMap bundle_functions;
    if (force_builtin) {
      src.reason = FallbackReason::forced_builtin;
      src.why = make_error(ErrorCode::usage, "KERNELS_USE_BUILTIN is set", "KERNELS_USE_BUILTIN");
    } else if (auto cuda = driver->cuda_version(); !cuda) {
      src.reason = FallbackReason::no_variant;
      src.why = cuda.error();
    } else {
      auto b = loaded_bundle(ver, dev.props, *cuda);
      src.repo_id = b->outcome.repo_id;
      src.sha = b->outcome.sha;
      src.variant = b->outcome.variant;
      src.signer = b->outcome.signer;
      src.reason = b->reason;
      src.why = b->error;
      if (b->reason == FallbackReason::none) {
        if (auto r = resolve_functions(b->kernels, dev.props, dev.context, bundle_functions); !r) {
          src.reason = FallbackReason::load_failed;
          src.why = r.error();
          bundle_functions.clear();
        }
      }
    }
    dev.family_owned[fi] = std::make_unique<const SourceSelection>(
        SourceSelection::decide(dev.props.ordinal, ver, std::move(src),
                                std::move(bundle_functions)));
    const SourceSelection* published = dev.family_owned[fi].get();
    dev.family[fi].store(published, std::memory_order_release);
    // Published first, logged after the lock is released: a sink may call back into the loader.
    lock.unlock();
    if (published->level() == LogLevel::warning)
      warn_once(published->source().reason, published->message());
    else log(published->level(), published->message());
    return *published;
  }

  // The stream's device, set up on first use. Only primary contexts are served.
  Result<DeviceState*> stream_device(Stream stream) {
    auto ctx = driver->stream_context(stream);
    if (!ctx) return ctx.error();
    for (const auto& slot : slots) {
      DeviceState* s = slot->state.load(std::memory_order_acquire);
      if (s != nullptr && s->context == *ctx) return s;
    }
    auto ordinal = driver->context_device(*ctx);
    if (!ordinal) return ordinal.error();
    auto dev = device_state(*ordinal);
    if (!dev) return dev;
    if ((*dev)->context != *ctx)
      return make_error(
          ErrorCode::usage,
          "the stream belongs to a context that is not the primary context of cuda:" +
              std::to_string(*ordinal),
          "stream", "use streams of the device's primary context (the runtime API and PyTorch do)");
    return dev;
  }

  static attention::DeviceFacts facts(const DeviceProperties& p, int sm_margin) {
    return {p.compute_capability.major, p.compute_capability.minor, p.sm_count - sm_margin,
            p.max_smem_per_block_optin};
  }

  struct Prepared {
    DeviceState* dev = nullptr;
    ValidatedCall call;
    attention::DeviceFacts facts{};
  };

  template <class Args, class Validate>
  Result<Prepared> prepare(const Args& args, Stream stream, Validate validate,
                           std::string_view entry) {
    auto dev = stream_device(stream);
    if (!dev) return dev.error();
    Prepared p;
    p.dev = *dev;
    p.call = validate(args, p.dev->props);
    if (p.call.violation) return from_violation(*p.call.violation, entry);
    p.facts = facts(p.dev->props, args.sm_margin);
    return p;
  }

  // validate (prepare) -> plan -> pick -> launch.
  // check_values: the call's kl_*_args.check_values (-1: the loader's debug_checks).
  Result<void> run(Prepared& p, int ver, int check_values, void* workspace,
                   std::size_t workspace_bytes, Stream stream, std::string_view entry) {
    const SourceSelection& sel = selection(*p.dev, ver);
    if (auto r = sel.usable(entry); !r) return r;
    if (p.call.empty) return ok();
    if (check_values < 0 ? debug_checks : check_values != 0) {
      if (auto r = check_index_values(*driver, p.dev->context, stream, p.call.params); !r) {
        Error e = r.error();
        e.object = std::string(entry) + ": " + e.object;
        return e;
      }
    }
    auto plan = attention::plan_forward(p.call.params, p.facts, workspace, workspace_bytes);
    if (!plan) {
      Error e = plan.error();
      e.object = std::string(entry) + ": " + e.object;
      return e;
    }
    std::optional<Result<attention::LaunchPlan>> sm90;
    if (sel.offers_sm90())
      sm90.emplace(attention::plan_forward_sm90(p.call.params, p.call.k_rows, p.facts));
    std::vector<std::string> notes;
    auto pick = sel.pick(*plan, sm90 ? &*sm90 : nullptr, p.dev->builtin_functions, entry, notes);
    for (const std::string& note : notes) note_once(note);
    if (!pick) return pick.error();
    if (pick->sm90) return launch_sm90(**sm90, pick->functions[0], p, stream, entry);
    for (unsigned i = 0; i < plan->count; ++i)
      if (auto r = launch_one(plan->launches[i], pick->functions[i], p, stream, entry); !r)
        return r;
    return ok();
  }

  Result<void> launch_one(const attention::KernelLaunch& l, Function fn, const Prepared& p,
                          Stream stream, std::string_view entry) {
    void* params = const_cast<void*>(l.params_ptr());
    LaunchConfig cfg;
    cfg.function = fn;
    cfg.context = p.dev->context;
    cfg.stream = stream;
    for (int d = 0; d < 3; ++d) {
      cfg.grid[d] = l.grid[d];
      cfg.block[d] = l.block[d];
    }
    cfg.smem_bytes = l.smem_bytes;
    cfg.args = &params;
    if (auto r = driver->launch(cfg); !r) {
      Error e = r.error();
      e.object = std::string(entry) + ": " + l.kernel_name;
      return e;
    }
    return ok();
  }

  // Encodes the plan's tensor maps into its parameters (host memory the launch copies), then
  // launches.
  Result<void> launch_sm90(attention::LaunchPlan& plan, Function fn, const Prepared& p,
                           Stream stream, std::string_view entry) {
    attention::KernelLaunch& l = plan.launches[0];
    attention::TensorMap* maps[3] = {&l.tma_fwd.q, &l.tma_fwd.k, &l.tma_fwd.v};
    static constexpr const char* kNames[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; ++i) {
      const attention::TensorMapSpec& spec = l.tensor_maps[i];
      TiledTensorMap m;
      m.base = spec.base;
      m.bf16 = spec.dtype == attention::DType::bf16;
      std::copy(std::begin(spec.dims), std::end(spec.dims), m.dims);
      std::copy(std::begin(spec.strides), std::end(spec.strides), m.strides);
      std::copy(std::begin(spec.box), std::end(spec.box), m.box);
      if (auto r = driver->encode_tensor_map(m, maps[i]); !r) {
        Error e = r.error();
        e.object = std::string(entry) + ": " + kNames[i];
        return e;
      }
    }
    return launch_one(l, fn, p, stream, entry);
  }

  // Info messages that would repeat on every call are logged once per text.
  void note_once(const std::string& message) {
    {
      std::lock_guard lock(log_mutex);
      if (!noted.insert(message).second) return;
    }
    log(LogLevel::info, message);
  }
};

Loader::Loader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Loader::~Loader() = default;

Result<std::unique_ptr<Loader>> Loader::create(Options options) {
  auto impl = std::make_unique<Impl>();
  if (!options.env) options.env = process_env();
  const EnvLookup& env = options.env;
  impl->lockfile = options.lockfile ? *options.lockfile : resolve_lockfile_path(env);
  const auto lock_env = env("KERNELS_LOCKFILE");
  impl->lockfile_explicit = options.lockfile.has_value() || (lock_env && !lock_env->empty());
  impl->cache_root = options.cache_dir ? *options.cache_dir : resolve_cache_root(env);
  auto repo = [&](const std::optional<std::string>& opt, std::string_view var,
                  std::string_view def) {
    if (opt && !opt->empty()) return *opt;
    if (auto v = env(var); v && !v->empty()) return *v;
    return std::string(def);
  };
  impl->repos[0] = repo(options.fa3_repo, "KERNELS_FA3_REPO", kDefaultFa3Repo);
  impl->repos[1] = repo(options.fa4_repo, "KERNELS_FA4_REPO", kDefaultFa4Repo);
  impl->force_builtin = options.force_builtin ? *options.force_builtin
                                              : env_truthy(env, "KERNELS_USE_BUILTIN");
  impl->require_signed = options.require_signed ? *options.require_signed
                                                : env_truthy(env, "KERNELS_REQUIRE_SIGNED");
  impl->debug_checks = options.debug_checks ? *options.debug_checks
                                            : env_truthy(env, "KERNELS_LOADER_DEBUG_CHECKS");
  for (const auto& info : attention::kernel_table()) impl->table.emplace(info.name, &info);

  std::span<const std::uint8_t> image;
  if (options.builtin_image) {
    image = *options.builtin_image;
  } else {
#ifdef KERNELS_HAVE_BUILTIN_IMAGE
    const auto bytes = attention::builtin_image();
    image = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                          bytes.size());
#endif
  }
  if (image.empty())
    return make_error(ErrorCode::no_variant, "this build carries no built-in attention kernels",
                      "libkernels_loader", "rebuild with nvcc available (KERNELS_WITH_CUDA=ON)");

  if (options.driver) {
    impl->driver = options.driver;
  } else {
    auto d = open_cuda_driver();
    if (!d) return d.error();
    impl->driver = *d;
  }
  auto count = impl->driver->device_count();
  if (!count) return count.error();
  if (*count <= 0)
    return make_error(ErrorCode::no_device, "no CUDA device is visible", impl->driver->describe(),
                      "check CUDA_VISIBLE_DEVICES and nvidia-smi");
  for (int i = 0; i < *count; ++i) impl->slots.push_back(std::make_unique<Slot>());
  impl->options = std::move(options);
  if (auto r = impl->load_builtin(image); !r) {
    Error e = r.error();
    e.what = "the built-in attention kernels failed to load: " + e.what;
    return e;
  }
  return std::unique_ptr<Loader>(new Loader(std::move(impl)));
}

Result<std::size_t> Loader::varlen_workspace_size(const kl_varlen_args& args, Stream stream) {
  auto p = impl_->prepare(args, stream, validate_varlen, "flash_attn_varlen_func");
  if (!p) return p.error();
  if (p->call.empty) return std::size_t{0};
  return attention::workspace_size(p->call.params, p->facts);
}

Result<void> Loader::flash_attn_varlen_func(const kl_varlen_args& args, Stream stream) {
  auto p = impl_->prepare(args, stream, validate_varlen, "flash_attn_varlen_func");
  if (!p) return p.error();
  return impl_->run(*p, args.ver, args.check_values, args.workspace, args.workspace_bytes, stream,
                    "flash_attn_varlen_func");
}

Result<std::size_t> Loader::kvcache_workspace_size(const kl_kvcache_args& args, Stream stream) {
  auto p = impl_->prepare(args, stream, validate_kvcache, "flash_attn_with_kvcache");
  if (!p) return p.error();
  if (p->call.empty) return std::size_t{0};
  return attention::workspace_size(p->call.params, p->facts);
}

Result<void> Loader::flash_attn_with_kvcache(const kl_kvcache_args& args, Stream stream) {
  auto p = impl_->prepare(args, stream, validate_kvcache, "flash_attn_with_kvcache");
  if (!p) return p.error();
  return impl_->run(*p, args.ver, args.check_values, args.workspace, args.workspace_bytes, stream,
                    "flash_attn_with_kvcache");
}

Result<DeviceSource> Loader::device_source(int device, int ver) {
  if (ver != 3 && ver != 4)
    return make_error(ErrorCode::usage, "unknown flash attention version " + std::to_string(ver),
                      "ver", "ver is 3 or 4");
  auto dev = impl_->device_state(device);
  if (!dev) return dev.error();
  return impl_->selection(**dev, ver).source();
}

}  // namespace kernels::loader
