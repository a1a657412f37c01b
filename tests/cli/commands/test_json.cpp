// The --json contract (docs/JSON.md): every command, succeeding and failing, prints exactly one
// JSON document on stdout, which matches docs/kernels-json.schema.json (checked with the Python
// `jsonschema` package: Debian's python3-jsonschema, or pip's; skipped visibly without it).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "project_fixture.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

struct Case {
  std::string name;               // for the failure message
  std::vector<std::string> args;  // --json is added first
  int exit = 0;                   // expected exit status
  std::string command;            // expected "command", "" for null
  std::map<std::string, std::optional<std::string>> env = {};
  std::function<void()> before = {};  // run first (e.g. damage the cache)
};

const char* kValidator = R"PY(
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    errors = list(validator.iter_errors(json.load(open(path))))
    for e in errors:
        print(f"{path}: {e.message} at {list(e.absolute_path)}")
    bad += bool(errors)
sys.exit(1 if bad else 0)
)PY";

}  // namespace

TEST_CASE("every command's --json output is one document that matches the schema",
          "[json][output]") {
  ProcessResult have = run_process({{"python3", "-c", "import jsonschema"}});
  if (have.exit_code != 0) {
    KERNELS_SKIP(
        "the Python jsonschema package is not installed (apt-get install python3-jsonschema, "
        "or pip install jsonschema)");
  }
  LockedProject p;
  const std::string project = p.project.string();
  const fs::path archive = p.dir / "cache.tar.zst";
  const fs::path site_cache = p.dir / "site-cache";
  const fs::path unsafe_cache = p.dir / "unsafe-cache";
  fs::create_directories(unsafe_cache);
  ::chmod(unsafe_cache.c_str(), 0777);
  const std::string missing = (p.dir / "nowhere").string();
  const fs::path garbage = p.dir / "garbage.tar.zst";
  write_file(garbage, "not an archive");

  // In order: later cases rely on what earlier ones did (download before verify and pack).
  const std::vector<Case> cases = {
      {"version", {"version"}, 0, "version"},
      {"--version", {"--version"}, 0, "version"},
      {"version with an extra word", {"version", "extra"}, 2, "version"},
      {"help", {"help", "lock"}, 0, "help"},
      {"help exit-codes", {"help", "exit-codes"}, 0, "help"},
      {"help --man", {"help", "--man"}, 0, "help"},
      {"help of no topic", {"help", "nope"}, 2, "help"},
      {"completion", {"completion", "bash"}, 0, "completion"},
      {"completion of no shell", {"completion", "tcsh"}, 2, "completion"},
      {"no command", {}, 2, ""},
      {"mistyped command", {"downlaod"}, 2, ""},
      {"lock", {"lock", project}, 0, "lock"},
      {"lock --locked", {"lock", "--locked", project}, 0, "lock"},
      {"lock without pyproject", {"lock", missing}, 13, "lock"},
      {"verify before download", {"verify", project}, 6, "verify"},
      {"download of no such variant", {"download", "--variant", "nope", project}, 12, "download"},
      {"download", {"download", "--all-variants", project}, 0, "download"},
      {"verify", {"verify", project}, 0, "verify"},
      {"versions", {"versions", "org/attn"}, 0, "versions"},
      {"versions of no repo", {"versions", "org/absent"}, 8, "versions"},
      {"info", {"info", "org/attn", "--version", "1"}, 0, "info"},
      {"info --variants", {"info", "org/attn", "--version", "1", "--variants"}, 0, "info"},
      {"info of no version", {"info", "org/attn", "--version", "7"}, 2, "info"},
      {"variant",
       {"variant", "org/attn", "--driver-cuda", "13.0", "--compute-capability", "9.0"},
       0,
       "variant"},
      {"variant of no repo", {"variant", "org/absent"}, 8, "variant"},
      {"cache ls", {"cache", "ls"}, 0, "cache ls"},
      {"cache ls of an unsafe cache",
       {"cache", "ls", "--cache-dir", unsafe_cache.string()},
       11,
       "cache ls"},
      {"cache show", {"cache", "show", "org/attn"}, 0, "cache show"},
      {"cache show of no repo", {"cache", "show", "org/absent"}, 2, "cache show"},
      {"cache verify", {"cache", "verify"}, 0, "cache verify"},
      {"cache path", {"cache", "path"}, 0, "cache path"},
      {"cache path of an unsafe cache",
       {"cache", "path", "--cache-dir", unsafe_cache.string()},
       11,
       "cache path"},
      {"cache without a subcommand", {"cache"}, 2, "cache"},
      {"cache prune --dry-run", {"cache", "prune", "--dry-run"}, 0, "cache prune"},
      {"cache prune with a missing lock",
       {"cache", "prune", "--lockfile", missing},
       3,
       "cache prune"},
      {"cache rm of a bad name", {"cache", "rm", "not-a-repo"}, 2, "cache rm"},
      {"trust-root show", {"trust-root", "show"}, 0, "trust-root show"},
      {"trust-root refresh offline",
       {"trust-root", "refresh"},
       0,
       "trust-root refresh",
       {{"HF_HUB_OFFLINE", "1"}}},
      {"trust-root refresh of a bad URL",
       {"trust-root", "refresh", "--url", "ftp://example.com"},
       2,
       "trust-root refresh"},
      {"trust-root without a subcommand", {"trust-root"}, 2, "trust-root"},
      {"mirror", {"mirror", project, "--to", (p.dir / "mirror-out").string()}, 0, "mirror"},
      {"mirror without a lock",
       {"mirror", missing, "--to", (p.dir / "mirror-2").string()},
       3,
       "mirror"},
      {"pack", {"pack", project, "--out", archive.string()}, 0, "pack"},
      {"pack to a .tar.gz", {"pack", project, "--out", (p.dir / "k.tar.gz").string()}, 2, "pack"},
      {"unpack",
       {"unpack", archive.string(), project, "--cache-dir", site_cache.string()},
       0,
       "unpack"},
      {"unpack of a file that is no archive", {"unpack", garbage.string(), project}, 11, "unpack"},
      {"cache verify of a corrupt file",
       {"cache", "verify"},
       6,
       "cache verify",
       {},
       [&] {
         const kernels::TreeEntry e = p.entry_of("cubin-cu130-sm80", true);
         write_file(p.layout().blob_path("org/attn", e.digest().hex),
                    std::string(e.content_size(), 'Z'));
       }},
      {"cache rm", {"cache", "rm", "org/attn"}, 0, "cache rm"},
      {"an internal error", {"cache", "path"}, 70, "", {{"KERNELS_TEST_THROW", "boom"}}},
  };
  TempDir out{"kernels-json-docs"};
  std::vector<std::string> validate = {"python3", "-c", kValidator,
                                       (source_dir() / "docs/kernels-json.schema.json").string()};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::vector<std::string> args = {"--json"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    if (c.before) c.before();
    ProcessResult r = p.run(args, c.env);
    INFO(c.name << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == c.exit);
    // One document and nothing else: parse() rejects anything after it but whitespace.
    nlohmann::json doc;
    REQUIRE_NOTHROW(doc = nlohmann::json::parse(r.out));
    CHECK(r.out.back() == '\n');
    if (c.command == "info" && c.exit == 0) {
      CHECK(doc.contains("backends"));  // 0.17.2's document, no envelope (docs/JSON.md)
      CHECK_FALSE(doc.contains("schema"));
    } else {
      CHECK(doc["schema"] == 1);
      CHECK(doc["ok"] == (c.exit == 0));
      CHECK(doc["command"] ==
            (c.command.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.command)));
      if (c.exit != 0) CHECK(doc["error"]["exit"] == c.exit);
    }
    // A few fields checked against what is known, success and failure alike.
    if (c.name == "lock") CHECK(doc["kernels"][0]["sha"] == p.commit);
    if (c.name == "download") CHECK(doc["fetched_files"].get<int>() > 0);
    if (c.name == "info --variants")  // downloaded without --require-signatures: nothing recorded
      CHECK(doc["variants"][0]["signature"]["status"] == "unsigned");
    if (c.name == "verify before download") CHECK(doc["kernels"][0]["problem"] == "not downloaded");
    if (c.name == "help exit-codes") CHECK(doc["exit_codes"].size() == 18);
    if (c.name == "mistyped command") CHECK(doc["error"]["hint"] == "did you mean `download`?");
    if (c.name == "an internal error") CHECK(doc["error"]["code"] == "internal");
    if (c.name == "cache verify of a corrupt file")
      CHECK(doc["problems"][0]["status"] == "corrupt");
    const fs::path file = out / (std::to_string(i) + ".json");
    write_file(file, r.out);
    validate.push_back(file.string());
  }
  ProcessResult valid = run_process({validate});
  INFO(valid.out << valid.err);
  CHECK(valid.exit_code == 0);
}

TEST_CASE("a document that breaks the contract fails the schema check", "[json][output]") {
  // The schema is not vacuous: each of these is one way a command could get the contract wrong.
  ProcessResult have = run_process({{"python3", "-c", "import jsonschema"}});
  if (have.exit_code != 0) KERNELS_SKIP("the Python jsonschema package is not installed");
  TempDir out{"kernels-json-bad"};
  const std::vector<std::string> bad = {
      R"({"ok": true, "command": "cache path", "cache": "/c"})",  // no schema
      R"({"schema": 1, "ok": true, "command": "cache path"})",    // a field missing
      R"({"schema": 1, "ok": false, "command": "lock", "error": {"code": "usage", "exit": 2, "message": "m", "hint": "", "object": null}})",  // "" for null
      R"({"schema": 1, "ok": true, "command": "versions", "repo_id": "org/a", "versions": []}
{"schema": 1})",                    // two documents
      R"([{"repo_id": "org/a"}])",  // a bare array
      // info --variants: "verified" without the signer
      R"({"repo_id": "org/a", "revision": "v1", "backends": [], "variants": [{"name": "v", "files": 1, "bytes": 1, "hash": null, "signature": {"status": "verified"}}]})",
  };
  std::vector<std::string> validate = {"python3", "-c", kValidator,
                                       (source_dir() / "docs/kernels-json.schema.json").string()};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const fs::path file = out / (std::to_string(i) + ".json");
    write_file(file, bad[i]);
    ProcessResult r = run_process(
        {{validate[0], validate[1], validate[2], validate[3], file.string()}});
    INFO(bad[i] << "\n" << r.out << r.err);
    CHECK(r.exit_code != 0);
  }
}
