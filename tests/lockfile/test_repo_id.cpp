// RepoId: a repo id checked once where it enters; the cache layout takes it without checking
// again and gives the same paths as for the id written as text.
#include <catch2/catch.hpp>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/repo_id.h"

using namespace kernels;

TEST_CASE("RepoId::parse accepts exactly the ids is_repo_id accepts", "[repo_id]") {
  for (const char* good : {"org/name", "kernels-community/attention-fa3", "a_b/c.d", "A1/b2"}) {
    INFO(good);
    auto id = RepoId::parse(good);
    REQUIRE(id.has_value());
    CHECK(id->str() == good);
  }
  for (const char* bad : {"", "org", "/name", "org/", "org/name/x", "../x", "org/na--me",
                          "org/na..me", "-org/name", "org/name-", "org/na me"}) {
    INFO(bad);
    CHECK_FALSE(RepoId::parse(bad).has_value());
    CHECK_FALSE(is_repo_id(bad));
  }
}

TEST_CASE("CacheLayout gives the same paths for a RepoId and for its text", "[repo_id][cache]") {
  const CacheLayout cache("/cache-root");
  const std::string text = "org/name";
  const RepoId repo = *RepoId::parse(text);
  const std::string commit(40, 'a');
  const std::string etag(64, 'b');
  CHECK(cache.repo_dir(repo) == cache.repo_dir(text));
  CHECK(cache.blob_path(repo, etag) == cache.blob_path(text, etag));
  CHECK(cache.snapshot_file(repo, commit, "build/v/x.cubin") ==
        cache.snapshot_file(text, commit, "build/v/x.cubin"));
  CHECK(cache.ref_path(repo, "v1") == cache.ref_path(text, "v1"));
  CHECK(cache.tree_path(repo, commit) == cache.tree_path(text, commit));
  CHECK(cache.lock_path(repo, etag) == cache.lock_path(text, etag));
  CHECK(cache.no_exist_path(repo, commit, "a/b") == cache.no_exist_path(text, commit, "a/b"));
  // Other names are still checked on every call.
  CHECK(cache.snapshot_file(repo, commit, "../x") == cache.snapshot_file("bad", commit, "x"));
  CHECK(cache.blob_path(repo, "nothex") == cache.blob_path("bad", etag));
  auto r = cache.read_tree("not a repo", commit);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::unsafe);
}
