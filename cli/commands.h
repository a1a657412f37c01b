// One file per command; each adds its subcommand to the app and, when chosen, stores the function
// that runs it. main() parses, builds the CommandContext, runs the chosen function, and maps its
// Error to the exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "command_context.h"
#include "kernels/lockfile/error.h"
#include "system_probe.h"
#include "variant_choice.h"

namespace kernels::cli {

using CommandFn = std::function<Result<void>(CommandContext&)>;

void add_lock_command(CLI::App& app, CommandFn& chosen);
void add_download_command(CLI::App& app, CommandFn& chosen);
void add_verify_command(CLI::App& app, CommandFn& chosen);
void add_verify_signature_command(CLI::App& app, CommandFn& chosen);
void add_trust_root_command(CLI::App& app, CommandFn& chosen);  // trust-root refresh / show
void add_versions_command(CLI::App& app, CommandFn& chosen);
void add_info_command(CLI::App& app, CommandFn& chosen);
void add_variant_command(CLI::App& app, CommandFn& chosen);
void add_cache_command(CLI::App& app, CommandFn& chosen);
void add_mirror_command(CLI::App& app, CommandFn& chosen);
void add_pack_command(CLI::App& app, CommandFn& chosen);
void add_unpack_command(CLI::App& app, CommandFn& chosen);
void add_check_command(CLI::App& app, CommandFn& chosen);  // check and benchmark

// --torch, --cuda, ... (system_probe.h), shared by download and variant.
void add_system_options(CLI::App& command, SystemOptions& options);

}  // namespace kernels::cli
