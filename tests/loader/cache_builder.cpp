#include "loader/cache_builder.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

#include "kernels/attention/launch_plan.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/variant_hash.h"
#include "loader/fake_driver.h"

namespace kernels::loader::testing {
namespace fs = std::filesystem;

namespace {

void must(const Result<void>& r) {
  if (!r) throw std::runtime_error(r.error().message());
}

std::string sha256_hex(const std::vector<std::uint8_t>& b) {
  Sha256 h;
  h.update(std::span<const std::uint8_t>(b));
  return h.finish_hex();
}

std::string git_sha1_hex(std::string_view b) {
  GitBlobSha1 h(b.size());
  h.update(b);
  return *h.finish_hex();
}

}  // namespace

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("kernels-loader-test-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(counter++) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string manifest_json(const ManifestSpec& spec) {
  nlohmann::json j;
  j["format_version"] = 1;
  j["family"] = spec.family;
  j["params_abi"] = spec.params_abi != 0 ? spec.params_abi : attention::kParamsAbiVersion;
  j["arch"] = spec.arch;
  j["cuda"] = "13.0";
  j["kernels"] = nlohmann::json::array();
  for (const auto& k : attention::kernel_table()) {
    if (!spec.kernels.empty() &&
        std::find(spec.kernels.begin(), spec.kernels.end(), k.name) == spec.kernels.end())
      continue;
    j["kernels"].push_back(
        {{"name", k.name},
         {"kind", k.kind == attention::KernelKind::forward ? "forward" : "combine"},
         {"head_dim", k.head_dim},
         {"head_dim_v", k.head_dim_v},
         {"dtype", k.dtype == attention::DType::bf16 ? "bf16" : "fp16"},
         {"threads", k.threads + spec.threads_delta},
         {"smem_bytes", k.smem_bytes},
         {"block_m", k.block_m},
         {"block_n", k.block_n}});
  }
  return j.dump(2);
}

std::vector<BundleFile> bundle_files(const ManifestSpec& spec,
                                     std::optional<std::vector<std::string>> image_kernels) {
  std::vector<std::string> names;
  if (image_kernels) {
    names = *image_kernels;
  } else {
    for (const auto& k : attention::kernel_table())
      if (spec.kernels.empty() ||
          std::find(spec.kernels.begin(), spec.kernels.end(), k.name) != spec.kernels.end())
        names.push_back(k.name);
  }
  const std::string manifest = manifest_json(spec);
  return {BundleFile{"attention.cubin", fake_image(names), true},
          BundleFile{"manifest.json", {manifest.begin(), manifest.end()}, false}};
}

CachedRepo add_repo(const fs::path& root, const std::string& repo_id,
                    const std::map<std::string, std::vector<BundleFile>>& variants) {
  CachedRepo repo;
  repo.repo_id = repo_id;
  // A commit id that depends on the content, like the publisher's.
  Sha256 commit;
  for (const auto& [variant, files] : variants)
    for (const auto& f : files) {
      commit.update(variant + "/" + f.rel_path);
      commit.update(std::span<const std::uint8_t>(f.bytes));
    }
  repo.sha = commit.finish_hex().substr(0, 40);
  const CacheLayout cache(root);
  for (const auto& [variant, files] : variants) {
    for (const auto& f : files) {
      TreeEntry e;
      e.path = "build/" + variant + "/" + f.rel_path;
      e.is_file = true;
      const std::string_view content(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
      std::string etag;
      if (f.lfs) {
        const std::string sha = sha256_hex(f.bytes);
        const std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" +
                                    sha + "\nsize " + std::to_string(f.bytes.size()) + "\n";
        e.oid = git_sha1_hex(pointer);
        e.size = f.bytes.size();
        e.lfs = LfsInfo{sha, f.bytes.size(), pointer.size()};
        etag = sha;
      } else {
        e.oid = git_sha1_hex(content);
        e.size = f.bytes.size();
        etag = e.oid;
      }
      const fs::path blob = cache.blob_path(repo_id, etag);
      fs::create_directories(blob.parent_path());
      std::ofstream(blob, std::ios::binary).write(content.data(), content.size());
      must(cache.link_snapshot_file(repo_id, repo.sha, e.path, etag));
      repo.tree.push_back(std::move(e));
    }
  }
  must(cache.write_tree(repo_id, repo.sha, repo.tree));
  return repo;
}

void write_lock(const fs::path& lock_path, const std::vector<CachedRepo>& repos) {
  Lockfile lock;
  for (const auto& r : repos) {
    KernelLock k;
    k.repo_id = r.repo_id;
    k.sha = r.sha;
    k.variants = compute_variant_hashes(r.tree);
    lock.kernels.push_back(std::move(k));
  }
  fs::create_directories(lock_path.parent_path());
  must(write_lockfile(lock_path, lock));
}

fs::path blob_of(const fs::path& root, const CachedRepo& repo, const std::string& repo_path) {
  for (const auto& e : repo.tree)
    if (e.path == repo_path) return CacheLayout(root).blob_path(repo.repo_id, e.digest().hex);
  throw std::runtime_error("no such file in the test repo: " + repo_path);
}

}  // namespace kernels::loader::testing
