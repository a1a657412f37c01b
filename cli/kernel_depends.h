// kernels 0.17's `kernel-depends`: a kernel's variants may each name other kernels it needs, in
// their metadata.json; `kernels lock` (format 2) locks them transitively (docs/LOCKFILE.md).
#pragma once

#include <string>
#include <vector>

#include "command_context.h"
#include "kernels/lockfile/repo_tree.h"
#include "kernels/lockfile/variant_metadata.h"

namespace kernels::cli {

// The kernel-depends of every variant of `repo_id` at `commit` that kernels 0.17 parses (our
// cubin-* variants it does not know, so neither does this), in variant order, duplicates kept.
// Each metadata.json is installed into the cache first (as 0.17's lock leaves them there), so it
// is checked against the tree and a later offline lock finds it. A variant without
// metadata.json is skipped with a warning (0.17 refuses to lock it); an invalid one is an error.
Result<std::vector<MetadataDependency>> kernel_depends_of(CommandContext& ctx,
                                                          const std::string& repo_id,
                                                          const std::string& commit,
                                                          const RepoTree& tree);

}  // namespace kernels::cli
