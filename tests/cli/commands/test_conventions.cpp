// The command line as people expect it (issue 15): a version, "did you mean", the global options
// in every command's help and the exit codes once, archive names that say what they hold, a
// settable retry budget, and each problem said once.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "project_fixture.h"

using namespace kernels::test;

namespace {

using Args = std::vector<std::string>;

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size()))
    ++n;
  return n;
}

ProcessResult run_plain(const std::vector<std::string>& args) {
  static TempDir dir{"kernels-conventions"};
  return run_kernels(args, dir / "cache", "file:///nonexistent");
}

}  // namespace

TEST_CASE("kernels version and --version print the CMake version and the compatible Python kernels",
          "[output][version]") {
  for (const Args& args : {Args{"--version"}, Args{"-V"}, Args{"version"}}) {
    ProcessResult r = run_plain(args);
    INFO(args.front() << ": " << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.rfind(std::string("kernels ") + KERNELS_CLI_VERSION + "\n", 0) == 0);
    CHECK(r.out.find("Python kernels package 0.16 and 0.17") != std::string::npos);
    CHECK(r.err.empty());
  }
  for (const Args& args : {Args{"version", "--json"}, Args{"--json", "--version"}}) {
    ProcessResult r = run_plain(args);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    nlohmann::json doc = nlohmann::json::parse(r.out);
    CHECK(doc["name"] == "kernels");
    CHECK(doc["version"] == KERNELS_CLI_VERSION);
    CHECK(doc["python_kernels_compatible"] == nlohmann::json::array({"0.16", "0.17"}));
  }
}

TEST_CASE("a mistyped command or option is exit 2 with a did-you-mean hint", "[output][usage]") {
  struct Case {
    std::vector<std::string> args;
    std::string hint;
  };
  for (const Case& c : {Case{{"downlod"}, "did you mean `download`?"},
                        Case{{"donwload", "proj"}, "did you mean `download`?"},
                        Case{{"--offline", "verfy"}, "did you mean `verify`?"},
                        Case{{"--cache-dir", "/tmp/x", "lcok"}, "did you mean `lock`?"},
                        Case{{"cache", "lss"}, "did you mean `ls`?"},
                        Case{{"download", "--all-variant"}, "did you mean `--all-variants`?"},
                        Case{{"--qiet", "download"}, "did you mean `--quiet`?"},
                        Case{{"help", "exit-code"}, "did you mean `exit-codes`?"}}) {
    ProcessResult r = run_plain(c.args);
    INFO(c.args.front() << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("hint: " + c.hint) != std::string::npos);
  }
  ProcessResult far = run_plain({"xyzzy"});
  CHECK(far.exit_code == 2);
  CHECK(far.err.find("did you mean") == std::string::npos);
  CHECK(far.err.find("hint: `kernels --help` lists the commands and options") != std::string::npos);
}

TEST_CASE(
    "every command's help shows the global options, and the exit codes are listed once, at the top",
    "[output][help]") {
  for (const Args& args :
       {Args{"download", "--help"}, Args{"lock", "--help"}, Args{"cache", "--help"},
        Args{"cache", "rm", "--help"}, Args{"pack", "--help"}, Args{"help", "verify"}}) {
    ProcessResult r = run_plain(args);
    INFO(args.front() << " " << args.back() << ": " << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Global options") != std::string::npos);
    for (const char* option :
         {"--offline", "-q,--quiet", "--json", "--cache-dir DIR", "-j,--jobs N", "--version"}) {
      CHECK(r.out.find(option) != std::string::npos);
    }
    CHECK(r.out.find("70  internal") == std::string::npos);
    CHECK(r.out.find("kernels help exit-codes") != std::string::npos);
  }
  // info has its own --version N: there the global flag is shown as -V only.
  ProcessResult info = run_plain({"info", "--help"});
  CHECK(info.out.find("  -V                     Print the version") != std::string::npos);
  CHECK(info.out.find("-V,--version") == std::string::npos);
  CHECK(info.out.find("(--version here is this command's own option)") != std::string::npos);
  ProcessResult top = run_plain({"--help"});
  CHECK(count_of(top.out, "70  internal") == 1);
  ProcessResult codes = run_plain({"help", "exit-codes"});
  CHECK(codes.exit_code == 0);
  CHECK(codes.out.find("9   offline_not_cached") != std::string::npos);
  CHECK(codes.out.find("130 interrupted") != std::string::npos);
}

// Regression (issue 15): `pack --out k.tar.gz` wrote a zstd archive under a gzip name.
TEST_CASE("pack refuses an archive name that says another format, before writing anything",
          "[pack][usage]") {
  LockedProject p(1, 100);
  REQUIRE(p.download().exit_code == 0);
  for (const char* name : {"k.tar.gz", "k.tgz", "k.tar", "k.zip", "K.TAR.XZ"}) {
    const fs::path out = p.dir / name;
    ProcessResult r = p.run({"pack", p.project.string(), "--out", out.string()});
    INFO(name << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("zstd-compressed tar") != std::string::npos);
    CHECK(r.err.find(".tar.zst") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  ProcessResult good = p.run({"pack", p.project.string(), "--out", (p.dir / "k.tar.zst").string()});
  INFO(good.err);
  CHECK(good.exit_code == 0);
}

TEST_CASE(
    "KERNELS_RETRIES sets how often a refused connection is retried, and a bad value is exit 2",
    "[download][retry]") {
  TempDir dir;
  const RefusingPort refusing;
  const std::string endpoint = refusing.url();
  ProcessResult none = run_kernels({"versions", "org/attn"}, dir / "cache", endpoint,
                                   {{"KERNELS_RETRIES", "0"}});
  INFO(none.err);
  CHECK(none.exit_code == 7);
  CHECK(none.err.find("retry") == std::string::npos);
  CHECK(none.seconds < 5);

  ProcessResult one = run_kernels({"versions", "org/attn"}, dir / "cache", endpoint,
                                  {{"KERNELS_RETRIES", "1"}});
  INFO(one.err);
  CHECK(one.exit_code == 7);
  CHECK(count_of(one.err, "retry 1 of 1 in 1 s (KERNELS_RETRIES") == 1);
  CHECK(one.err.find("tries remaining") == std::string::npos);
  CHECK(one.seconds >= 1);

  for (const char* bad : {"-1", "21", "many"}) {
    ProcessResult r = run_kernels({"versions", "org/attn"}, dir / "cache", endpoint,
                                  {{"KERNELS_RETRIES", bad}});
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("KERNELS_RETRIES must be a number from 0 to 20") != std::string::npos);
  }
}

// Regressions (issue 15): an error's first problem was printed twice ("error: X" and then
// "download incomplete (first problem: X)"), and KERNELS_JOBS=0 three times.
TEST_CASE("download says each problem once", "[download][output]") {
  LockedProject p(2, 100);
  ProcessResult jobs = p.download({"--all-variants"}, {{"KERNELS_JOBS", "0"}});
  INFO(jobs.err);
  CHECK(jobs.exit_code == 2);
  CHECK(count_of(jobs.err, "KERNELS_JOBS must be a number from 1 to 256") == 1);

  kernels::TreeEntry victim = p.entry_of("cubin-cu130-sm80", false);
  p.repo.tamper_file(p.commit, victim.path, "not the locked bytes");
  ProcessResult one = p.download();
  INFO(one.err);
  CHECK(one.exit_code == 6);
  CHECK(count_of(one.err, victim.path) == 1);
  CHECK(count_of(one.err, "error: ") == 1);
  CHECK(one.err.find("first problem") == std::string::npos);

  LockedProject q(2, 100);
  kernels::TreeEntry first = q.entry_of("cubin-cu130-sm80", false);
  kernels::TreeEntry second = q.entry_of("cubin-cu130-sm90a", false);
  q.repo.tamper_file(q.commit, first.path, "not the locked bytes");
  q.repo.tamper_file(q.commit, second.path, "not these either");
  ProcessResult two = q.download();
  INFO(two.err);
  CHECK(two.exit_code == 6);
  CHECK(count_of(two.err, first.path) == 1);
  CHECK(count_of(two.err, second.path) == 1);
  CHECK(two.err.find("download incomplete: 2 problems (above)") != std::string::npos);
}
