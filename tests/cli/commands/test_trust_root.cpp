// `kernels trust-root refresh`: the TUF client (cli/sigstore/src/tuf.cpp) against fake TUF
// repositories made at run time with test keys of both types (tests/cli/sigstore/make_tuf_repo.py),
// served on 127.0.0.1 by nginx (servers.h). Each repository is also judged by python-tuf
// (tests/cli/sigstore/oracle_tuf.py, the reference client): both accept the good ones and refuse
// the others; ours names the check. Then: verification uses the refreshed root from the cache,
// and offline (HF_HUB_OFFLINE, or no answer) keeps the last trusted root and says so once.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "python_oracle.h"
#include "servers.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

std::string tuf_python() { return venv_python("KERNELS_SIGSTORE_ORACLE", KERNELS_SIGSTORE_ORACLE); }

ProcessResult run_python(const std::string& python, std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {python};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  return run_process(spec);
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::map<std::string, std::optional<std::string>> no_root_env() {
  return {{"KERNELS_SIGSTORE_TRUSTED_ROOT", std::nullopt},
          {"KERNELS_SIGSTORE_TUF_URL", std::nullopt}};
}

// The one trusted_root.json kept in a cache, if any.
std::vector<fs::path> cached_trusted_roots(const fs::path& cache) {
  std::vector<fs::path> found;
  std::error_code ec;
  const fs::path tuf = cache / ".kernels-sigstore" / "tuf";
  if (!fs::exists(tuf)) return found;
  for (const auto& e : fs::recursive_directory_iterator(tuf, ec))
    if (e.path().filename() == "trusted_root.json") found.push_back(e.path());
  return found;
}

}  // namespace

TEST_CASE("trust-root refresh: TUF client workflow against fake repositories, python-tuf agrees",
          "[trust_root]") {
  const std::string python = tuf_python();
  if (python.empty())
    KERNELS_SKIP("`tuf` (with sigstore) is not installed: run scripts/setup-sigstore-oracle.sh " +
                 std::string(KERNELS_SIGSTORE_ORACLE) + " (needs PyPI)");
  TempDir dir("kernels-tuf");
  // The target every repository distributes: a test PKI's trusted root, so that verification
  // with the refreshed root can be told apart from the built-in one.
  const fs::path pki = dir / "pki";
  fs::create_directories(pki);
  const fs::path meta = pki / "metadata.json";
  write_file(meta, "{\"digest\": {}}\n");
  ProcessResult made_pki = run_python(
      python, {(source_dir() / "tests/cli/sigstore/make_test_pki.py").string(), pki.string(),
               "--sign", meta.string()});
  INFO(made_pki.out << made_pki.err);
  REQUIRE(made_pki.exit_code == 0);
  const fs::path repo = dir / "repo";
  ProcessResult made = run_python(python,
                                  {(source_dir() / "tests/cli/sigstore/make_tuf_repo.py").string(),
                                   repo.string(), (pki / "trusted_root.json").string()});
  INFO(made.out << made.err);
  REQUIRE(made.exit_code == 0);
  std::string why;
  std::unique_ptr<NginxServer> nginx = NginxServer::start(repo / "served", dir / "nginx", why);
  if (!nginx) KERNELS_SKIP("nginx does not start here: " + why);
  const std::string base = nginx->endpoint();
  const nlohmann::json cases = nlohmann::json::parse(read_file(repo / "cases.json"));
  REQUIRE(cases.size() >= 16);
  const std::string pki_root = read_file(pki / "trusted_root.json");

  auto refresh = [&](const std::string& name, const fs::path& cache) {
    std::vector<std::string> args = {"--json",
                                     "trust-root",
                                     "refresh",
                                     "--url",
                                     base + "/" + name,
                                     "--tuf-root",
                                     (repo / "boot" / (name + ".json")).string()};
    return run_kernels(args, cache, "file:///nonexistent", no_root_env());
  };
  auto oracle = [&](const std::string& name) {
    return run_python(python, {(source_dir() / "tests/cli/sigstore/oracle_tuf.py").string(),
                               (dir / "oracle" / name).string(),
                               (repo / "boot" / (name + ".json")).string(), base + "/" + name});
  };

  for (const auto& [name, expect_json] : cases.items()) {
    const std::string expect = expect_json.get<std::string>();
    {
      INFO("case " << name << " (expect " << expect << ")");
      const fs::path cache = dir / "caches" / name;
      ProcessResult ours = refresh(name, cache);
      ProcessResult theirs = oracle(name);
      INFO("ours: " << ours.out << ours.err << "\npython-tuf: " << theirs.out);
      const bool two_states = fs::exists(repo / "next" / name);
      if (two_states) {
        // A first, good refresh; then the repository serves older (validly signed) metadata.
        REQUIRE(ours.exit_code == 0);
        REQUIRE(theirs.exit_code == 0);
        const std::string kept = read_file(cached_trusted_roots(cache).at(0));
        fs::copy(repo / "next" / name, repo / "served" / name,
                 fs::copy_options::recursive | fs::copy_options::overwrite_existing);
        ours = refresh(name, cache);
        theirs = oracle(name);
        INFO("second refresh, ours: " << ours.out << ours.err << "\npython-tuf: " << theirs.out);
        CHECK(read_file(cached_trusted_roots(cache).at(0)) == kept);  // the last one stays
      }
      if (expect == "ok") {
        CHECK(ours.exit_code == 0);
        CHECK(theirs.exit_code == 0);
        const nlohmann::json doc = nlohmann::json::parse(ours.out, nullptr, false);
        REQUIRE(doc.is_object());
        CHECK(doc["command"] == "trust-root refresh");
        CHECK(doc["refreshed"] == true);
        CHECK(doc["changed"] == true);
        REQUIRE(cached_trusted_roots(cache).size() == 1);
        CHECK(read_file(cached_trusted_roots(cache)[0]) == pki_root);
        if (name == "rotation") {
          CHECK(doc["root_version"] == 3);
          CHECK(doc["root_versions_fetched"] == 2);
        }
        // Again: nothing new, the stored target is kept.
        ProcessResult again = refresh(name, cache);
        CHECK(again.exit_code == 0);
        CHECK(nlohmann::json::parse(again.out, nullptr, false)["changed"] == false);
      } else {
        CHECK(ours.exit_code == 6);
        CHECK(theirs.exit_code == 1);
        CHECK(ours.err.find("TUF " + expect + ": ") != std::string::npos);
        const nlohmann::json doc = nlohmann::json::parse(ours.out, nullptr, false);
        REQUIRE(doc.is_object());
        CHECK(doc["ok"] == false);
        CHECK(doc["error"]["exit"] == 6);
        if (!two_states) CHECK(cached_trusted_roots(cache).empty());  // nothing unverified kept
      }
    }
  }

  {  // verification uses the refreshed root; offline keeps it and says so once
    const fs::path cache = dir / "caches" / "use";
    const std::map<std::string, std::optional<std::string>> env = {{"KERNELS_SIGSTORE_TRUSTED_ROOT",
                                                                    std::nullopt},
                                                                   {"KERNELS_SIGSTORE_TUF_URL",
                                                                    base + "/good"}};
    ProcessResult before = run_kernels({"trust-root", "show"}, cache, "file:///nonexistent", env);
    CHECK(before.exit_code == 0);
    CHECK(before.out == "built-in public-good trusted root\n");
    // The default URL is KERNELS_SIGSTORE_TUF_URL; its first root is given once.
    ProcessResult first = run_kernels({"trust-root", "refresh", "--tuf-root",
                                       (repo / "boot" / "good.json").string()},
                                      cache, "file:///nonexistent", env);
    INFO(first.out << first.err);
    REQUIRE(first.exit_code == 0);
    CHECK(first.out.find("updated") != std::string::npos);
    const std::vector<fs::path> stored = cached_trusted_roots(cache);
    REQUIRE(stored.size() == 1);
    ProcessResult shown = run_kernels({"trust-root", "show"}, cache, "file:///nonexistent", env);
    CHECK(shown.out == stored[0].string() + "\n");
    // Later refreshes need no --tuf-root: the cached root.json is the trusted one.
    ProcessResult second = run_kernels({"trust-root", "refresh"}, cache, "file:///nonexistent",
                                       env);
    INFO(second.out << second.err);
    CHECK(second.exit_code == 0);
    CHECK(second.out.find("unchanged") != std::string::npos);

    // A repo signed by the test PKI verifies with no --trusted-root: the refreshed (test) root
    // is used. With the built-in root (another cache) it is refused.
    std::vector<MirrorFile> cpu = make_variant_files_with_metadata("torch-cpu", 2, 71);
    std::string metadata;
    for (const MirrorFile& f : cpu)
      if (f.path == "build/torch-cpu/metadata.json") metadata = f.content;
    write_file(pki / "cpu.json", metadata);
    ProcessResult sign = run_python(
        python, {(source_dir() / "tests/cli/sigstore/make_test_pki.py").string(),
                 (dir / "pki2").string(), "--sign", (pki / "cpu.json").string()});
    REQUIRE(sign.exit_code == 0);
    // make_test_pki.py makes a new PKI per run: serve that one's root through a fresh repo.
    const fs::path repo2 = dir / "repo2";
    REQUIRE(run_python(python, {(source_dir() / "tests/cli/sigstore/make_tuf_repo.py").string(),
                                repo2.string(), (dir / "pki2" / "trusted_root.json").string()})
                .exit_code == 0);
    fs::copy(repo2 / "served" / "good", repo / "served" / "good2", fs::copy_options::recursive);
    cpu.push_back({"build/torch-cpu/metadata.json.sigstore", read_file(pki / "cpu.json.sigstore")});
    MirrorRepo mirror(dir / "mirror", "acme/signed");
    mirror.publish(1, cpu);
    const std::string endpoint = file_endpoint(dir / "mirror");
    std::map<std::string, std::optional<std::string>> env2 = {{"KERNELS_SIGSTORE_TRUSTED_ROOT",
                                                               std::nullopt},
                                                              {"KERNELS_SIGSTORE_TUF_URL",
                                                               base + "/good2"}};
    const fs::path cache2 = dir / "caches" / "use2";
    const std::vector<std::string> verify = {
        "verify-signature", "acme/signed",   "1",
        "--all-variants",   "--project-dir", dir.path().string()};
    ProcessResult builtin = run_kernels(verify, cache2, endpoint, env2);
    INFO(builtin.out << builtin.err);
    CHECK(builtin.exit_code == 6);  // the built-in public-good root does not know the test CA
    ProcessResult got = run_kernels({"trust-root", "refresh", "--tuf-root",
                                     (repo2 / "boot" / "good.json").string()},
                                    cache2, endpoint, env2);
    INFO(got.out << got.err);
    REQUIRE(got.exit_code == 0);
    ProcessResult verified = run_kernels(verify, cache2, endpoint, env2);
    INFO(verified.out << verified.err);
    CHECK(verified.exit_code == 0);
    CHECK(verified.out.find("torch-cpu: kernel metadata is correctly signed") != std::string::npos);

    // Offline: no request, the last trusted root stays, one warning; verification still works.
    std::map<std::string, std::optional<std::string>> offline_env = env2;
    offline_env["HF_HUB_OFFLINE"] = "1";
    ProcessResult offline = run_kernels({"trust-root", "refresh"}, cache2, endpoint, offline_env);
    INFO(offline.out << offline.err);
    CHECK(offline.exit_code == 0);
    CHECK(count_of(offline.err, "trust root not refreshed (offline)") == 1);
    CHECK(offline.err.find(cached_trusted_roots(cache2).at(0).string()) != std::string::npos);
    ProcessResult offline_verify = run_kernels(verify, cache2, endpoint, offline_env);
    CHECK(offline_verify.exit_code == 0);
    // No answer at all (nothing listens): the same, naming the URL.
    std::map<std::string, std::optional<std::string>> down_env = env2;
    const RefusingPort refusing;
    down_env["KERNELS_SIGSTORE_TUF_URL"] = refusing.url() + "/repo";
    ProcessResult down = run_kernels({"--json", "trust-root", "refresh", "--tuf-root",
                                      (repo2 / "boot" / "good.json").string()},
                                     cache2, endpoint, down_env);
    INFO(down.out << down.err);
    CHECK(down.exit_code == 0);
    CHECK(count_of(down.err, "trust root not refreshed (cannot reach ") == 1);
    const nlohmann::json doc = nlohmann::json::parse(down.out, nullptr, false);
    REQUIRE(doc.is_object());
    CHECK(doc["refreshed"] == false);
    // A repository that answers, but not with timestamp.json (404): a failed fetch, not a
    // refusal: the last root stays, said once.
    ProcessResult empty = run_kernels({"trust-root", "refresh", "--url", base + "/nothing-here",
                                       "--tuf-root", (repo2 / "boot" / "good.json").string()},
                                      cache2, endpoint, env2);
    INFO(empty.out << empty.err);
    CHECK(empty.exit_code == 0);
    CHECK(count_of(empty.err, "trust root not refreshed (fetch failed from ") == 1);
    CHECK(empty.err.find("timestamp.json") != std::string::npos);
    CHECK(read_file(cached_trusted_roots(cache2).at(0)) ==
          read_file(dir / "pki2" / "trusted_root.json"));
  }
}
