// pyproject.toml [tool.kernels.dependencies]: integer versions, file order, clear errors.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "kernels/lockfile/pyproject.h"
#include "support.h"

using namespace kernels;
using kernels::test::hf_fixtures;

namespace {

void check_error(std::string_view text, const std::string& at, const std::string& says) {
  auto r = parse_pyproject(text, "pyproject.toml");
  REQUIRE_FALSE(r.ok());
  INFO("message: " << r.error().message());
  CHECK(r.error().code == ErrorCode::lockfile_invalid);
  CHECK(r.error().object == "pyproject.toml:" + at);
  CHECK(r.error().what.find(says) != std::string::npos);
}

}  // namespace

TEST_CASE("the real 8ac69fc5 pyproject fixtures parse in file order", "[pyproject]") {
  auto deps = read_pyproject(hf_fixtures() /
                             "kernels@8ac69fc5/kernels/tests/kernel_locking/pyproject.toml");
  INFO((deps ? std::string() : deps.error().message()));
  REQUIRE(deps.ok());
  REQUIRE(deps->size() == 2);
  CHECK((*deps)[0] == KernelDependency{"kernels-community/relu", 1});
  CHECK((*deps)[1] == KernelDependency{"kernels-test/versions", 2});
  auto layer = read_pyproject(hf_fixtures() /
                              "kernels@8ac69fc5/kernels/tests/layer_locking/pyproject.toml");
  REQUIRE(layer.ok());
  REQUIRE(layer->size() == 1);
  CHECK((*layer)[0] == KernelDependency{"kernels-test/versions", 2});
}

TEST_CASE("file order is kept even when it is not sorted", "[pyproject]") {
  std::string text = "[project]\nname = \"x\"\n\n[tool.kernels.dependencies]\n";
  const std::vector<std::string> ids = {
      "zz/last", "aa/first", "mm/middle", "kernels-community/b", "kernels-community/a", "q/q"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    text += "\"" + ids[i] + "\" = " + std::to_string(i) + "\n";
  }
  auto deps = parse_pyproject(text);
  REQUIRE(deps.ok());
  REQUIRE(deps->size() == ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CHECK((*deps)[i].repo_id == ids[i]);
    CHECK((*deps)[i].version == static_cast<int>(i));
  }
}

TEST_CASE("inline tables and dotted keys keep file order too", "[pyproject]") {
  auto inline_table = parse_pyproject(
      "[tool.kernels]\ndependencies = { \"z/z\" = 3, \"a/a\" = 1, \"m/m\" = 2 }\n");
  REQUIRE(inline_table.ok());
  REQUIRE(inline_table->size() == 3);
  CHECK((*inline_table)[0].repo_id == "z/z");
  CHECK((*inline_table)[1].repo_id == "a/a");
  CHECK((*inline_table)[2].repo_id == "m/m");
  auto dotted = parse_pyproject(
      "tool.kernels.dependencies.\"y/y\" = 1\ntool.kernels.dependencies.\"b/b\" = 2\n");
  REQUIRE(dotted.ok());
  REQUIRE(dotted->size() == 2);
  CHECK((*dotted)[0] == KernelDependency{"y/y", 1});
  CHECK((*dotted)[1] == KernelDependency{"b/b", 2});
}

TEST_CASE("an empty dependencies table gives no dependencies", "[pyproject]") {
  auto deps = parse_pyproject("[tool.kernels.dependencies]\n");
  REQUIRE(deps.ok());
  CHECK(deps->empty());
}

TEST_CASE("a missing [tool.kernels.dependencies] table is a clear error", "[pyproject]") {
  check_error("[project]\nname = \"x\"\n", "1:1", "no [tool.kernels.dependencies] table");
  check_error("[project]\nname = \"x\"\n\n[tool.kernels]\nother = 1\n", "4:1",
              "no [tool.kernels.dependencies] table");
  auto r = parse_pyproject("", "pyproject.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().hint.find("\"kernels-community/relu\" = 1") != std::string::npos);
}

TEST_CASE("string version specifiers (the old PEP 440 form) are rejected with the integer form",
          "[pyproject]") {
  auto r = read_pyproject(hf_fixtures() / "kernels@v0.11.7/tests/layer_locking/pyproject.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::lockfile_invalid);
  const std::string suffix = "layer_locking/pyproject.toml:2:27";
  REQUIRE(r.error().object.size() > suffix.size());
  CHECK(r.error().object.substr(r.error().object.size() - suffix.size()) == suffix);
  CHECK(r.error().what.find("\">=0.1.0,<0.2.0\"") != std::string::npos);
  CHECK(r.error().what.find("no longer supported") != std::string::npos);
  CHECK(r.error().hint.find("\"kernels-test/versions\" = 1") != std::string::npos);
}

TEST_CASE("negative, float, boolean and table versions are errors at the value", "[pyproject]") {
  check_error("[tool.kernels.dependencies]\n\"a/b\" = -1\n", "2:9", "out of range");
  check_error("[tool.kernels.dependencies]\n\"a/b\" = 1.5\n", "2:9", "found a float");
  check_error("[tool.kernels.dependencies]\n\"a/b\" = true\n", "2:9", "found a boolean");
  check_error("[tool.kernels.dependencies]\n\"a/b\" = { version = 1 }\n", "2:9", "found a table");
  check_error("[tool.kernels.dependencies]\n\"a/b\" = 99999999999\n", "2:9", "out of range");
}

TEST_CASE("malformed repo ids are errors at the key", "[pyproject]") {
  check_error("[tool.kernels.dependencies]\n\"ok/fine\" = 1\n\"../etc\" = 1\n", "3:1",
              "malformed repo id \"../etc\"");
  check_error("[tool.kernels.dependencies]\nnoslash = 1\n", "2:1", "malformed repo id");
  check_error("[tool.kernels.dependencies]\n\"a--b/c\" = 1\n", "2:1", "malformed repo id");
}

TEST_CASE("TOML syntax errors and duplicate keys carry the parser's position", "[pyproject]") {
  auto r = parse_pyproject("[tool.kernels.dependencies]\n\"a/b\" = \n", "pyproject.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::lockfile_invalid);
  CHECK(r.error().object.rfind("pyproject.toml:2:", 0) == 0);
  auto d = parse_pyproject("[tool.kernels.dependencies]\n\"a/b\" = 1\n\"a/b\" = 2\n",
                           "pyproject.toml");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().object.rfind("pyproject.toml:3:", 0) == 0);
  // Regression (issue 12, defect 15): toml++ printed the quoted key garbled ('"aa/b" ').
  INFO(d.error().message());
  CHECK(d.error().what.find("duplicate key \"a/b\"") != std::string::npos);
  auto bare = parse_pyproject("[tool.kernels.dependencies]\nab = 1\nab = 2\n", "pyproject.toml");
  REQUIRE_FALSE(bare.ok());
  CHECK(bare.error().what.find("duplicate key ab:") != std::string::npos);
}

// toml++ 3.3 (Debian 12) reaches TOML_UNREACHABLE (undefined behaviour) when it asks whether
// U+00A1..U+0499 and others are whitespace, which for invalid text can be anywhere (found by
// fuzzing, tests/fuzz/corpus/pyproject/). It is given an ASCII copy; non-ASCII is still refused
// where TOML 1.0 refuses it, and accepted in strings and comments.
TEST_CASE("non-ASCII text reaches the TOML parser only as ASCII, and only where TOML allows it",
          "[pyproject]") {
  const std::string deps = "[tool.kernels.dependencies]\n\"org/name\" = 1\n";
  for (const std::string& good :
       {"\xEF\xBB\xBF" + deps,  // byte order mark
        "# caf\xC3\xA9 \xCA\xA0\n" + deps,
        "[project]\ndescription = \"caf\xC3\xA9 \\\" \xCA\xA0\"\n" + deps,
        "[project]\ndescription = 'caf\xC3\xA9 \xCA\xA0'\n" + deps,
        "[project]\nreadme = \"\"\"\ncaf\xC3\xA9\n\xCA\xA0 \"\"\"\"\n" + deps,
        "[project]\nreadme = '''\n\xCA\xA0'''''\n" + deps,
        "[project]\nreadme = \"\"\"a \\\n  b \xCA\xA0\"\"\"\n" + deps,
        // Valid TOML that toml++ itself mis-read: U+02A0 first after a line-ending backslash.
        "[project]\nreadme = \"\"\"a\\\n  \xCA\xA0"
        "b\"\"\"\n" +
            deps,
        "[project]\n\"caf\xC3\xA9\" = 1\n" + deps,
        "[project]\nemoji = \"\xF0\x9F\x98\x80\"\n" + deps}) {
    INFO(good);
    auto r = parse_pyproject(good, "pyproject.toml");
    INFO((r ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    CHECK(*r == std::vector<KernelDependency>{{"org/name", 1}});
  }
  check_error(
      "[tool.kernels.dependencies]\n[tool.kernels.deptorch28-cxx11-cu129-x8\xCA\xA0"
      "64-linuxendencies]\n",
      "2:40", "a non-ASCII character outside a string or comment");
  check_error(deps + "\"a/b\" = 1 \xC2\xA0\n", "3:11",
              "a non-ASCII character outside a string or comment");
  check_error(deps + "# caf\xC3\n", "3:6", "not UTF-8");             // truncated sequence
  check_error(deps + "x = \"\xED\xA0\x80\"\n", "3:6", "not UTF-8");  // a surrogate
  check_error(deps + "x = \"\xC0\xAF\"\n", "3:6", "not UTF-8");      // overlong '/'
  // Errors toml++ finds in the ASCII copy, on the same line.
  for (const std::string& bad : {"[project]\nreadme = \"\"\"a\\\xCA\xA0"  // "\ʠ" is no escape
                                 "b\"\"\"\n" +
                                     deps,
                                 "[project]\nname = -\"attention-\xCA\xA0"
                                 "b\"\"\"\"x\n" +
                                     deps}) {
    INFO(bad);
    auto r = parse_pyproject(bad, "pyproject.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::lockfile_invalid);
    CHECK(r.error().object.rfind("pyproject.toml:2:", 0) == 0);
  }
  // A non-ASCII repo id is still refused (as a malformed repo id, at its key).
  auto key = parse_pyproject("[tool.kernels.dependencies]\n\"org/n\xC3\xA9\" = 1\n",
                             "pyproject.toml");
  REQUIRE_FALSE(key.ok());
  CHECK(key.error().object.rfind("pyproject.toml:2:", 0) == 0);
}

TEST_CASE("read_pyproject: missing file and FIFO are errors, not hangs", "[pyproject]") {
  kernels::test::ScratchDir dir;
  auto missing = read_pyproject(dir / "pyproject.toml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().what == "file not found");
  REQUIRE(::mkfifo((dir / "fifo.toml").c_str(), 0600) == 0);
  auto fifo = read_pyproject(dir / "fifo.toml");
  REQUIRE_FALSE(fifo.ok());
  CHECK(fifo.error().what.find("FIFO") != std::string::npos);
}
