// The `kernels` program: parse, run one command, map its Error to the exit code. Exceptions stop
// here: anything uncaught is a bug, reported as exit code 70 (internal) with its message.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <exception>
#include <string>

#include "commands.h"
#include "kernels/lockfile/cache_safety.h"

namespace {

using namespace kernels;
using namespace kernels::cli;

std::string exit_code_table() {
  std::string text = "Exit codes:\n  0   success\n";
  for (ErrorCode code :
       {ErrorCode::usage, ErrorCode::lockfile_missing, ErrorCode::lockfile_stale,
        ErrorCode::lockfile_invalid, ErrorCode::integrity_mismatch, ErrorCode::network,
        ErrorCode::http_permanent, ErrorCode::offline_not_cached, ErrorCode::lock_timeout,
        ErrorCode::unsafe, ErrorCode::no_variant, ErrorCode::io, ErrorCode::no_device,
        ErrorCode::internal}) {
    char line[96];
    std::snprintf(line, sizeof line, "  %-3d %s\n", exit_code(code),
                  std::string(error_code_name(code)).c_str());
    text += line;
  }
  text +=
      "\nEnvironment: KERNELS_CACHE, HF_HUB_CACHE, HF_HOME (cache location), HF_ENDPOINT (Hub or "
      "file:// mirror),\nHF_TOKEN, HF_HUB_OFFLINE, NO_COLOR, KERNELS_LOCK_TIMEOUT, "
      "KERNELS_DISABLE_FLOCK, KERNELS_JOBS,\nKERNELS_FSYNC=1 (fsync every downloaded blob before it becomes visible).";
  return text;
}

int run(int argc, char** argv) {
  CLI::App app{"Lock, download, verify and inspect GPU kernel bundles from the Hugging Face Hub.",
               "kernels"};
  app.footer(exit_code_table());
  app.fallthrough();  // global options may follow the subcommand
  app.require_subcommand(0, 1);

  GlobalOptions global;
  app.add_flag("--offline", global.offline,
               "Use only the cache, never the network (also HF_HUB_OFFLINE=1)");
  app.add_flag("-q,--quiet", global.quiet, "Print nothing on stderr except errors");
  app.add_flag("-v,--verbose", global.verbosity, "More detail on stderr (-vv: HTTP headers too)");
  app.add_flag("--json", global.json, "Print results as JSON on stdout");
  app.add_option("-j,--jobs", global.jobs,
                 "Parallel transfers, 1-256 (default: KERNELS_JOBS, else 8)")
      ->check(CLI::Range(1, 256));
  app.add_option("--cache-dir", global.cache_dir,
                 "Cache root (default: KERNELS_CACHE, HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)");

  CommandFn chosen;
  add_lock_command(app, chosen);
  add_download_command(app, chosen);
  add_verify_command(app, chosen);
  add_versions_command(app, chosen);
  add_info_command(app, chosen);
  add_variant_command(app, chosen);
  add_cache_command(app, chosen);
  add_mirror_command(app, chosen);
  add_pack_command(app, chosen);
  add_unpack_command(app, chosen);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\nhint: `kernels --help` lists the commands and options\n",
                 e.what());
    return exit_code(ErrorCode::usage);
  }
  if (!chosen) {
    std::fputs(app.help().c_str(), stderr);
    return exit_code(ErrorCode::usage);
  }
#ifdef KERNELS_TEST_HOOKS
  // Test hook: proves that an exception escaping a command becomes exit code 70 with a message.
  // Compiled only into builds that build the tests (never with -DKERNELS_BUILD_TESTS=OFF, as the
  // Dockerfile and release builds do).
  if (const char* hook = std::getenv("KERNELS_TEST_THROW"); hook && *hook) {
    throw std::runtime_error(std::string("test hook KERNELS_TEST_THROW=") + hook);
  }
#endif
  Console console(ConsoleOptions{global.quiet, global.verbosity, global.json});
  CommandContext context(global, console);
  if (Result<void> safe = check_cache_permissions(context.cache()); !safe) {
    console.error(safe.error());
    return exit_code(safe.error().code);
  }
  Result<void> result = chosen(context);
  if (!result) {
    console.error(result.error());
    return exit_code(result.error().code);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal error: %s\nhint: this is a bug in kernels; please report it\n",
                 e.what());
  } catch (...) {
    std::fprintf(stderr, "error: internal error (unknown exception)\nhint: this is a bug in kernels; please report it\n");
  }
  return exit_code(kernels::ErrorCode::internal);
}
