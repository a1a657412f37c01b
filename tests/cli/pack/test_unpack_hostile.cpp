// Hostile archives (fetch-reliability.md b.3): each is refused with ErrorCode::unsafe (or
// integrity_mismatch where the entry is well-formed but unlocked), and nothing is written outside
// the staging directory, which is removed.
#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "pack/pack.h"
#include "pack_fixture.h"

namespace fs = std::filesystem;
using namespace pack_test;
using kernels::ErrorCode;

namespace {

const RawEntry kManifest{"kernels-pack.json", AE_IFREG, R"({"format_version":1,"kind":"cache"})"};

// Every file under `root`, recursively.
std::size_t count_files(const fs::path& root) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    n += !it->is_directory();
  }
  return n;
}

void expect_refused(const std::vector<RawEntry>& entries, ErrorCode code = ErrorCode::unsafe,
                    bool zstd = true, kernels::cli::PackLimits limits = {},
                    const std::string& says = "") {
  Fixture f;
  const fs::path archive = f.dir.path / "hostile.tar.zst";
  write_tar(archive, entries, zstd);
  const fs::path dest = f.dir.path / "site" / "cache";
  const std::size_t outside_before = count_files(f.dir.path / "site");
  auto r = kernels::cli::unpack(archive, dest, f.lock, limits);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message());
  CHECK(r.error().code == code);
  if (!says.empty()) CHECK_THAT(r.error().message(), Catch::Contains(says));
  CHECK(count_files(f.dir.path / "site") == outside_before);  // nothing written anywhere
  CHECK(fs::is_empty(dest));                                  // staging removed too
  CHECK_FALSE(fs::exists("/tmp/kernels-pack-escape"));
}

}  // namespace

TEST_CASE("unpack refuses dot-dot traversal in every spelling", "[pack][hostile]") {
  for (const char* name : {"../x", "a/../../x", "./../../x", "a/b/./../../..",
                           "foo/./bar/../../../etc/passwd", "../../tmp/kernels-pack-escape"}) {
    INFO(name);
    expect_refused({kManifest, {name, AE_IFREG, "evil"}});
  }
}

TEST_CASE("unpack refuses absolute, drive-letter and backslash paths", "[pack][hostile]") {
  for (const char* name : {"/tmp/kernels-pack-escape", "//etc/x", "C:\\x", "\\\\host\\share\\x",
                           "D:x", "a\\..\\..\\x"}) {
    INFO(name);
    expect_refused({kManifest, {name, AE_IFREG, "evil"}});
  }
}

TEST_CASE("unpack refuses symbolic links, even harmless-looking ones", "[pack][hostile]") {
  expect_refused({kManifest, {"lib", AE_IFLNK, "", "/etc"}, {"lib/x", AE_IFREG, "evil"}});
  expect_refused({kManifest, {"libk.so", AE_IFLNK, "", "/etc/passwd"}});
  expect_refused({kManifest, {"a", AE_IFLNK, "", ".."}});
}

TEST_CASE("unpack refuses hard links", "[pack][hostile]") {
  expect_refused({kManifest, {"hl", AE_IFREG, "", "", "/etc/passwd"}});
  expect_refused({kManifest, {"x", AE_IFREG, "data"}, {"hl", AE_IFREG, "", "", "x"}});
}

TEST_CASE("unpack refuses device files and FIFOs", "[pack][hostile]") {
  expect_refused({kManifest, {"null", AE_IFCHR, ""}});
  expect_refused({kManifest, {"pipe", AE_IFIFO, ""}});
}

TEST_CASE("unpack refuses duplicate paths (hash the first, load the last)", "[pack][hostile]") {
  expect_refused({kManifest, {"k.cubin", AE_IFREG, "good"}, {"k.cubin", AE_IFREG, "evil"}});
  expect_refused({kManifest, {"d", AE_IFDIR, ""}, {"d", AE_IFREG, "file"}});
}

TEST_CASE("unpack refuses names with control characters and overlong paths", "[pack][hostile]") {
  expect_refused({kManifest, {std::string("a\nb"), AE_IFREG, "x"}});
  expect_refused({kManifest, {std::string(2000, 'a'), AE_IFREG, "x"}});
}

TEST_CASE("unpack refuses names that are one file on case-insensitive or normalising filesystems",
          "[pack][hostile]") {
  const auto refuse = [](std::vector<RawEntry> entries, const std::string& says) {
    entries.insert(entries.begin(), kManifest);
    expect_refused(entries, ErrorCode::unsafe, true, {}, says);
  };
  const std::string one_name = "one name on case-insensitive";
  refuse({{"Kernel.cubin", AE_IFREG, "a"}, {"kernel.cubin", AE_IFREG, "b"}}, one_name);
  // NFC U+00E9 and NFD e + U+0301: one name on macOS.
  refuse({{"caf\xC3\xA9.cubin", AE_IFREG, "a"}, {"cafe\xCC\x81.cubin", AE_IFREG, "b"}}, one_name);
  // A zero-width joiner that HFS+ ignores when comparing names.
  refuse({{"ab.cubin", AE_IFREG, "a"},
          {"a\xE2\x80\x8D"
           "b.cubin",
           AE_IFREG, "b"}},
         one_name);
  // Directories that differ only in case merge there, even without directory entries.
  refuse({{"Build/x.cubin", AE_IFREG, "a"}, {"build/y.cubin", AE_IFREG, "b"}}, one_name);
  refuse({{"build", AE_IFDIR, ""}, {"BUILD", AE_IFDIR, ""}}, one_name);
  // Windows drops a trailing dot or space, and KERNEL~1.CUB may be another file's short name.
  refuse({{"kernel.cubin.", AE_IFREG, "a"}}, "ending in a dot or a space");
  refuse({{"build/kernel.cubin ", AE_IFREG, "a"}}, "ending in a dot or a space");
  refuse({{"KERNEL~1.CUB", AE_IFREG, "a"}}, "8.3 short name");
  refuse({{"PROGRA~1/kernel.cubin", AE_IFREG, "a"}}, "8.3 short name");
  refuse({{"\xFF\xFE.cubin", AE_IFREG, "a"}}, "not valid UTF-8");
}

// Staging is walked without following anything in the way (test_unpack_staging.cpp), so a name
// that is a file and a directory must be refused from the archive's names alone, in any order.
TEST_CASE("unpack refuses a name that is a file and a directory", "[pack][hostile]") {
  const auto refuse = [](std::vector<RawEntry> entries, const std::string& says) {
    entries.insert(entries.begin(), kManifest);
    expect_refused(entries, ErrorCode::unsafe, true, {}, says);
  };
  refuse({{"a", AE_IFREG, "x"}, {"a/b", AE_IFREG, "y"}}, "is inside \"a\", which is a file");
  refuse({{"a", AE_IFREG, "x"}, {"a/b/c", AE_IFREG, "y"}}, "which is a file");
  refuse({{"a/b", AE_IFREG, "y"}, {"a", AE_IFREG, "x"}}, "is a file and a directory");
  refuse({{"a", AE_IFDIR, ""}, {"a/b", AE_IFREG, "y"}, {"a", AE_IFREG, "x"}}, "appears twice");
}

TEST_CASE("unpack caps total size and entry count", "[pack][hostile]") {
  kernels::cli::PackLimits small;
  small.max_total_bytes = 1000;
  expect_refused({kManifest, {"big", AE_IFREG, std::string(5000, 'z')}}, ErrorCode::unsafe, true,
                 small);
  kernels::cli::PackLimits few;
  few.max_entries = 10;
  std::vector<RawEntry> many{kManifest};
  for (int i = 0; i < 50; ++i) many.push_back({"f" + std::to_string(i), AE_IFREG, ""});
  expect_refused(many, ErrorCode::unsafe, true, few);
}

TEST_CASE("unpack refuses files the lock does not reference", "[pack][hostile]") {
  // A valid pack with one extra, unreferenced blob appended.
  Fixture f;
  const fs::path good = f.dir.path / "good.tar.zst";
  REQUIRE(kernels::cli::pack_cache(f.cache, f.lock, good).ok());
  std::vector<RawEntry> entries;
  archive* in = archive_read_new();
  archive_read_support_format_tar(in);
  archive_read_support_filter_zstd(in);
  REQUIRE(archive_read_open_filename(in, good.c_str(), 65536) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
    std::string data(static_cast<std::size_t>(archive_entry_size(e)), '\0');
    archive_read_data(in, data.data(), data.size());
    entries.push_back({archive_entry_pathname(e), AE_IFREG, data});
  }
  archive_read_free(in);
  REQUIRE(entries.size() == 7);  // manifest, tree, ref, four blobs
  entries.push_back({"kernels--kernels-community--attention-fa3/blobs/" + std::string(64, 'e'),
                     AE_IFREG, "smuggled"});
  const fs::path archive = f.dir.path / "extra.tar.zst";
  write_tar(archive, entries);
  const fs::path dest = f.dir.path / "dest";
  auto r = kernels::cli::unpack(archive, dest, f.lock);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK(r.error().what.find("not referenced by kernels.lock") != std::string::npos);
  CHECK(fs::is_empty(dest));
}

TEST_CASE("unpack refuses an archive without a pack manifest", "[pack][hostile]") {
  expect_refused({{"README.md", AE_IFREG, "hello"}});
}

TEST_CASE("unpack refuses truncated archives and trailing corruption", "[pack][hostile]") {
  Fixture f;
  const fs::path good = f.dir.path / "good.tar";
  write_tar(good, {kManifest, {"data", AE_IFREG, std::string(20000, 'q')}}, false);
  std::string bytes = slurp(good);
  const fs::path cut = f.dir.path / "cut.tar";
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 5000);
  const fs::path dest = f.dir.path / "dest";
  auto r = kernels::cli::unpack(cut, dest, f.lock);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK(fs::is_empty(dest));

  // A broken header checksum.
  std::string bad = bytes;
  bad[148] = bad[148] == '1' ? '2' : '1';
  const fs::path badsum = f.dir.path / "badsum.tar";
  std::ofstream(badsum, std::ios::binary) << bad;
  auto r2 = kernels::cli::unpack(badsum, dest, f.lock);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().code == ErrorCode::unsafe);
}

TEST_CASE("unpack refuses other container formats", "[pack][hostile]") {
  Fixture f;
  const fs::path zip = f.dir.path / "k.tar.zst";
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_open_filename(a, zip.c_str());
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "kernels-pack.json");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, 2);
  archive_write_header(a, e);
  archive_write_data(a, "{}", 2);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  auto r = kernels::cli::unpack(zip, f.dir.path / "dest", f.lock);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::unsafe);
}

namespace {

// Writes raw tar bytes (uncompressed) and expects unpack to refuse them with nothing left behind.
void expect_raw_refused(const std::string& bytes) {
  Fixture f;
  const fs::path archive = f.dir.path / "raw.tar";
  std::ofstream(archive, std::ios::binary) << bytes;
  const fs::path dest = f.dir.path / "dest";
  auto r = kernels::cli::unpack(archive, dest, f.lock);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK(fs::is_empty(dest));
  CHECK_FALSE(fs::exists(f.dir.path / "evil"));
}

const std::string kRawManifest = raw_entry("kernels-pack.json", '0',
                                           R"({"format_version":1,"kind":"cache"})");

}  // namespace

TEST_CASE("unpack refuses a PAX header that renames an innocent entry to a traversal",
          "[pack][hostile]") {
  expect_raw_refused(kRawManifest + pax_entry({{"path", "../evil"}}) +
                     raw_entry("innocent.txt", '0', "evil") + raw_end());
}

TEST_CASE("unpack refuses a PAX size that disagrees with the ustar size (smuggled entries)",
          "[pack][hostile]") {
  // The PAX record claims 0 bytes; the data block that follows holds a whole tar header.
  const std::string smuggled = raw_entry("../evil", '0', "x");
  expect_raw_refused(kRawManifest + pax_entry({{"size", "0"}}) +
                     raw_header("innocent.txt", '0', smuggled.size()) + smuggled + raw_end());
}

TEST_CASE("unpack refuses GNU sparse entries that claim a terabyte", "[pack][hostile]") {
  // Old GNU sparse header: one map entry (offset 1 MiB, 512 bytes) at byte 386, real size 1 TiB
  // at byte 483; the header checksum is recomputed after the edit.
  std::string h = raw_header("sparse.bin", 'S', 512);
  std::memcpy(h.data() + 257, "ustar  ", 8);  // GNU magic: the sparse fields are GNU's
  std::snprintf(h.data() + 386, 12, "%011llo", 1ull << 20);
  std::snprintf(h.data() + 398, 12, "%011llo", 512ull);
  std::snprintf(h.data() + 483, 12, "%011llo", 1ull << 40);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  expect_raw_refused(kRawManifest + h + std::string(512, 'a') + raw_end());
}

TEST_CASE("unpack refuses a base-256 size field larger than the archive", "[pack][hostile]") {
  expect_raw_refused(kRawManifest + raw_header("huge.bin", '0', 1ull << 40, true) +
                     std::string(512, 'z') + raw_end());
}
