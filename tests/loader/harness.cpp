#include "loader/harness.h"

#include <cstring>

namespace kernels::loader::testing {

Harness::Harness(FakeDriver::Config config)
    : driver(std::make_shared<FakeDriver>(std::move(config))) {
  env["KERNELS_CACHE"] = cache().string();
  env["HOME"] = dir_.path().string();
  std::filesystem::create_directories(cache());
}

Options Harness::options() {
  Options o;
  o.env = [this](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  o.log = [this](LogLevel level, std::string_view text) {
    std::lock_guard lock(mutex_);
    log_.push_back({level, std::string(text)});
  };
  o.driver = driver;
  o.builtin_image = std::span<const std::uint8_t>(builtin);
  return o;
}

Result<std::unique_ptr<Loader>> Harness::make() { return Loader::create(options()); }

std::vector<LogLine> Harness::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

int Harness::warnings() const {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (const auto& l : log_) n += l.level == LogLevel::warning;
  return n;
}

int Harness::warnings_containing(const std::string& needle) const {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (const auto& l : log_)
    n += l.level == LogLevel::warning && l.text.find(needle) != std::string::npos;
  return n;
}

CachedRepo Harness::publish_fa3(const ManifestSpec& spec,
                                std::optional<std::vector<std::string>> image_kernels,
                                const std::string& variant, const std::string& repo) {
  auto r = add_repo(cache(), repo, {{variant, bundle_files(spec, std::move(image_kernels))}});
  write_lock(default_lock(), {r});
  return r;
}

kl_tensor tensor(void* data, int dtype, std::vector<std::int64_t> shape, int device) {
  kl_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = static_cast<std::int32_t>(shape.size());
  std::int64_t stride = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.stride[i] = stride;
    stride *= shape[i];
  }
  t.device = device;
  return t;
}

kl_varlen_args valid_varlen(int d) {
  kl_varlen_args a;
  kernels_loader_varlen_args_init(&a);
  a.q = tensor(fake_ptr(1), KL_DTYPE_BFLOAT16, {64, 8, d});
  a.k = tensor(fake_ptr(2), KL_DTYPE_BFLOAT16, {64, 2, d});
  a.v = tensor(fake_ptr(3), KL_DTYPE_BFLOAT16, {64, 2, d});
  a.out = tensor(fake_ptr(4), KL_DTYPE_BFLOAT16, {64, 8, d});
  a.cu_seqlens_q = tensor(fake_ptr(5), KL_DTYPE_INT32, {3});
  a.cu_seqlens_k = tensor(fake_ptr(6), KL_DTYPE_INT32, {3});
  a.max_seqlen_q = 40;
  a.max_seqlen_k = 40;
  a.causal = 1;
  a.softmax_lse = tensor(fake_ptr(7), KL_DTYPE_FLOAT32, {8, 64});
  return a;
}

kl_kvcache_args valid_kvcache_paged(int d) {
  kl_kvcache_args a;
  kernels_loader_kvcache_args_init(&a);
  a.q = tensor(fake_ptr(11), KL_DTYPE_BFLOAT16, {2, 1, 8, d});
  a.k_cache = tensor(fake_ptr(12), KL_DTYPE_BFLOAT16, {16, 16, 2, d});
  a.v_cache = tensor(fake_ptr(13), KL_DTYPE_BFLOAT16, {16, 16, 2, d});
  a.page_table = tensor(fake_ptr(14), KL_DTYPE_INT32, {2, 4});
  a.cache_seqlens = tensor(fake_ptr(15), KL_DTYPE_INT32, {2});
  a.out = tensor(fake_ptr(16), KL_DTYPE_BFLOAT16, {2, 1, 8, d});
  a.softmax_lse = tensor(fake_ptr(17), KL_DTYPE_FLOAT32, {2, 8, 1});
  a.causal = 1;
  a.num_splits = 1;
  return a;
}

attention::FwdParams params_of(const RecordedLaunch& launch) {
  attention::FwdParams p{};
  std::memcpy(&p, launch.params.data(), std::min(sizeof p, launch.params.size()));
  return p;
}

}  // namespace kernels::loader::testing
