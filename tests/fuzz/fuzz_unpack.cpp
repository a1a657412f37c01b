// libFuzzer target: `kernels unpack` (cli/pack/unpack.cpp) over any archive bytes, against a
// small fixed lock (one repo, two variants, an LFS file and two files sharing one blob). Any
// input must give a summary or an unsafe (11), integrity_mismatch (6) or lockfile_invalid (5)
// error, never a crash, a hang or a sanitizer report; after an error the destination is empty
// (nothing half-written became visible), and no staging directory is left either way. Run by
// scripts/fuzz.sh.
//
// The seeds in tests/fuzz/corpus/unpack/ are `kernels pack` archives of this lock (cache and
// mirror, zstd and plain tar): FUZZ_UNPACK_WRITE_SEEDS=DIR ./fuzz_unpack writes them and exits.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/repo_tree.h"
#include "kernels/lockfile/variant_hash.h"
#include "pack/pack.h"

namespace fs = std::filesystem;
using namespace kernels;

namespace {

const std::string kRepo = "kernels-community/attention-fa3";
const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string git_sha1(const std::string& s) {
  GitBlobSha1 h(s.size());
  h.update(s);
  return *h.finish_hex();
}

struct Fixture {
  std::map<std::string, std::string> files{
      {"build/cubin-cu130-sm90a/attention.cubin", std::string(600, '\x7f') + "cubin"},
      {"build/cubin-cu130-sm90a/__init__.py", "# shared\n"},
      {"build/cubin-cu130-sm80/attention.cubin", std::string(100, 'a')},
      {"build/cubin-cu130-sm80/__init__.py", "# shared\n"},
      {"README.md", "# attention\n"},
  };
  RepoTree tree;
  Lockfile lock;
  fs::path scratch;
  fs::path archive;

  Fixture() {
    for (const auto& [path, content] : files) {
      TreeEntry e;
      e.path = path;
      e.size = content.size();
      if (path.ends_with(".cubin")) {
        Sha256 sha;
        sha.update(content);
        e.lfs = LfsInfo{sha.finish_hex(), content.size(), 130};
        e.oid = git_sha1("pointer " + path);
      } else {
        e.oid = git_sha1(content);
      }
      tree.push_back(e);
    }
    KernelLock k;
    k.repo_id = kRepo;
    k.sha = kCommit;
    k.variants = compute_variant_hashes(tree);
    lock.kernels.push_back(k);
    char templ[] = "/tmp/fuzz-unpack-XXXXXX";
    if (!::mkdtemp(templ)) std::abort();
    scratch = templ;
    archive = scratch / "input.tar";
  }

  ~Fixture() {
    std::error_code ec;
    fs::remove_all(scratch, ec);
  }

  void write_seeds(const fs::path& out) const {
    const fs::path cache = scratch / "seed-cache";
    const CacheLayout layout(cache);
    for (const auto& e : tree) {
      const auto d = e.digest();
      fs::create_directories(layout.blobs_dir(kRepo));
      std::ofstream(layout.blob_path(kRepo, d.hex), std::ios::binary) << files.at(e.path);
      if (!layout.link_snapshot_file(kRepo, kCommit, e.path, d.hex)) std::abort();
    }
    if (!layout.write_tree(kRepo, kCommit, tree) || !layout.write_ref(kRepo, "v1", kCommit)) {
      std::abort();
    }
    const fs::path mirror = scratch / "seed-mirror";
    const std::string api = "api/kernels/" + kRepo;
    auto put = [](const fs::path& p, const std::string& bytes) {
      fs::create_directories(p.parent_path());
      std::ofstream(p, std::ios::binary) << bytes;
    };
    put(mirror / api / "tree" / kCommit, serialize_tree_listing(tree));
    put(mirror / api / "revision" / "v1", "{\"id\":\"" + kRepo + "\",\"sha\":\"" + kCommit + "\"}");
    for (const auto& [path, content] : files) {
      put(mirror / "kernels" / kRepo / "resolve" / kCommit / path, content);
    }
    fs::create_directories(out);
    if (!cli::pack_cache(cache, lock, out / "cache.tar.zst")) std::abort();
    if (!cli::pack_mirror(mirror, lock, out / "mirror.tar.zst")) std::abort();
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("FUZZ_UNPACK_WRITE_SEEDS")) {
    fixture().write_seeds(out);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Fixture& f = fixture();
  {
    std::ofstream out(f.archive, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  (void)cli::read_pack_kind(f.archive);
  const fs::path dest = f.scratch / "dest";
  std::error_code ec;
  fs::remove_all(dest, ec);
  fs::create_directories(dest);
  cli::PackLimits limits;
  limits.max_total_bytes = 4 << 20;
  limits.max_entries = 512;
  auto r = cli::unpack(f.archive, dest, f.lock, limits);
  if (!r) {
    const auto code = r.error().code;
    if (code != ErrorCode::unsafe && code != ErrorCode::integrity_mismatch &&
        code != ErrorCode::lockfile_invalid) {
      __builtin_trap();  // any other class is a wrong exit code for a bad archive
    }
    if (!fs::is_empty(dest)) __builtin_trap();  // something half-unpacked stayed visible
    return 0;
  }
  for (const auto& entry : fs::directory_iterator(dest)) {
    if (entry.path().filename().string().starts_with(".kernels-unpack")) __builtin_trap();
  }
  return 0;
}
