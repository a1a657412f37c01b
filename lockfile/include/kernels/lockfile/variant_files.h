// Which files of a repo tree belong to a build variant: one rule for the downloader, verify,
// mirror, pack and unpack, and the loader, so that none of them can disagree about whether a
// variant is complete.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/repo_tree.h"

namespace kernels {

// Python bytecode: a *.pyc file, or anything with a __pycache__ component. kernels >= 0.16 leaves
// it out of the variant hash and out of downloads (it is rebuilt on import and differs between
// Python versions), so a variant is complete without it. Works on repo paths and on paths
// relative to the variant directory alike.
bool is_bytecode_path(std::string_view path);

// The files under build/<variant>/ in tree order, bytecode excluded.
std::vector<TreeEntry> variant_files(const RepoTree& tree, std::string_view variant);

}  // namespace kernels
