#include "kernels/lockfile/variant_hash.h"

#include <algorithm>
#include <system_error>

#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/variant_files.h"

namespace kernels {

bool is_hashed_variant(std::string_view variant_name) {
  return variant_name.substr(0, 5) == "torch" || variant_name.substr(0, 6) == "cubin-";
}

namespace {

struct HashedFile {
  std::string variant;
  std::string rel;  // path inside the variant dir, "/"-separated
};

// The Python rule is a raw string prefix test on the repo path ("build/torch"), then
// pathlib parts: parts[1] is the variant and the rest, joined, the file name ("." if none).
std::optional<HashedFile> hashed_file(std::string_view path, HashRules rules) {
  if (path.substr(0, 11) != "build/torch" && path.substr(0, 12) != "build/cubin-") {
    return std::nullopt;
  }
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (rules == HashRules::current && is_bytecode_path(path)) return std::nullopt;
  HashedFile f;
  f.variant = std::string(parts[1]);
  for (std::size_t i = 2; i < parts.size(); ++i) {
    if (i > 2) f.rel += '/';
    f.rel += parts[i];
  }
  if (f.rel.empty()) f.rel = ".";
  return f;
}

}  // namespace

std::string git_lfs_concat_hash(std::vector<VariantFileDigest> files) {
  std::sort(files.begin(), files.end(), [](const VariantFileDigest& a, const VariantFileDigest& b) {
    return a.rel_path < b.rel_path;
  });
  Sha256 h;
  for (const VariantFileDigest& f : files) {
    h.update(f.rel_path);
    // A digest that is not hex (never one the tree parser accepted) adds no bytes.
    if (auto raw = hex_to_bytes(f.digest_hex)) h.update(*raw);
  }
  return "sha256-" + h.finish_hex();
}

std::map<std::string, VariantLock> compute_variant_hashes(const RepoTree& tree, HashRules rules) {
  std::map<std::string, std::vector<VariantFileDigest>> groups;
  for (const TreeEntry& e : tree) {
    if (!e.is_file) continue;
    auto f = hashed_file(e.path, rules);
    if (!f) continue;
    groups[f->variant].push_back({std::move(f->rel), e.digest().hex});
  }
  std::map<std::string, VariantLock> out;
  for (auto& [variant, files] : groups) {
    out.emplace(variant, VariantLock{git_lfs_concat_hash(std::move(files)),
                                     std::string(kHashTypeGitLfsConcat)});
  }
  return out;
}

VariantCheck check_variant_on_disk(const std::filesystem::path& snapshot_dir,
                                   const std::string& variant, const RepoTree& tree,
                                   const VariantLock& expected, HashRules rules) {
  VariantCheck check;
  check.variant = variant;
  const bool safe_name = !variant.empty() && variant.find('/') == std::string::npos &&
                         variant != "." && variant != ".." && is_safe_repo_path(variant);
  if (!safe_name || !is_hashed_variant(variant)) {
    check.problems.push_back({FileProblem::Kind::unreadable, "build/" + variant, "",
                              "not a hashed variant name (expected torch* or cubin-*)"});
    return check;
  }
  std::vector<VariantFileDigest> files;
  std::size_t listed = 0;
  for (const TreeEntry& e : tree) {
    if (!e.is_file) continue;
    auto f = hashed_file(e.path, rules);
    if (!f || f->variant != variant) continue;
    ++listed;
    if (!is_safe_repo_path(e.path)) {
      check.problems.push_back({FileProblem::Kind::unreadable, e.path, "", "unsafe path"});
      continue;
    }
    const std::filesystem::path on_disk = snapshot_dir / e.path;
    const FileDigest want = e.digest();
    std::error_code ec;
    const auto st = std::filesystem::status(on_disk, ec);  // follows symlinks
    if (ec || !std::filesystem::exists(st)) {
      check.problems.push_back({FileProblem::Kind::missing, e.path, want.hex, ""});
      continue;
    }
    auto actual = want.kind == FileDigest::Kind::sha256 ? sha256_file(on_disk)
                                                        : git_blob_sha1_file(on_disk);
    if (!actual) {
      check.problems.push_back(
          {FileProblem::Kind::unreadable, e.path, want.hex, actual.error().what});
      continue;
    }
    if (*actual != want.hex) {
      check.problems.push_back({FileProblem::Kind::mismatch, e.path, want.hex, *actual});
    }
    files.push_back({std::move(f->rel), std::move(*actual)});
  }
  if (listed == 0) {
    check.problems.push_back({FileProblem::Kind::missing, "build/" + variant + "/", "",
                              "the tree lists no files for this variant"});
  }
  check.computed_hash = git_lfs_concat_hash(std::move(files));
  check.hash_matches = expected.hash_type == kHashTypeGitLfsConcat &&
                       check.computed_hash == expected.hash;
  return check;
}

}  // namespace kernels
