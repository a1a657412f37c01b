// `kernels verify [--repair]`: every bad or missing file is named; --repair fetches them again.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "project_fixture.h"

using namespace kernels::test;

TEST_CASE("verify passes on a fresh download and names each corrupt or missing file", "[verify]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  ProcessResult good = p.run({"verify", p.project.string()});
  INFO(good.out << good.err);
  REQUIRE(good.exit_code == 0);
  CHECK(good.out.find("OK      org/attn cubin-cu130-sm90a") != std::string::npos);

  auto layout = p.layout();
  kernels::TreeEntry corrupt = p.entry_of("cubin-cu130-sm90a", true);
  kernels::TreeEntry missing = p.entry_of("cubin-cu130-sm80", false);
  fs::path blob = layout.blob_path("org/attn", corrupt.digest().hex);
  std::string bytes = read_file(blob);
  bytes[bytes.size() / 2] ^= 1;
  write_file(blob, bytes);
  fs::remove(layout.snapshot_file("org/attn", p.commit, missing.path));

  ProcessResult bad = p.run({"verify", p.project.string()});
  CHECK(bad.exit_code == 6);
  CHECK(bad.out.find("corrupt: " + corrupt.path) != std::string::npos);
  CHECK(bad.out.find("missing: " + missing.path) != std::string::npos);
  CHECK(bad.err.find("2 problems") != std::string::npos);

  ProcessResult repaired = p.run({"verify", "--repair", p.project.string()});
  INFO(repaired.out << repaired.err);
  CHECK(repaired.exit_code == 0);
  CHECK(repaired.out.find("REPAIRED org/attn cubin-cu130-sm90a") != std::string::npos);
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

TEST_CASE("verify --json lists problems per variant", "[verify][json]") {
  LockedProject p;
  REQUIRE(p.download({"--variant", "cubin-cu130-sm80"}).exit_code == 0);
  ProcessResult r = p.run({"--json", "verify", p.project.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = nlohmann::json::parse(r.out)["kernels"];
  REQUIRE(doc.size() == 1);
  CHECK(doc[0]["variants"].size() == 1);
  CHECK(doc[0]["variants"][0]["variant"] == "cubin-cu130-sm80");
  CHECK(doc[0]["variants"][0]["ok"] == true);
  CHECK(doc[0]["variants"][0]["hash_problem"].is_null());
}

TEST_CASE("verify of a lock nothing was downloaded for fails (exit 6)", "[verify]") {
  LockedProject p;
  ProcessResult r = p.run({"verify", p.project.string()});
  CHECK(r.exit_code == 6);
  CHECK(r.out.find("MISSING org/attn@" + p.commit) != std::string::npos);
}

// Regression (issue 12, defect 15): bidi and zero-width characters in tree paths were printed
// raw, so a hostile repo could make a message read as something else.
TEST_CASE("bidi and zero-width characters in paths are shown as <U+XXXX>, never raw", "[verify]") {
  TempDir dir{"kernels-bidi"};
  MirrorRepo repo(dir / "mirror", "org/bidi");
  const std::string hidden =
      "build/cubin-cu130-sm80/evil\xe2\x80\xae"
      "nibuc.py\xe2\x80\x8b";
  std::string commit = repo.publish(1, {{hidden, "x = 1\n", false},
                                        {"build/cubin-cu130-sm80/ok.py", "y = 2\n", false}});
  write_file(dir / "project" / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/bidi\" = 1\n");
  const std::string endpoint = file_endpoint(dir / "mirror");
  REQUIRE(run_kernels({"lock", (dir / "project").string()}, dir / "cache", endpoint).exit_code ==
          0);
  REQUIRE(run_kernels({"download", "--all-variants", (dir / "project").string()}, dir / "cache",
                      endpoint)
              .exit_code == 0);
  fs::remove(kernels::CacheLayout(dir / "cache").snapshot_file("org/bidi", commit, hidden));
  ProcessResult bad = run_kernels({"verify", (dir / "project").string()}, dir / "cache", endpoint);
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code == 6);
  CHECK(bad.out.find("evil<U+202E>nibuc.py<U+200B>") != std::string::npos);
  CHECK(bad.out.find("\xe2\x80\xae") == std::string::npos);
  CHECK(bad.err.find("\xe2\x80\xae") == std::string::npos);
}
