// The trusted root compiled into the program, and the choice between it and a file. Kept apart
// from the parser so that tools built without CMake (the fuzz targets) need not generate it.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "builtin_trusted_root.h"
#include "kernels/sigstore/trusted_root.h"
#include "kernels/sigstore/tuf.h"

namespace kernels::sigstore {

Result<TrustedRoot> builtin_trusted_root() {
  return parse_trusted_root(kBuiltinTrustedRoot, "built-in public-good trusted root");
}

Result<TrustedRoot> load_trusted_root(const std::optional<std::filesystem::path>& explicit_file,
                                      const std::optional<std::filesystem::path>& cache_root) {
  std::filesystem::path file;
  std::string via;
  if (explicit_file) {
    file = *explicit_file;
    via = "--trusted-root";
  } else if (const char* env = std::getenv("KERNELS_SIGSTORE_TRUSTED_ROOT"); env && *env) {
    file = env;
    via = "KERNELS_SIGSTORE_TRUSTED_ROOT";
  } else if (std::optional<std::filesystem::path> cached = cache_root
                                                               ? tuf_cached_trusted_root(
                                                                     *cache_root, default_tuf_url())
                                                               : std::nullopt) {
    file = *cached;
    via = "the cache (kernels trust-root refresh)";
  } else {
    return builtin_trusted_root();
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad())
    return make_error(ErrorCode::io, "cannot read the trusted root named by " + via, file.string(),
                      "check the path, or unset it to use the built-in root (a cached one: run "
                      "`kernels trust-root refresh` again)");
  return parse_trusted_root(text.str(), file.string());
}

}  // namespace kernels::sigstore
