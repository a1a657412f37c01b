// libFuzzer target: the Hub's tree listing JSON and the cache's trees/<commit>.json. Any input
// must give a tree or a lockfile_invalid error; a tree that parses must hash and serialize
// without a crash. Run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/lockfile/repo_tree.h"
#include "kernels/lockfile/variant_hash.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto parse : {&kernels::parse_tree_listing, &kernels::parse_tree_cache}) {
    auto tree = parse(text, "fuzz.json");
    if (!tree) {
      if (tree.error().code != kernels::ErrorCode::lockfile_invalid) __builtin_trap();
      continue;
    }
    (void)kernels::compute_variant_hashes(*tree);
    (void)kernels::serialize_tree_cache(*tree);
    (void)kernels::serialize_tree_listing(*tree);
  }
  return 0;
}
