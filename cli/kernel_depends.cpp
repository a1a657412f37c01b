#include "kernel_depends.h"

#include <algorithm>

#include "installer.h"
#include "kernels/lockfile/variant.h"
#include "project.h"

namespace kernels::cli {

Result<std::vector<MetadataDependency>> kernel_depends_of(CommandContext& ctx,
                                                          const std::string& repo_id,
                                                          const std::string& commit,
                                                          const RepoTree& tree) {
  std::vector<MetadataDependency> out;
  for (const std::string& variant : tree_variants(tree)) {
    Result<VariantName> name = parse_variant_name(variant);
    if (!name || name->kind == VariantName::Kind::cubin) continue;
    const std::string path = "build/" + variant + "/metadata.json";
    auto meta = std::find_if(tree.begin(), tree.end(),
                             [&](const TreeEntry& e) { return e.is_file && e.path == path; });
    if (meta == tree.end()) {
      ctx.console().warn(repo_id + "@" + commit + ": variant " + variant +
                         " has no metadata.json, so its kernel-depends are unknown (kernels 0.17 "
                         "refuses to lock it)");
      continue;
    }
    Result<BlobLockPolicy> locks = ctx.locks();
    if (!locks) return locks.error();
    InstallReport report = install_files(ctx.cache(), repo_id, commit, {*meta},
                                         ctx.hub_access(repo_id + "@" + commit), ctx.console(),
                                         *locks);
    if (!report.ok()) return report.errors.front();
    Result<VariantMetadata> parsed = read_variant_metadata(ctx.cache().snapshot_file(repo_id,
                                                                                     commit, path),
                                                           repo_id + "@" + commit + ":" + path);
    if (!parsed) return parsed.error();
    out.insert(out.end(), parsed->kernel_depends.begin(), parsed->kernel_depends.end());
  }
  return out;
}

}  // namespace kernels::cli
