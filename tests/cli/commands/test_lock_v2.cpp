// kernels.lock format 2 (kernels 0.17.2) end to end: which format `lock` writes and when it
// changes, --locked in the lock's own format, the hashes sidecar, and download / verify of a
// format 2 lock with and without the sidecar, including the metadata.json digest check that
// stops a file changed on the Hub before it becomes visible.
#include <catch2/catch.hpp>

#include "harness.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/repo_tree.h"

using namespace kernels::test;

namespace {

struct V2Project {
  TempDir dir{"kernels-v2"};
  fs::path mirror = dir / "mirror";
  fs::path project = dir / "project";
  fs::path lock = project / "kernels.lock";
  fs::path sidecar = project / "kernels.lock.hashes";
  MirrorRepo repo{mirror, "org/attn"};
  MirrorRepo other{mirror, "org/act"};
  std::string commit, other_commit;
  std::string endpoint = file_endpoint(mirror);

  V2Project() {
    std::vector<MirrorFile> files = make_variant_files_with_metadata(
        "torch210-cxx11-cu128-x86_64-linux", 4, 21);
    auto more = make_variant_files_with_metadata("torch-cuda", 2, 22);
    files.insert(files.end(), more.begin(), more.end());
    commit = repo.publish(1, files);
    other_commit = other.publish(2, make_variant_files_with_metadata("torch-cpu", 2, 23));
    write_file(project / "pyproject.toml",
               "[tool.kernels.dependencies]\n\"org/attn\" = 1\n\"org/act\" = 2\n");
  }
  ProcessResult run(std::vector<std::string> args, const fs::path& cache,
                    std::map<std::string, std::optional<std::string>> env = {}) const {
    args.push_back(project.string());
    return run_kernels(args, cache, endpoint, env);
  }
  // The file of `variant` a test changes on the Hub, served with a consistent tree listing.
  std::string change_on_hub(const std::string& variant) {
    kernels::RepoTree tree = repo.tree(commit);
    for (kernels::TreeEntry& e : tree) {
      if (!e.is_file || e.lfs || e.path.rfind("build/" + variant + "/module_", 0) != 0) continue;
      const std::string bytes = "changed after locking\n";
      repo.tamper_file(commit, e.path, bytes);
      e.oid = kernels::ContentDigest::of(
          std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
          kernels::FileDigest::Kind::git_sha1);
      e.size = bytes.size();
      repo.set_tree(commit, kernels::serialize_tree_listing(tree));
      return e.path;
    }
    throw std::runtime_error("no file to change");
  }
};

std::string expected_v2(const std::string& act_commit, const std::string& attn_commit) {
  return "[\n  {\n    \"dependency\": {\n      \"repo-id\": \"org/act\",\n      \"version\": 2\n   "
         " },\n"
         "    \"lock\": {\n      \"commit\": \"" +
         act_commit +
         "\"\n    }\n  },\n"
         "  {\n    \"dependency\": {\n      \"repo-id\": \"org/attn\",\n      \"version\": 1\n    "
         "},\n"
         "    \"lock\": {\n      \"commit\": \"" +
         attn_commit + "\"\n    }\n  }\n]";
}

}  // namespace

TEST_CASE("a new lock is format 2 (sorted, no newline) with its hashes in the sidecar",
          "[lock][v2]") {
  V2Project p;
  ProcessResult r = p.run({"lock"}, p.dir / "cache");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(p.lock) == expected_v2(p.other_commit, p.commit));
  auto hashes = kernels::read_lockfile(p.lock);
  REQUIRE(hashes.ok());
  CHECK(hashes->form == kernels::Lockfile::Form::dependency_list);
  CHECK(hashes->find("org/attn")->variants.size() == 2);
  CHECK(hashes->find("org/act")->variants.size() == 1);
  CHECK(read_file(p.sidecar).find("\"commit\": \"" + p.commit + "\"") != std::string::npos);
}

TEST_CASE("lock keeps the existing lock's format, and --format migrates, saying so", "[lock][v2]") {
  V2Project p;
  REQUIRE(p.run({"lock", "--format", "1"}, p.dir / "cache").exit_code == 0);
  const std::string v1 = read_file(p.lock);
  CHECK(v1.find("\"repo_id\": \"org/attn\"") != std::string::npos);
  CHECK_FALSE(fs::exists(p.sidecar));
  // An existing format 1 lock stays format 1.
  ProcessResult again = p.run({"lock"}, p.dir / "cache");
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(read_file(p.lock) == v1);
  CHECK(again.err.find("format") == std::string::npos);
  CHECK(p.run({"lock", "--locked"}, p.dir / "cache").exit_code == 0);
  // --locked with another format asked for is stale, and writes nothing.
  ProcessResult other = p.run({"lock", "--locked", "--format", "2"}, p.dir / "cache");
  CHECK(other.exit_code == 4);
  CHECK(other.err.find("kernels.lock is format 1, --format 2 was asked for") != std::string::npos);
  CHECK(read_file(p.lock) == v1);
  // Explicit migration.
  ProcessResult up = p.run({"lock", "--format", "2"}, p.dir / "cache");
  INFO(up.err);
  REQUIRE(up.exit_code == 0);
  CHECK(up.err.find("kernels.lock: format 1 -> format 2 (--format 2)") != std::string::npos);
  CHECK(read_file(p.lock) == expected_v2(p.other_commit, p.commit));
  CHECK(fs::exists(p.sidecar));
  CHECK(p.run({"lock"}, p.dir / "cache").exit_code == 0);
  CHECK(read_file(p.lock) == expected_v2(p.other_commit, p.commit));
  // And back: the sidecar goes, since a format 1 lock carries its hashes.
  REQUIRE(p.run({"lock", "--format", "1"}, p.dir / "cache").exit_code == 0);
  CHECK(read_file(p.lock) == v1);
  CHECK_FALSE(fs::exists(p.sidecar));
  CHECK(p.run({"lock", "--format", "3"}, p.dir / "cache").exit_code == 2);
}

TEST_CASE("lock --locked compares a format 2 lock as format 2, and its sidecar hashes",
          "[lock][v2]") {
  V2Project p;
  REQUIRE(p.run({"lock"}, p.dir / "cache").exit_code == 0);
  const std::string good = read_file(p.lock);
  const std::string sidecar = read_file(p.sidecar);
  ProcessResult fresh = p.run({"lock", "--locked"}, p.dir / "cache");
  INFO(fresh.err);
  CHECK(fresh.exit_code == 0);

  SECTION("a lock without the sidecar (as the Python package leaves it) is up to date") {
    fs::remove(p.sidecar);
    ProcessResult r = p.run({"lock", "--locked"}, p.dir / "cache");
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("records no variant hashes for org/attn v1") != std::string::npos);
    CHECK_FALSE(fs::exists(p.sidecar));  // --locked never writes
    // `kernels lock` adds the sidecar and leaves the lock's bytes alone.
    REQUIRE(p.run({"lock"}, p.dir / "cache").exit_code == 0);
    CHECK(read_file(p.sidecar) == sidecar);
    CHECK(read_file(p.lock) == good);
  }
  SECTION("another commit in the lock is stale") {
    std::string stale = good;
    stale.replace(stale.find(p.commit), 40, std::string(40, 'a'));
    write_file(p.lock, stale);
    ProcessResult r = p.run({"lock", "--locked"}, p.dir / "cache");
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("org/attn v1: locked at " + std::string(40, 'a')) != std::string::npos);
  }
  SECTION("a sidecar hash the Hub no longer gives is stale") {
    std::string bad = sidecar;
    const auto at = bad.find("sha256-");
    bad.replace(at + 7, 4, "0000");
    write_file(p.sidecar, bad);
    ProcessResult r = p.run({"lock", "--locked"}, p.dir / "cache");
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("hash sha256-0000") != std::string::npos);
  }
  SECTION("a format 1 entry order or layout is not canonical format 2") {
    write_file(p.lock, good + "\n");
    ProcessResult r = p.run({"lock", "--locked"}, p.dir / "cache");
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("canonical") != std::string::npos);
  }
}

TEST_CASE("format 2 refuses an empty dependency table as kernels 0.17 does", "[lock][v2]") {
  TempDir dir;
  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n");
  ProcessResult r = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                file_endpoint(dir / "mirror"));
  CHECK(r.exit_code == 5);
  CHECK(r.err.find("No kernels found to lock.") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "project/kernels.lock"));
  ProcessResult v1 = run_kernels({"lock", "--format", "1", (dir / "project").string()},
                                 dir / "cache", file_endpoint(dir / "mirror"));
  CHECK(v1.exit_code == 0);
  CHECK(read_file(dir / "project/kernels.lock") == "[]");
}

TEST_CASE("an unreadable existing lock is not replaced without --format", "[lock][v2]") {
  V2Project p;
  write_file(p.lock, "not json");
  ProcessResult r = p.run({"lock"}, p.dir / "cache");
  CHECK(r.exit_code == 5);
  CHECK(r.err.find("--format 2") != std::string::npos);
  CHECK(read_file(p.lock) == "not json");
  REQUIRE(p.run({"lock", "--format", "2"}, p.dir / "cache").exit_code == 0);
  CHECK(read_file(p.lock) == expected_v2(p.other_commit, p.commit));
}

TEST_CASE("download and verify take a format 2 lock, with 0.17's line, and copy the sidecar",
          "[download][v2]") {
  V2Project p;
  REQUIRE(p.run({"lock"}, p.dir / "lock-cache").exit_code == 0);
  const fs::path cache = p.dir / "cache";
  ProcessResult dl = p.run({"download", "--all-variants"}, cache);
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);
  // Sorted lock order, 0.17's wording.
  const auto act = dl.err.find("Downloading kernel: org/act (revision: " + p.other_commit + ")");
  const auto attn = dl.err.find("Downloading kernel: org/attn (revision: " + p.commit + ")");
  CHECK(act != std::string::npos);
  CHECK(attn != std::string::npos);
  CHECK(act < attn);
  kernels::CacheLayout layout(cache);
  CHECK(read_file(layout.lockfile_path()) == read_file(p.lock));
  CHECK(read_file(kernels::lock_hashes_path(layout.lockfile_path())) == read_file(p.sidecar));
  ProcessResult verify = p.run({"verify"}, cache);
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  CHECK(verify.out.find("OK      org/attn torch-cuda (3 files)") != std::string::npos);

  SECTION("verify names a file that no longer matches its metadata.json digest") {
    const fs::path file = layout.snapshot_file("org/attn", p.commit,
                                               "build/torch-cuda/module_1.py");
    const fs::path blob = fs::canonical(file);
    fs::remove(blob);
    write_file(blob, "altered in the cache\n");
    ProcessResult bad = p.run({"verify"}, cache);
    CHECK(bad.exit_code == 6);
    CHECK(bad.out.find("metadata.json digest: File hash mismatch for module_1.py") !=
          std::string::npos);
  }
}

TEST_CASE(
    "a file changed on the Hub after locking is refused before it is visible, in both formats",
    "[download][v2][integrity]") {
  V2Project p;
  const std::string variant = "torch210-cxx11-cu128-x86_64-linux";
  SECTION("format 2 with the sidecar: the variant hash stops it before any fetch") {
    REQUIRE(p.run({"lock"}, p.dir / "lock-cache").exit_code == 0);
    p.change_on_hub(variant);
    ProcessResult r = p.run({"download", "--all-variants"}, p.dir / "cache");
    CHECK(r.exit_code == 6);
    CHECK(r.err.find("Lock file specifies kernel with hash") != std::string::npos);
  }
  SECTION("format 1: the lock's variant hash stops it") {
    REQUIRE(p.run({"lock", "--format", "1"}, p.dir / "lock-cache").exit_code == 0);
    p.change_on_hub(variant);
    ProcessResult r = p.run({"download", "--all-variants"}, p.dir / "cache");
    CHECK(r.exit_code == 6);
    CHECK(r.err.find("Lock file specifies kernel with hash") != std::string::npos);
  }
  SECTION("format 2 without the sidecar (a Python lock): the metadata.json digest stops it") {
    REQUIRE(p.run({"lock"}, p.dir / "lock-cache").exit_code == 0);
    fs::remove(p.sidecar);
    const std::string changed = p.change_on_hub(variant);
    ProcessResult r = p.run({"download", "--all-variants"}, p.dir / "cache");
    INFO(r.err);
    CHECK(r.exit_code == 6);
    CHECK(r.err.find("metadata.json digest: File hash mismatch for " +
                     changed.substr(("build/" + variant + "/").size())) != std::string::npos);
    kernels::CacheLayout layout(p.dir / "cache");
    CHECK_FALSE(
        fs::exists(fs::symlink_status(layout.snapshot_file("org/attn", p.commit, changed))));
    // The variant that was not changed is complete; nothing of the bad one but what passed.
    CHECK(fs::exists(layout.snapshot_file("org/attn", p.commit, "build/torch-cuda/metadata.json")));
  }
  SECTION(
      "format 2 without the sidecar: a file the digest does not list stops the variant before any "
      "fetch") {
    REQUIRE(p.run({"lock"}, p.dir / "lock-cache").exit_code == 0);
    fs::remove(p.sidecar);
    kernels::RepoTree tree = p.repo.tree(p.commit);
    kernels::TreeEntry extra;
    extra.path = "build/" + variant + "/extra.py";
    const std::string bytes = "print('not in the digest')\n";
    extra.size = bytes.size();
    extra.oid = kernels::ContentDigest::of(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
        kernels::FileDigest::Kind::git_sha1);
    tree.push_back(extra);
    p.repo.set_tree(p.commit, kernels::serialize_tree_listing(tree));
    p.repo.tamper_file(p.commit, extra.path, bytes);
    ProcessResult r = p.run({"download", "--all-variants"}, p.dir / "cache");
    CHECK(r.exit_code == 6);
    CHECK(r.err.find("Unknown file: extra.py") != std::string::npos);
    kernels::CacheLayout layout(p.dir / "cache");
    CHECK_FALSE(
        fs::exists(layout.snapshot_dir("org/attn", p.commit) / "build" / variant / "extra.py"));
  }
}

TEST_CASE(
    "a format 2 lock with a revision dependency and one repo at two versions downloads and "
    "verifies",
    "[download][v2]") {
  V2Project p;
  const std::string v2_commit = p.repo.publish(2, make_variant_files_with_metadata("torch-cuda", 2,
                                                                                   24));
  // What 0.17 writes for transitive kernel-depends: the same repo at another version, and a
  // revision dependency whose commit is the revision itself. Written unsorted: order is ours to
  // fix.
  write_file(p.lock, "[{\"dependency\": {\"repo-id\": \"org/attn\", \"revision\": \"" + v2_commit +
                         "\"}, \"lock\": {\"commit\": \"" + v2_commit +
                         "\"}},\n"
                         " {\"dependency\": {\"repo-id\": \"org/attn\", \"version\": 1}, \"lock\": "
                         "{\"commit\": \"" +
                         p.commit + "\"}}]");
  const fs::path cache = p.dir / "cache";
  ProcessResult dl = p.run({"download", "--all-variants"}, cache);
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);
  const auto first = dl.err.find("Downloading kernel: org/attn (revision: " + p.commit + ")");
  const auto second = dl.err.find("Downloading kernel: org/attn (revision: " + v2_commit + ")");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first < second);  // the version entry sorts before the revision entry
  kernels::CacheLayout layout(cache);
  CHECK(layout.read_ref("org/attn", "v1").value() == p.commit);
  CHECK(fs::exists(layout.snapshot_file("org/attn", v2_commit, "build/torch-cuda/metadata.json")));
  ProcessResult verify = p.run({"verify"}, cache);
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
}

TEST_CASE(
    "mirror, pack and unpack of a format 2 lock need its sidecar's hashes, and say how to get them",
    "[v2][pack]") {
  V2Project p;
  REQUIRE(p.run({"lock"}, p.dir / "cache").exit_code == 0);
  REQUIRE(p.run({"download", "--all-variants"}, p.dir / "cache").exit_code == 0);
  ProcessResult packed = p.run({"pack", "--out", (p.dir / "k.tar.zst").string()}, p.dir / "cache");
  INFO(packed.err);
  REQUIRE(packed.exit_code == 0);
  fs::remove(p.sidecar);  // as a lock from the Python package comes
  for (std::vector<std::string> args :
       {std::vector<std::string>{"pack", "--out", (p.dir / "again.tar.zst").string()},
        std::vector<std::string>{"mirror", "--to", (p.dir / "m").string()},
        std::vector<std::string>{"unpack", (p.dir / "k.tar.zst").string()}}) {
    ProcessResult r = p.run(args, p.dir / "cache2");
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("kernels.lock.hashes records no variant hashes for org/act v2") !=
          std::string::npos);
    CHECK(r.err.find("hint: run `kernels lock") != std::string::npos);
  }
}

TEST_CASE("format 2 locks kernel-depends transitively, as 0.17.2 does", "[lock][v2][depends]") {
  TempDir dir("kernels-v2");
  const fs::path project = dir / "project";
  const std::string endpoint = file_endpoint(dir / "mirror");
  MirrorRepo relu(dir / "mirror", "org/relu");
  const std::string relu1 = relu.publish(1, make_variant_files_with_metadata("torch-cuda", 1, 31));
  const std::string relu3 = relu.publish(3, make_variant_files_with_metadata("torch-cuda", 1, 32));
  MirrorRepo act(dir / "mirror", "org/act");
  const std::string act1 = act.publish(
      1, make_variant_files_with_metadata("torch-cpu", 1, 33,
                                          R"([{"repo-id": "org/relu", "version": 1}])"));
  MirrorRepo top(dir / "mirror", "org/top");
  // Two variants needing different relu versions, one a revision: every distinct key is an entry.
  std::vector<MirrorFile> files = make_variant_files_with_metadata(
      "torch-cuda", 1, 34,
      R"([{"repo-id": "org/act", "version": 1}, {"repo-id": "org/relu", "version": 3}])");
  auto more = make_variant_files_with_metadata(
      "torch210-cxx11-cu128-x86_64-linux", 1, 35,
      R"([{"repo-id": "org/relu", "version": 1}, {"repo-id": "org/relu", "revision": ")" + relu3 +
          R"("}])");
  files.insert(files.end(), more.begin(), more.end());
  auto cubin = make_variant_files("cubin-cu130-sm90a", 1, 10,
                                  36);  // no metadata: 0.17 does not know it
  files.insert(files.end(), cubin.begin(), cubin.end());
  const std::string top1 = top.publish(1, files);
  write_file(project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/top\" = 1\n");

  ProcessResult r = run_kernels({"lock", project.string()}, dir / "cache", endpoint);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto lock = kernels::read_lockfile(project / "kernels.lock");
  REQUIRE(lock.ok());
  std::vector<std::string> entries;
  for (const auto& k : lock->kernels) entries.push_back(kernels::dependency_name(k) + " " + k.sha);
  CHECK(entries == std::vector<std::string>{"org/act v1 " + act1, "org/relu v1 " + relu1,
                                            "org/relu v3 " + relu3,
                                            "org/relu@" + relu3 + " " + relu3,
                                            "org/top v1 " + top1});
  CHECK(r.err.find("You are using version 1 of 'org/relu', but version 3 is available.") !=
        std::string::npos);
  CHECK(fs::exists(kernels::CacheLayout(dir / "cache")
                       .snapshot_file("org/top", top1, "build/torch-cuda/metadata.json")));
  ProcessResult locked = run_kernels({"lock", "--locked", project.string()}, dir / "cache",
                                     endpoint);
  INFO(locked.err);
  CHECK(locked.exit_code == 0);
  // Format 1 (0.16) knows no kernel-depends: one entry.
  ProcessResult v1 = run_kernels({"lock", "--format", "1", project.string()}, dir / "cache",
                                 endpoint);
  REQUIRE(v1.exit_code == 0);
  auto lock1 = kernels::read_lockfile(project / "kernels.lock");
  REQUIRE(lock1.ok());
  CHECK(lock1->kernels.size() == 1);
}

TEST_CASE("a kernel-depends cycle and a revision that is not a commit are refused",
          "[lock][v2][depends]") {
  TempDir dir("kernels-v2");
  const fs::path project = dir / "project";
  const std::string endpoint = file_endpoint(dir / "mirror");
  MirrorRepo a(dir / "mirror", "org/a");
  a.publish(1, make_variant_files_with_metadata("torch-cpu", 1, 41,
                                                R"([{"repo-id": "org/b", "version": 1}])"));
  MirrorRepo b(dir / "mirror", "org/b");
  b.publish(1, make_variant_files_with_metadata("torch-cpu", 1, 42,
                                                R"([{"repo-id": "org/a", "version": 1}])"));
  MirrorRepo c(dir / "mirror", "org/c");
  c.publish(1, make_variant_files_with_metadata("torch-cpu", 1, 43,
                                                R"([{"repo-id": "org/b", "revision": "main"}])"));

  write_file(project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/a\" = 1\n");
  ProcessResult cycle = run_kernels({"lock", project.string()}, dir / "cache", endpoint);
  CHECK(cycle.exit_code == 5);
  CHECK(cycle.err.find("Cyclic kernel dependency detected: org/a") != std::string::npos);
  CHECK(cycle.err.find("org/a v1 -> org/b v1 -> org/a v1") != std::string::npos);
  CHECK_FALSE(fs::exists(project / "kernels.lock"));

  write_file(project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/c\" = 1\n");
  ProcessResult rev = run_kernels({"lock", project.string()}, dir / "cache", endpoint);
  CHECK(rev.exit_code == 5);
  CHECK(rev.err.find("Invalid git object id, expected 40 or 64 hexadecimal digits: main") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(project / "kernels.lock"));
}
