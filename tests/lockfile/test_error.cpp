// error.h: names, exit codes and the message format.
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "kernels/lockfile/error.h"

using namespace kernels;

TEST_CASE("every error code has a distinct name and its documented exit code", "[error]") {
  const std::vector<std::pair<ErrorCode, int>> table = {{ErrorCode::usage, 2},
                                                        {ErrorCode::lockfile_missing, 3},
                                                        {ErrorCode::lockfile_stale, 4},
                                                        {ErrorCode::lockfile_invalid, 5},
                                                        {ErrorCode::integrity_mismatch, 6},
                                                        {ErrorCode::network, 7},
                                                        {ErrorCode::http_permanent, 8},
                                                        {ErrorCode::offline_not_cached, 9},
                                                        {ErrorCode::lock_timeout, 10},
                                                        {ErrorCode::unsafe, 11},
                                                        {ErrorCode::no_variant, 12},
                                                        {ErrorCode::io, 13},
                                                        {ErrorCode::no_device, 14},
                                                        {ErrorCode::untrusted, 15},
                                                        {ErrorCode::internal, 70}};
  std::set<std::string_view> names;
  for (const auto& [code, exit] : table) {
    CHECK(exit_code(code) == exit);
    CHECK(error_code_name(code) != "unknown");
    names.insert(error_code_name(code));
  }
  CHECK(names.size() == table.size());
  CHECK(error_code_name(ErrorCode::lockfile_invalid) == "lockfile_invalid");
}

TEST_CASE("Error::message is '<object>: <what>' plus an optional hint line", "[error]") {
  CHECK(make_error(ErrorCode::io, "disk full", "/c/blobs/x", "free space").message() ==
        "/c/blobs/x: disk full\nhint: free space");
  CHECK(make_error(ErrorCode::io, "disk full", "/c/blobs/x").message() == "/c/blobs/x: disk full");
  CHECK(make_error(ErrorCode::internal, "bug").message() == "bug");
}

TEST_CASE("Result carries a value or an error", "[error]") {
  Result<int> v = 3;
  REQUIRE(v.ok());
  CHECK(*v == 3);
  Result<int> e = make_error(ErrorCode::usage, "bad");
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().code == ErrorCode::usage);
  Result<void> fine = ok();
  CHECK(fine.ok());
}
