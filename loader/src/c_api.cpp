// The C ABI: one process-wide Loader, created by kernels_loader_init or the first call. Errors
// become a status and a per-thread message; no exception crosses this boundary.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <string>

#include "kernels/kernels_loader.h"
#include "kernels/loader/loader.h"

namespace {

using kernels::Error;
using kernels::ErrorCode;
using kernels::loader::Loader;

thread_local std::string t_last_error;

std::mutex g_mutex;
// Never destroyed: at process exit the driver may already be shutting down, and a server never
// wants attention kernels unloaded under a late call from another thread.
Loader* g_loader = nullptr;
std::atomic<Loader*> g_loader_fast{nullptr};
Error g_init_error;
bool g_init_failed = false;
std::string g_init_key;
std::mutex g_sink_mutex;  // separate from g_mutex: init logs while holding that one
kl_log_sink g_sink = nullptr;
void* g_sink_user = nullptr;

int fail(const Error& e) {
  t_last_error = e.message();
  return static_cast<int>(e.code);
}

std::string options_key(const kl_options* o) {
  if (o == nullptr) return "<defaults>";
  auto s = [](const char* p) { return p ? std::string(p) : std::string("<env>"); };
  return s(o->lockfile) + "|" + s(o->cache_dir) + "|" + s(o->fa3_repo) + "|" + s(o->fa4_repo) +
         "|" + std::to_string(o->force_builtin);
}

int init_locked(const kl_options* o) {
  const std::string key = options_key(o);
  if (g_loader || g_init_failed) {
    if (o != nullptr && key != g_init_key)
      return fail(kernels::make_error(ErrorCode::usage,
                                      "kernels_loader_init called again with different options",
                                      "kernels_loader_init",
                                      "initialise once, before the first attention call"));
    if (g_init_failed) return fail(g_init_error);
    return KL_OK;
  }
  kernels::loader::Options options;
  if (o != nullptr) {
    if (o->lockfile) options.lockfile = o->lockfile;
    if (o->cache_dir) options.cache_dir = o->cache_dir;
    if (o->fa3_repo) options.fa3_repo = o->fa3_repo;
    if (o->fa4_repo) options.fa4_repo = o->fa4_repo;
    if (o->force_builtin >= 0) options.force_builtin = o->force_builtin != 0;
  }
  // The sink is looked up per message, so kernels_loader_set_log_sink works at any time.
  options.log = [](kernels::loader::LogLevel level, std::string_view msg) {
    kl_log_sink sink = nullptr;
    void* user = nullptr;
    {
      std::lock_guard lock(g_sink_mutex);
      sink = g_sink;
      user = g_sink_user;
    }
    const std::string text(msg);
    if (sink != nullptr) {
      sink(static_cast<int>(level), text.c_str(), user);
    } else if (level >= kernels::loader::LogLevel::warning) {
      std::fprintf(stderr, "kernels_loader: %s: %s\n",
                   level == kernels::loader::LogLevel::warning ? "warning" : "error", text.c_str());
    }
  };
  g_init_key = key;
  auto loader = Loader::create(std::move(options));
  if (!loader) {
    g_init_failed = true;
    g_init_error = loader.error();
    return fail(g_init_error);
  }
  g_loader = loader->release();
  g_loader_fast.store(g_loader, std::memory_order_release);
  return KL_OK;
}

Loader* get_loader(int* status) {
  if (Loader* l = g_loader_fast.load(std::memory_order_acquire)) return l;
  std::lock_guard lock(g_mutex);
  *status = init_locked(nullptr);
  return g_loader;
}

template <class F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    t_last_error = "kernels_loader: out of host memory";
    return KL_ERR_INTERNAL;
  } catch (const std::exception& e) {
    t_last_error = std::string("kernels_loader: internal error: ") + e.what();
    return KL_ERR_INTERNAL;
  } catch (...) {
    t_last_error = "kernels_loader: internal error";
    return KL_ERR_INTERNAL;
  }
}

// Runs `f(loader)` with the process-wide loader, made on first use; every C entry point that
// needs the loader goes through here, so none can let an exception or a null loader escape.
template <class F>
int with_loader(F&& f) {
  return guarded([&] {
    int status = KL_OK;
    Loader* l = get_loader(&status);
    return l == nullptr ? status : f(*l);
  });
}

int null_arg(const char* what) {
  t_last_error = std::string("kernels_loader: ") + what + " is NULL";
  return KL_ERR_INVALID_ARGUMENT;
}

// The first published size of each struct (ABI 1). A struct only grows at its end; when it does,
// these stay, and a caller built against an older header keeps working.
constexpr std::uint32_t kFirstVarlenArgsSize = 1400;
constexpr std::uint32_t kFirstKvcacheArgsSize = 2016;
constexpr std::uint32_t kFirstOptionsSize = 48;
// kl_source_info up to and including `variant` (the layout that first carried struct_size).
constexpr std::uint32_t kFirstSourceInfoSize = 764;
static_assert(sizeof(kl_varlen_args) >= kFirstVarlenArgsSize &&
              sizeof(kl_kvcache_args) >= kFirstKvcacheArgsSize &&
              sizeof(kl_options) >= kFirstOptionsSize &&
              sizeof(kl_source_info) >= kFirstSourceInfoSize);

// A caller's struct in this library's layout. struct_size says which header the caller was built
// with: a newer caller's larger struct is accepted when every byte this library does not know is
// zero (fields at their "not given" value); an older caller's smaller one (down to the first
// published size) keeps the _init defaults for the fields it lacks. Checked before the driver is
// needed, so a mismatch is reported the same way on a machine without a GPU.
template <class Args>
std::optional<Args> adopt(const Args& caller, void (*init)(Args*), std::uint32_t first_size,
                          const char* name, const char* init_name, int* status) {
  auto refuse = [&](std::string why) {
    t_last_error = std::string("kernels_loader: ") + name + ".struct_size is " +
                   std::to_string(caller.struct_size) + ": " + why + "\nhint: initialise it with " +
                   init_name + "() from the kernels_loader.h this library was built with";
    *status = KL_ERR_INVALID_ARGUMENT;
    return std::nullopt;
  };
  const std::uint32_t size = caller.struct_size;
  if (size < first_size)
    return refuse("smaller than any published layout (" + std::to_string(first_size) + " bytes)");
  if (size > (1u << 20)) return refuse("not a size this struct can have");
  const auto* bytes = reinterpret_cast<const unsigned char*>(&caller);
  for (std::uint32_t i = sizeof(Args); i < size; ++i)
    if (bytes[i] != 0)
      return refuse("byte " + std::to_string(i) + " sets a field this library (" +
                    std::to_string(sizeof(Args)) + " bytes) does not know");
  Args out;
  init(&out);
  std::memcpy(&out, &caller, std::min<std::size_t>(size, sizeof(Args)));
  out.struct_size = sizeof(Args);
  return out;
}

}  // namespace

extern "C" {

void kernels_loader_options_init(kl_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->force_builtin = -1;
}

void kernels_loader_varlen_args_init(kl_varlen_args* a) {
  if (a == nullptr) return;
  std::memset(a, 0, sizeof *a);
  a->struct_size = sizeof *a;
  a->ver = 3;
  a->max_seqlen_q = -1;
  a->max_seqlen_k = -1;
  a->window_left = a->window_right = -1;
  a->num_splits = 1;  // FA3's varlen default
  a->pack_gqa = -1;
  a->check_values = -1;
}

void kernels_loader_source_info_init(kl_source_info* info) {
  if (info == nullptr) return;
  std::memset(info, 0, sizeof *info);
  info->struct_size = sizeof *info;
}

void kernels_loader_kvcache_args_init(kl_kvcache_args* a) {
  if (a == nullptr) return;
  std::memset(a, 0, sizeof *a);
  a->struct_size = sizeof *a;
  a->ver = 3;
  a->max_seqlen_q = -1;
  a->window_left = a->window_right = -1;
  a->rotary_interleaved = 1;
  a->num_splits = 0;  // FA3's kvcache default: heuristic
  a->pack_gqa = -1;
  a->check_values = -1;
}

int kernels_loader_init(const kl_options* options) {
  return guarded([&] {
    std::optional<kl_options> adopted;
    if (options != nullptr) {
      int status = KL_OK;
      adopted = adopt(*options, kernels_loader_options_init, kFirstOptionsSize, "kl_options",
                      "kernels_loader_options_init", &status);
      if (!adopted) return status;
    }
    std::lock_guard lock(g_mutex);
    return init_locked(adopted ? &*adopted : nullptr);
  });
}

void kernels_loader_set_log_sink(kl_log_sink sink, void* user) {
  std::lock_guard lock(g_sink_mutex);
  g_sink = sink;
  g_sink_user = user;
}

int kernels_loader_varlen_workspace_size(const kl_varlen_args* args, void* stream, size_t* bytes) {
  if (args == nullptr) return null_arg("args");
  if (bytes == nullptr) return null_arg("bytes");
  int status = KL_OK;
  const auto a = adopt(*args, kernels_loader_varlen_args_init, kFirstVarlenArgsSize,
                       "kl_varlen_args", "kernels_loader_varlen_args_init", &status);
  if (!a) return status;
  return with_loader([&](Loader& l) {
    auto r = l.varlen_workspace_size(*a, stream);
    if (!r) return fail(r.error());
    *bytes = *r;
    return static_cast<int>(KL_OK);
  });
}

int kernels_loader_flash_attn_varlen_func(const kl_varlen_args* args, void* stream) {
  if (args == nullptr) return null_arg("args");
  int status = KL_OK;
  const auto a = adopt(*args, kernels_loader_varlen_args_init, kFirstVarlenArgsSize,
                       "kl_varlen_args", "kernels_loader_varlen_args_init", &status);
  if (!a) return status;
  return with_loader([&](Loader& l) {
    auto r = l.flash_attn_varlen_func(*a, stream);
    return r ? static_cast<int>(KL_OK) : fail(r.error());
  });
}

int kernels_loader_kvcache_workspace_size(const kl_kvcache_args* args, void* stream,
                                          size_t* bytes) {
  if (args == nullptr) return null_arg("args");
  if (bytes == nullptr) return null_arg("bytes");
  int status = KL_OK;
  const auto a = adopt(*args, kernels_loader_kvcache_args_init, kFirstKvcacheArgsSize,
                       "kl_kvcache_args", "kernels_loader_kvcache_args_init", &status);
  if (!a) return status;
  return with_loader([&](Loader& l) {
    auto r = l.kvcache_workspace_size(*a, stream);
    if (!r) return fail(r.error());
    *bytes = *r;
    return static_cast<int>(KL_OK);
  });
}

int kernels_loader_flash_attn_with_kvcache(const kl_kvcache_args* args, void* stream) {
  if (args == nullptr) return null_arg("args");
  int status = KL_OK;
  const auto a = adopt(*args, kernels_loader_kvcache_args_init, kFirstKvcacheArgsSize,
                       "kl_kvcache_args", "kernels_loader_kvcache_args_init", &status);
  if (!a) return status;
  return with_loader([&](Loader& l) {
    auto r = l.flash_attn_with_kvcache(*a, stream);
    return r ? static_cast<int>(KL_OK) : fail(r.error());
  });
}

int kernels_loader_device_source(int device, int ver, kl_source_info* info) {
  if (info == nullptr) return null_arg("info");
  // An output struct: a newer caller's larger one gets its extra bytes zeroed, an older one
  // (down to the first layout with struct_size) only the fields it has.
  const std::uint32_t size = info->struct_size;
  if (size < kFirstSourceInfoSize || size > (1u << 20)) {
    t_last_error = "kernels_loader: info.struct_size is " + std::to_string(size) +
                   ": not a kl_source_info layout\nhint: initialise it with "
                   "kernels_loader_source_info_init() from the kernels_loader.h this library "
                   "was built with";
    return static_cast<int>(KL_ERR_INVALID_ARGUMENT);
  }
  kl_source_info full;
  kernels_loader_source_info_init(&full);
  kl_source_info* out = &full;
  const int rc = guarded([&] {
    int status = KL_OK;
    Loader* l = get_loader(&status);
    if (l == nullptr) return status;
    auto r = l->device_source(device, ver);
    if (!r) return fail(r.error());
    auto copy = [](char* dst, std::size_t cap, const std::string& s) {
      const std::size_t n = std::min(cap - 1, s.size());
      std::memcpy(dst, s.data(), n);
      dst[n] = '\0';
    };
    out->source = static_cast<int32_t>(r->source);
    out->reason_code = r->reason == kernels::loader::FallbackReason::none
                           ? KL_OK
                           : static_cast<int>(r->why.code);
    if (r->reason != kernels::loader::FallbackReason::none)
      copy(out->reason, sizeof out->reason,
           std::string(kernels::loader::fallback_reason_name(r->reason)) + ": " + r->why.message());
    copy(out->repo_id, sizeof out->repo_id, r->repo_id);
    copy(out->sha, sizeof out->sha, r->sha);
    copy(out->variant, sizeof out->variant, r->variant);
    return static_cast<int>(KL_OK);
  });
  std::memset(info, 0, size);
  std::memcpy(info, &full, std::min<std::size_t>(size, sizeof full));
  info->struct_size = size;
  return rc;
}

const char* kernels_loader_last_error(void) { return t_last_error.c_str(); }

int kernels_loader_abi_version(void) { return KERNELS_LOADER_ABI_VERSION; }

}  // extern "C"
