#include "pack_fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/variant_hash.h"

namespace fs = std::filesystem;

namespace pack_test {

TempDir::TempDir() {
  std::random_device rd;
  path = fs::temp_directory_path() /
         ("kernels-pack-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path, ec);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

static void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

static std::string git_sha1(const std::string& s) {
  kernels::GitBlobSha1 h(s.size());
  h.update(s);
  return *h.finish_hex();
}

Fixture::Fixture()
    : Fixture({
          {"build/cubin-cu130-sm90a/attention.cubin", std::string(300000, '\x7f') + "cubin"},
          {"build/cubin-cu130-sm90a/manifest.json", "{\"format_version\":1}"},
          {"build/cubin-cu130-sm80/attention.cubin", std::string(1000, 'a')},
          {"build/cubin-cu130-sm80/manifest.json", "{\"format_version\":1,\"arch\":\"sm80\"}"},
          {"README.md", "# attention\n"},
      }) {}

Fixture::Fixture(std::map<std::string, std::string> repo_files) : files(std::move(repo_files)) {
  for (const auto& [path, content] : files) {
    kernels::TreeEntry e;
    e.path = path;
    e.size = content.size();
    if (path.ends_with(".cubin")) {
      kernels::Sha256 sha;
      sha.update(content);
      e.lfs = kernels::LfsInfo{sha.finish_hex(), content.size(), 130};
      e.oid = git_sha1("pointer " + path);
    } else {
      e.oid = git_sha1(content);
    }
    tree.push_back(e);
  }
  kernels::KernelLock k;
  k.repo_id = repo;
  k.sha = sha;
  k.variants = kernels::compute_variant_hashes(tree);
  lock.kernels.push_back(k);

  cache = dir.path / "cache";
  const kernels::CacheLayout layout(cache);
  for (const auto& e : tree) {
    const auto d = e.digest();
    write_file(layout.blob_path(repo, d.hex), files[e.path]);
    if (!layout.link_snapshot_file(repo, sha, e.path, d.hex)) throw std::runtime_error("link");
  }
  if (!layout.write_tree(repo, sha, tree)) throw std::runtime_error("tree");
  if (!layout.write_ref(repo, "v1", sha)) throw std::runtime_error("ref");

  mirror = dir.path / "mirror";
  const std::string api = "api/kernels/" + repo;
  write_file(mirror / api / "tree" / sha, kernels::serialize_tree_listing(tree));
  write_file(mirror / api / "refs",
             "{\"branches\":[{\"name\":\"v1\",\"ref\":\"refs/heads/v1\",\"targetCommit\":\"" + sha +
                 "\"}],\"converts\":[],\"tags\":[]}");
  write_file(mirror / api / "revision" / "v1", "{\"id\":\"" + repo + "\",\"sha\":\"" + sha + "\"}");
  for (const auto& [path, content] : files) {
    write_file(mirror / "kernels" / repo / "resolve" / sha / path, content);
  }
}

void write_tar(const fs::path& out, const std::vector<RawEntry>& entries, bool zstd) {
  archive* a = archive_write_new();
  if (zstd) archive_write_add_filter_zstd(a);
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, out.c_str()) != ARCHIVE_OK) {
    throw std::runtime_error("cannot write test archive");
  }
  for (const auto& r : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, r.name.c_str());
    archive_entry_set_filetype(e, r.type);
    archive_entry_set_perm(e, 0644);
    if (!r.link.empty()) archive_entry_set_symlink(e, r.link.c_str());
    if (!r.hardlink.empty()) archive_entry_set_hardlink(e, r.hardlink.c_str());
    if (r.type == AE_IFCHR) archive_entry_set_rdev(e, makedev(1, 3));
    archive_entry_set_size(e, r.type == AE_IFREG && r.hardlink.empty()
                                  ? static_cast<la_int64_t>(r.data.size())
                                  : 0);
    archive_write_header(a, e);
    if (r.type == AE_IFREG && !r.data.empty()) archive_write_data(a, r.data.data(), r.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace pack_test

namespace pack_test {

namespace {
void put_octal(char* field, std::size_t width, std::uint64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}
std::string pad512(std::string s) {
  s.resize((s.size() + 511) / 512 * 512, '\0');
  return s;
}
}  // namespace

std::string raw_header(const std::string& name, char typeflag, std::uint64_t size,
                       bool base256_size) {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(h + 100, 8, 0644);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  if (base256_size) {
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xFF);
  } else {
    put_octal(h + 124, 12, size);
  }
  put_octal(h + 136, 12, 0);
  h[156] = typeflag;
  std::memcpy(h + 257,
              "ustar\0"
              "00",
              8);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  return std::string(h, 512);
}

std::string raw_entry(const std::string& name, char typeflag, const std::string& data) {
  return raw_header(name, typeflag, data.size()) + pad512(data);
}

std::string pax_entry(const std::map<std::string, std::string>& records) {
  std::string body;
  for (const auto& [key, value] : records) {
    const std::string rest = " " + key + "=" + value + "\n";
    std::size_t len = rest.size() + 1;
    while (std::to_string(len).size() + rest.size() != len) ++len;
    body += std::to_string(len) + rest;
  }
  return raw_entry("PaxHeader/x", 'x', body);
}

std::string raw_end() { return std::string(1024, '\0'); }

}  // namespace pack_test
