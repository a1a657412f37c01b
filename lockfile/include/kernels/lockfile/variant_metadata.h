// build/<variant>/metadata.json, as kernels 0.17.2 reads it (kernels-common Metadata), and the
// per-file digest it carries: the one rule for which files the digest covers and how a file is
// checked against it, shared by `download` (before a file becomes visible) and `verify`.
//
//   "digest": {"algorithm": "sha256" | "sha512", "files": {"<rel/path>": "<base64 digest>", ...}}
//
// Covered: every regular file under the variant directory except metadata.json and
// metadata.json.sigstore at its top, *.pyc and anything under __pycache__ (variant_files.h's
// bytecode rule). Keys are '/'-separated paths relative to the variant directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/error.h"

namespace kernels {

struct VariantDigest {
  DigestAlgorithm algorithm = DigestAlgorithm::sha256;
  std::map<std::string, std::string> files;  // relative path -> base64; sorted bytewise
};

// A `kernel-depends` entry: {"repo-id", "version" | "revision"}.
struct MetadataDependency {
  std::string repo_id;
  std::optional<std::uint64_t> version;
  std::optional<std::string> revision;
};

struct VariantMetadata {
  std::string name;  // ^[a-z][-a-z0-9]*[a-z0-9]$
  std::string id;
  std::uint64_t version = 0;
  std::optional<std::string> kernels_minver;  // "X.Y.Z"
  std::string license;
  std::optional<std::string> upstream;  // git URLs, normalised as 0.17.2 shows them (git_url.h)
  std::optional<std::string> source;
  std::vector<std::string> python_depends;
  std::vector<MetadataDependency> kernel_depends;
  std::string backend_type;  // cann cpu cuda metal neuron rocm tpu xpu
  std::vector<std::string> backend_archs;
  std::optional<VariantDigest> digest;
};

// Strict where 0.17.2 is (required keys, types, the name rule, kernels-minver's three numbers,
// backend.type, digest.algorithm, kernel-depends entries with no unknown key and exactly one of
// version / revision, provenance's commit/dirty pairs); unknown keys elsewhere are ignored, as
// there. Errors are ErrorCode::lockfile_invalid naming <source>:<line>:<column>.
Result<VariantMetadata> parse_variant_metadata(std::string_view text,
                                               std::string_view source = "metadata.json");
// Reads the file once (a regular file, or a symlink to one, of at most 16 MiB) and parses it;
// `source` names it in errors (default: the path). A missing file is ErrorCode::io.
Result<VariantMetadata> read_variant_metadata(const std::filesystem::path& path,
                                              std::string_view source = {});

// Whether the digest covers a file at this path relative to the variant directory.
bool is_digest_covered(std::string_view rel_path);

// One way a variant's files disagree with its digest, in kernels' words:
//   "Algorithm mismatch: ...", "Missing file: p", "File hash mismatch for p: expected: E, got: G",
//   "Unknown file: p".
struct DigestViolation {
  enum class Kind { missing, mismatch, unknown, unreadable };
  Kind kind = Kind::missing;
  std::string path;  // relative to the variant directory
  std::string expected;
  std::string actual;  // base64, or the OS error (unreadable)
  std::string message() const;
};

// The file set alone (from a tree listing, before anything is fetched): every covered path must
// be in the digest and every digest path must be listed. Digest order, then unknown files.
std::vector<DigestViolation> check_digest_paths(const VariantDigest& digest,
                                                const std::vector<std::string>& rel_paths);
// One file's bytes on disk against the digest's entry for `rel_path` (a path the digest does not
// name is an `unknown` violation).
std::optional<DigestViolation> check_digest_file(const VariantDigest& digest,
                                                 std::string_view rel_path,
                                                 const std::filesystem::path& file);
// A whole variant directory (symlinks to files followed, symlinked directories not entered), as
// kernels' Digest::validate does.
std::vector<DigestViolation> check_variant_digest(const std::filesystem::path& variant_dir,
                                                  const VariantDigest& digest);

}  // namespace kernels
