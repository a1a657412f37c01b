#include "bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "kernels/attention/launch_plan.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/cache_safety.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/signature_record.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"

namespace kernels::loader {
namespace {

constexpr std::string_view kImageFile = "attention.cubin";
constexpr std::string_view kManifestFile = "manifest.json";
constexpr std::string_view kMetadataFile = "metadata.json";
constexpr std::uint64_t kMaxFileBytes = 4ull << 30;
constexpr std::uint64_t kChunk = 1 << 20;

const char* dtype_text(attention::DType d) { return d == attention::DType::bf16 ? "bf16" : "fp16"; }

BundleOutcome fail(BundleOutcome out, FallbackReason reason, Error error) {
  out.reason = reason;
  out.error = std::move(error);
  return out;
}

struct ReadFile {
  Bytes bytes;
  std::string digest_hex;
};

// Reads `size` bytes of `fd` into `dst`, hashing each chunk once it is in. Large files are read
// by a second thread so that reading (page faults, copies) overlaps hashing; the digest is
// always of exactly the bytes left in `dst`. Returns 0 or an errno (-1: the file shrank).
int read_hashing(int fd, std::uint8_t* dst, std::uint64_t size, ContentDigest& hasher) {
  auto read_some = [fd, dst, size](std::uint64_t done) -> std::int64_t {
    const ssize_t n = read_retrying(fd, dst + done, std::min(kChunk, size - done));
    if (n < 0) return -errno;
    if (n == 0) return -1000000;  // shrank
    return n;
  };
  auto as_errno = [](std::int64_t r) { return r == -1000000 ? -1 : static_cast<int>(-r); };
  if (size < 8 * kChunk) {
    std::uint64_t done = 0;
    while (done < size) {
      const std::int64_t n = read_some(done);
      if (n < 0) return as_errno(n);
      hasher.update({dst + done, static_cast<std::size_t>(n)});
      done += static_cast<std::uint64_t>(n);
    }
    return 0;
  }
  constexpr std::uint64_t kFailed = ~std::uint64_t{0};
  std::atomic<std::uint64_t> ready{0};
  std::int64_t reader_error = 0;
  std::thread reader([&] {
    std::uint64_t done = 0;
    while (done < size) {
      const std::int64_t n = read_some(done);
      if (n < 0) {
        reader_error = n;
        ready.store(kFailed, std::memory_order_release);
        ready.notify_one();
        return;
      }
      done += static_cast<std::uint64_t>(n);
      ready.store(done, std::memory_order_release);
      ready.notify_one();
    }
  });
  std::uint64_t hashed = 0;
  while (hashed < size) {
    std::uint64_t r = ready.load(std::memory_order_acquire);
    while (r == hashed) {
      ready.wait(r, std::memory_order_acquire);
      r = ready.load(std::memory_order_acquire);
    }
    if (r == kFailed) break;
    hasher.update({dst + hashed, static_cast<std::size_t>(r - hashed)});
    hashed = r;
  }
  reader.join();
  return reader_error != 0 ? as_errno(reader_error) : 0;
}

// Reads a whole regular file (symlinks into blobs/ are followed, as the cache is laid out that
// way) whose size must be `expected`, and the digest of exactly the bytes returned.
Result<ReadFile> read_and_hash(const std::filesystem::path& path, std::uint64_t expected,
                               FileDigest::Kind kind) {
  // O_NONBLOCK: a FIFO planted in the cache would block open() until a writer came; the fstat
  // below then refuses it. Reads of a regular file ignore the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? ErrorCode::offline_not_cached : ErrorCode::io,
                      std::string("cannot open: ") + std::strerror(e), path.string(),
                      "run `kernels download` for this project");
  }
  struct stat st {};
  ReadFile out;
  Error error;
  bool good = ::fstat(fd, &st) == 0;
  if (!good)
    error = make_error(ErrorCode::io, std::string("fstat: ") + std::strerror(errno), path.string());
  if (good && !S_ISREG(st.st_mode)) {
    good = false;
    error = make_error(ErrorCode::unsafe, "not a regular file", path.string());
  }
  if (good && static_cast<std::uint64_t>(st.st_size) != expected) {
    good = false;
    error = make_error(ErrorCode::integrity_mismatch,
                       "size " + std::to_string(st.st_size) + " differs from the locked tree's " +
                           std::to_string(expected),
                       path.string(), "re-run `kernels download`; the cached file is damaged");
  }
  if (good && expected > kMaxFileBytes) {
    good = false;
    error = make_error(ErrorCode::unsafe, "file larger than 4 GiB", path.string());
  }
  if (good) {
    out.bytes.resize(expected);
    ContentDigest hasher(kind, expected);
    if (const int e = read_hashing(fd, out.bytes.data(), expected, hasher); e != 0) {
      good = false;
      error = make_error(ErrorCode::io,
                         e == -1 ? std::string("file shrank while being read")
                                 : std::string("read: ") + std::strerror(e),
                         path.string());
    } else {
      // A git sha1 over other than `expected` bytes cannot happen here (read_hashing read
      // exactly that many); an empty digest would fail the comparison with the tree anyway.
      Result<std::string> hex = hasher.finish_hex();
      out.digest_hex = hex ? std::move(*hex) : std::string();
    }
  }
  ::close(fd);
  if (!good) return error;
  return out;
}

}  // namespace

std::string_view fallback_reason_name(FallbackReason reason) {
  switch (reason) {
    case FallbackReason::none: return "none";
    case FallbackReason::forced_builtin: return "forced_builtin";
    case FallbackReason::lockfile_missing: return "lockfile_missing";
    case FallbackReason::lockfile_invalid: return "lockfile_invalid";
    case FallbackReason::repo_not_locked: return "repo_not_locked";
    case FallbackReason::no_variant: return "no_variant";
    case FallbackReason::not_downloaded: return "not_downloaded";
    case FallbackReason::integrity_mismatch: return "integrity_mismatch";
    case FallbackReason::abi_mismatch: return "abi_mismatch";
    case FallbackReason::load_failed: return "load_failed";
    case FallbackReason::shape_not_covered: return "shape_not_covered";
    case FallbackReason::unsafe_cache: return "unsafe_cache";
    case FallbackReason::unsigned_bundle: return "unsigned";
    case FallbackReason::signature_unverified: return "signature_unverified";
  }
  return "unknown";
}

Result<std::set<std::string>> check_manifest(const BundleManifest& m, std::string_view family,
                                             const VariantName& variant, std::string_view source) {
  auto mismatch = [&](std::string what) {
    return make_error(
        ErrorCode::no_variant, std::move(what), std::string(source),
        "the bundle was built for another loader; lock a bundle built with params ABI " +
            std::to_string(attention::kParamsAbiVersion));
  };
  if (m.family != family)
    return mismatch("family \"" + m.family + "\" is not the requested \"" + std::string(family) +
                    "\"");
  if (m.params_abi != attention::kParamsAbiVersion)
    return mismatch("params ABI " + std::to_string(m.params_abi) + " differs from this library's " +
                    std::to_string(attention::kParamsAbiVersion));
  const std::string want_arch = "sm" + std::to_string(variant.sm) +
                                (variant.arch_specific ? "a" : "");
  if (m.arch != want_arch)
    return mismatch("arch \"" + m.arch + "\" does not match the variant's " + want_arch);
  std::map<std::string_view, const attention::KernelInfo*> table;
  for (const auto& info : attention::kernel_table()) table.emplace(info.name, &info);
  std::set<std::string> covered;
  for (const auto& k : m.kernels) {
    auto it = table.find(k.name);
    if (it == table.end())
      return mismatch("kernel \"" + k.name + "\" is unknown to this library's launch plan");
    const auto& info = *it->second;
    if (info.threads != k.threads || info.smem_bytes != k.smem_bytes ||
        info.head_dim != k.head_dim || info.head_dim_v != k.head_dim_v ||
        k.dtype != dtype_text(info.dtype) || (k.block_m != 0 && k.block_m != info.block_m) ||
        (k.block_n != 0 && k.block_n != info.block_n))
      return mismatch(
          "kernel \"" + k.name + "\" has another configuration (threads " +
          std::to_string(k.threads) + ", smem " + std::to_string(k.smem_bytes) + ", head dims " +
          std::to_string(k.head_dim) + "/" + std::to_string(k.head_dim_v) + ", " + k.dtype +
          ") than the launch plan assumes (threads " + std::to_string(info.threads) + ", smem " +
          std::to_string(info.smem_bytes) + ", head dims " + std::to_string(info.head_dim) + "/" +
          std::to_string(info.head_dim_v) + ", " + dtype_text(info.dtype) + ")");
    covered.insert(k.name);
  }
  if (covered.empty()) return mismatch("the manifest lists no kernels");
  return covered;
}

std::string variant_hash_of(const std::vector<MemoryFile>& files) {
  std::vector<VariantFileDigest> digests;
  for (const MemoryFile& f : files) {
    if (is_bytecode_path(f.rel_path)) continue;
    // Files checked against the tree carry their digest already: each byte is hashed once.
    const auto kind = f.lfs ? FileDigest::Kind::sha256 : FileDigest::Kind::git_sha1;
    digests.push_back(
        {f.rel_path, f.digest_hex.empty() ? ContentDigest::of(f.bytes, kind) : f.digest_hex});
  }
  return git_lfs_concat_hash(std::move(digests));
}

BundleOutcome find_verified_bundle(const BundleRequest& req) {
  BundleOutcome out;
  out.repo_id = req.repo_id;
  // The CLI's rule, before anything of the cache is read: a lock or a bundle that another user
  // could have written is not trusted, however well it verifies against itself.
  if (auto safe = check_cache_permissions(CacheLayout(req.cache_root), req.env); !safe)
    return fail(std::move(out), FallbackReason::unsafe_cache, std::move(safe).error());
  const std::string lock_object = req.lockfile.string();
  auto lock = read_lockfile(req.lockfile);
  if (!lock) {
    const bool missing = lock.error().code == ErrorCode::lockfile_missing;
    Error e = lock.error();
    if (missing && e.hint.empty())
      e.hint = "run `kernels lock` and `kernels download`, or set KERNELS_LOCKFILE";
    return fail(std::move(out),
                missing ? FallbackReason::lockfile_missing : FallbackReason::lockfile_invalid,
                std::move(e));
  }
  const KernelLock* entry = lock->find(req.repo_id);
  if (entry == nullptr)
    return fail(std::move(out), FallbackReason::repo_not_locked,
                make_error(ErrorCode::lockfile_stale, "no entry for " + req.repo_id, lock_object,
                           "add the repo to [tool.kernels.dependencies] and run `kernels lock`, or "
                           "name the locked repo with KERNELS_FA3_REPO / KERNELS_FA4_REPO"));
  out.sha = entry->sha;
  if (entry->variants.empty())
    return fail(
        std::move(out), FallbackReason::no_variant,
        make_error(ErrorCode::no_variant,
                   "the lock pins no variant hashes for " + req.repo_id +
                       ", so nothing of it can be verified",
                   lock_object,
                   "a format 2 (kernels 0.17) lock keeps them in kernels.lock.hashes beside "
                   "it: run `kernels lock` in the project, then `kernels download`, which "
                   "copies both into the cache"));

  std::vector<std::string> names;
  for (const auto& [name, _] : entry->variants) names.push_back(name);
  SystemInfo system;
  system.backend = Backend{"cuda", req.driver_cuda};
  system.driver_cuda = req.driver_cuda;
  system.compute_capability = req.compute_capability;
  const VariantSelection selection = select_variant(names, system);
  if (!selection.chosen) {
    std::string listing;
    for (const auto& d : selection.trace) listing += "\n  " + d.variant + ": " + d.reason;
    return fail(
        std::move(out), FallbackReason::no_variant,
        make_error(ErrorCode::no_variant,
                   "no locked variant of " + req.repo_id + " fits compute capability " +
                       req.compute_capability.str() + " with a CUDA " + req.driver_cuda.str() +
                       " driver; available:" + (listing.empty() ? std::string(" none") : listing),
                   lock_object, "lock a bundle built for this GPU, or use the built-in kernels"));
  }
  const std::string variant = *selection.chosen;
  out.variant = variant;
  auto vname = parse_variant_name(variant);
  if (!vname || vname->kind != VariantName::Kind::cubin)
    return fail(std::move(out), FallbackReason::no_variant,
                make_error(ErrorCode::no_variant, "variant " + variant + " is not a cubin variant",
                           lock_object, "lock a cubin-cu<MAJ><MIN>-sm<CC> variant"));
  const VariantLock& vlock = entry->variants.at(variant);

  // Checked once here (the lock reader accepted it, so this cannot fail); the cache paths below
  // take it without checking again.
  const std::optional<RepoId> repo = RepoId::parse(entry->repo_id);
  if (!repo)
    return fail(std::move(out), FallbackReason::lockfile_invalid,
                CacheLayout::check_names(entry->repo_id).error());
  const CacheLayout cache(req.cache_root);
  auto tree = cache.read_tree(*repo, entry->sha);
  if (!tree) {
    Error e = tree.error();
    e.hint = "run `kernels download` so the cache holds " + req.repo_id + "@" + entry->sha;
    return fail(std::move(out), FallbackReason::not_downloaded, std::move(e));
  }
  const auto tree_hashes = compute_variant_hashes(*tree);
  const auto th = tree_hashes.find(variant);
  if (th == tree_hashes.end() || th->second.hash != vlock.hash)
    return fail(std::move(out), FallbackReason::integrity_mismatch,
                make_error(ErrorCode::integrity_mismatch,
                           "the cached tree of " + variant + " hashes to " +
                               (th == tree_hashes.end() ? std::string("nothing")
                                                        : th->second.hash) +
                               ", the lock pins " + vlock.hash,
                           cache.tree_path(*repo, entry->sha).string(),
                           "re-run `kernels download`; if it persists, the lock is stale"));

  const std::string prefix = "build/" + variant + "/";
  std::vector<MemoryFile> files;
  for (const TreeEntry& t : variant_files(*tree, variant)) {
    const auto path = cache.snapshot_file(*repo, entry->sha, t.path);
    const FileDigest digest = t.digest();
    auto read = read_and_hash(path, t.content_size(), digest.kind);
    if (!read) {
      const auto code = read.error().code;
      return fail(std::move(out),
                  code == ErrorCode::offline_not_cached ? FallbackReason::not_downloaded
                                                        : FallbackReason::integrity_mismatch,
                  std::move(read).error());
    }
    MemoryFile file{t.path.substr(prefix.size()), digest.kind == FileDigest::Kind::sha256,
                    std::move(read->bytes), std::move(read->digest_hex)};
    if (file.digest_hex != digest.hex)
      return fail(std::move(out), FallbackReason::integrity_mismatch,
                  make_error(ErrorCode::integrity_mismatch,
                             "content hashes to " + file.digest_hex + ", the locked tree says " +
                                 digest.hex,
                             path.string(),
                             "re-run `kernels download`; the cached file is damaged"));
    files.push_back(std::move(file));
  }
  // The lock's hash, recomputed over the bytes that will be handed to the driver.
  const std::string computed = variant_hash_of(files);
  if (computed != vlock.hash)
    return fail(std::move(out), FallbackReason::integrity_mismatch,
                make_error(ErrorCode::integrity_mismatch,
                           "bytes in memory hash to " + computed + ", the lock pins " + vlock.hash,
                           cache.snapshot_dir(*repo, entry->sha).string() + "/" + prefix,
                           "re-run `kernels download`"));

  auto find_file = [&](std::string_view name) -> MemoryFile* {
    for (auto& f : files)
      if (f.rel_path == name) return &f;
    return nullptr;
  };
  if (req.require_signed) {
    // The record vouches for metadata.json's bytes, which the lock's hash above covers, and
    // metadata.json's digest covers the variant's other files (checked by `kernels download`).
    const MemoryFile* metadata = find_file(kMetadataFile);
    if (metadata == nullptr)
      return fail(std::move(out), FallbackReason::unsigned_bundle,
                  make_error(ErrorCode::integrity_mismatch,
                             "variant " + variant +
                                 " has no metadata.json, so nothing of it is signed",
                             cache.snapshot_dir(*repo, entry->sha).string() + "/" + prefix,
                             "lock a signed bundle, or unset KERNELS_REQUIRE_SIGNED"));
    SignatureCheck signature = check_signature_record(cache, entry->repo_id, entry->sha, variant,
                                                      metadata->bytes);
    if (signature.state != SignatureCheck::State::verified)
      return fail(std::move(out),
                  signature.state == SignatureCheck::State::no_record
                      ? FallbackReason::unsigned_bundle
                      : FallbackReason::signature_unverified,
                  std::move(signature.why));
    out.signer = signature.record->build_signer_uri;
  }
  const std::string manifest_object =
      cache.snapshot_file(*repo, entry->sha, prefix + std::string(kManifestFile)).string();
  MemoryFile* manifest_file = find_file(kManifestFile);
  MemoryFile* image_file = find_file(kImageFile);
  if (manifest_file == nullptr || image_file == nullptr)
    return fail(std::move(out), FallbackReason::abi_mismatch,
                make_error(ErrorCode::no_variant,
                           std::string("the variant has no ") +
                               std::string(manifest_file == nullptr ? kManifestFile : kImageFile),
                           cache.snapshot_dir(*repo, entry->sha).string() + "/" + prefix,
                           "a loader bundle holds attention.cubin and manifest.json"));
  auto manifest = parse_bundle_manifest(std::string_view(reinterpret_cast<const char*>(
                                                             manifest_file->bytes.data()),
                                                         manifest_file->bytes.size()),
                                        manifest_object);
  if (!manifest) return fail(std::move(out), FallbackReason::abi_mismatch, manifest.error());
  auto covered = check_manifest(*manifest, req.family, *vname, manifest_object);
  if (!covered) return fail(std::move(out), FallbackReason::abi_mismatch, covered.error());

  VerifiedBundle bundle;
  bundle.repo_id = req.repo_id;
  bundle.sha = entry->sha;
  bundle.variant = variant;
  bundle.image = std::move(image_file->bytes);
  bundle.manifest = std::move(*manifest);
  bundle.covered = std::move(*covered);
  out.bundle = std::move(bundle);
  return out;
}

}  // namespace kernels::loader
