// The `kernels` program: parse, run one command, map its Error to the exit code. Exceptions stop
// here: anything uncaught is a bug, reported as exit code 70 (internal) with its message.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_reference.h"
#include "commands.h"
#include "hub/interrupt.h"
#include "json_document.h"
#include "kernels/lockfile/cache_safety.h"
#include "suggest.h"

#ifndef KERNELS_PYTHON_COMPAT
#define KERNELS_PYTHON_COMPAT ""
#endif

namespace {

using namespace kernels;
using namespace kernels::cli;

constexpr ErrorCode kErrorCodes[] = {ErrorCode::usage,
                                     ErrorCode::lockfile_missing,
                                     ErrorCode::lockfile_stale,
                                     ErrorCode::lockfile_invalid,
                                     ErrorCode::integrity_mismatch,
                                     ErrorCode::network,
                                     ErrorCode::http_permanent,
                                     ErrorCode::offline_not_cached,
                                     ErrorCode::lock_timeout,
                                     ErrorCode::unsafe,
                                     ErrorCode::no_variant,
                                     ErrorCode::io,
                                     ErrorCode::no_device,
                                     ErrorCode::untrusted,
                                     ErrorCode::internal};

std::string exit_code_table() {
  std::string text = "Exit codes:\n  0   success\n";
  for (ErrorCode code : kErrorCodes) {
    char line[96];
    std::snprintf(line, sizeof line, "  %-3d %s\n", exit_code(code),
                  std::string(error_code_name(code)).c_str());
    text += line;
  }
  text += "  130 interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM)\n";
  return text;
}

std::string environment_summary() {
  return "Environment: KERNELS_CACHE, HF_HUB_CACHE, HF_HOME (cache location), HF_ENDPOINT (Hub or "
         "file:// mirror),\nHF_TOKEN, HF_HUB_OFFLINE, NO_COLOR, KERNELS_LOCK_TIMEOUT, "
         "KERNELS_DISABLE_FLOCK, KERNELS_JOBS,\nKERNELS_RETRIES, KERNELS_FSYNC=1 (fsync every "
         "downloaded blob before it becomes visible); README.md lists them all.";
}

// The compatible Python kernels versions, from CMake ("0.16,0.17").
std::vector<std::string> python_compat() {
  std::vector<std::string> out;
  std::string all = KERNELS_PYTHON_COMPAT;
  for (std::size_t start = 0; start < all.size();) {
    std::size_t end = all.find(',', start);
    if (end == std::string::npos) end = all.size();
    if (end > start) out.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string version_text(bool json) {
  const std::vector<std::string> compat = python_compat();
  if (json) {
    return json_success("version", {{"name", "kernels"},
                                    {"version", KERNELS_CLI_VERSION},
                                    {"python_kernels_compatible", compat}});
  }
  std::string versions;
  for (std::size_t i = 0; i < compat.size(); ++i) {
    versions += (i == 0 ? "" : i + 1 == compat.size() ? " and " : ", ") + compat[i];
  }
  return std::string("kernels ") + KERNELS_CLI_VERSION +
         "\ncompatible with the Python kernels package " + versions +
         " (kernels.lock, cache layout, HF_* environment)\n";
}

// The program-wide options as a help section, for every subcommand's --help: CLI11 shows only a
// command's own options there, though the global ones are accepted after it too. A long name the
// command itself uses (info's `--version N`) belongs to the command there, and is left out.
std::string global_options_text(const CLI::App& app, const CLI::App& command) {
  std::string text = "Global options (before or after the command):\n";
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_name(false, true) == "-h,--help") continue;
    std::string name;
    std::string taken;
    for (const std::string& s : opt->get_snames()) name += (name.empty() ? "-" : ",-") + s;
    for (const std::string& l : opt->get_lnames()) {
      if (command.get_option_no_throw("--" + l)) {
        taken = " (--" + l + " here is this command's own option)";
        continue;
      }
      name += (name.empty() ? "--" : ",--") + l;
    }
    if (name.empty()) continue;
    // The type name without the validator CLI11 appends ("N:INT in [1 - 256]").
    if (opt->get_expected_min() > 0)
      name += " " + opt->get_type_name().substr(0, opt->get_type_name().find(':'));
    char line[320];
    std::snprintf(line, sizeof line, "  %-22s %s%s\n", name.c_str(), opt->get_description().c_str(),
                  taken.c_str());
    text += line;
  }
  return text + "\nExit codes: `kernels help exit-codes`.";
}

void set_footers(const CLI::App& app, CLI::App& command) {
  for (CLI::App* sub : command.get_subcommands([](CLI::App*) { return true; })) {
    sub->footer(global_options_text(app, *sub));
    set_footers(app, *sub);
  }
}

// After a parse error: the first word or long option that no command along the typed path knows,
// and the closest name that would have been known there.
std::optional<std::string> suggestion(CLI::App& app, int argc, char** argv) {
  std::vector<CLI::App*> path = {&app};
  auto find_option = [&](const std::string& name) -> const CLI::Option* {
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      if (const CLI::Option* opt = (*it)->get_option_no_throw(name)) return opt;
    }
    return nullptr;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return std::nullopt;
    if (word.rfind("--", 0) == 0) {
      const std::string name = word.substr(0, word.find('='));
      const CLI::Option* opt = find_option(name);
      if (!opt) {
        std::vector<std::string> names;
        for (CLI::App* command : path) {
          for (const CLI::Option* o : command->get_options()) {
            for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
          }
        }
        if (auto best = closest_name(name, names)) return "did you mean `" + *best + "`?";
        return std::nullopt;
      }
      if (opt->get_expected_min() > 0 && word.find('=') == std::string::npos) ++i;
      continue;
    }
    if (word.size() > 1 && word[0] == '-') {
      const CLI::Option* opt = find_option(word.substr(0, 2));
      if (opt && opt->get_expected_min() > 0 && word.size() == 2) ++i;
      continue;
    }
    CLI::App* current = path.back();
    std::vector<std::string> names;
    for (CLI::App* sub : current->get_subcommands([](CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
      if (sub->get_name() == word) {
        path.push_back(sub);
        names.clear();
        break;
      }
    }
    if (path.back() != current) continue;
    // A word where only a subcommand fits (the command takes no positional arguments).
    const bool takes_positionals =
        !current->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
    if (names.empty() || takes_positionals) continue;
    if (auto best = closest_name(word, names)) return "did you mean `" + *best + "`?";
    return std::nullopt;
  }
  return std::nullopt;
}

// --json anywhere before `--`: known before parsing, so that a parse error (or a crash) is a JSON
// document too.
bool json_requested(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--") return false;
    if (word == "--json") return true;
  }
  return false;
}

// "cache prune": the chosen command's words, or "" before one is known.
std::string command_path(const CLI::App& app) {
  std::string path;
  for (const CLI::App* at = &app;;) {
    const std::vector<const CLI::App*> chosen = at->get_subcommands(
        [](const CLI::App* s) { return s->parsed(); });
    if (chosen.empty()) return path;
    at = chosen.front();
    path += (path.empty() ? "" : " ") + at->get_name();
  }
}

// With --json: the run's one document on stdout (the callers still print an error on stderr, as
// without --json). Returns `exit`.
int print_document(const std::string& command, const nlohmann::json& fields, const Error* error,
                   int exit, std::string_view code_name = {}) {
  std::fputs((error ? json_failure(command, *error, exit, fields, code_name)
                    : json_success(command, fields))
                 .c_str(),
             stdout);
  return exit;
}

nlohmann::json exit_codes_json() {
  nlohmann::json codes = nlohmann::json::array({{{"exit", 0}, {"code", "success"}}});
  for (ErrorCode code : kErrorCodes)
    codes.push_back({{"exit", exit_code(code)}, {"code", error_code_name(code)}});
  codes.push_back({{"exit", 130}, {"code", "interrupted"}});
  codes.push_back({{"exit", 143}, {"code", "terminated"}});
  return codes;
}

// The commands whose transfers and lock waits stop on SIGINT/SIGTERM (hub/interrupt.h).
constexpr const char* kFetchingCommands[] = {
    "lock", "download", "versions", "info", "variant", "mirror", "verify-signature", "trust-root"};

int run(int argc, char** argv) {
  CLI::App app{"Lock, download, verify and inspect GPU kernel bundles from the Hugging Face Hub.",
               "kernels"};
  app.footer(exit_code_table() + "\n" + environment_summary());
  app.fallthrough();  // global options may follow the subcommand
  app.require_subcommand(0, 1);

  GlobalOptions global;
  bool show_version = false;
  app.add_flag("-V,--version", show_version,
               "Print the version and the compatible Python kernels versions");
  app.add_flag("--offline", global.offline,
               "Use only the cache, never the network (also HF_HUB_OFFLINE=1)");
  app.add_flag("-q,--quiet", global.quiet, "Print nothing on stderr except errors");
  app.add_flag("-v,--verbose", global.verbosity, "More detail on stderr (-vv: HTTP headers too)");
  app.add_flag("--json", global.json,
               "Print one JSON document on stdout, success or error (docs/JSON.md)");
  app.add_option("-j,--jobs", global.jobs,
                 "Parallel transfers, 1-256 (default: KERNELS_JOBS, else 8)")
      ->check(CLI::Range(1, 256))
      ->type_name("N");
  std::string progress = "auto";
  app.add_option("--progress", progress,
                 "Progress line: auto (on a terminal, unless TERM=dumb), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->type_name("WHEN");
  app.add_option(
         "--cache-dir", global.cache_dir,
         "Cache root (default: KERNELS_CACHE, HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)")
      ->type_name("DIR");

  CommandFn chosen;
  add_lock_command(app, chosen);
  add_download_command(app, chosen);
  add_verify_command(app, chosen);
  add_verify_signature_command(app, chosen);
  add_trust_root_command(app, chosen);
  add_versions_command(app, chosen);
  add_info_command(app, chosen);
  add_variant_command(app, chosen);
  add_cache_command(app, chosen);
  add_mirror_command(app, chosen);
  add_pack_command(app, chosen);
  add_unpack_command(app, chosen);
  add_check_command(app, chosen);

  CLI::App* version = app.add_subcommand(
      "version", "Print the version and the compatible Python kernels versions");
  std::string help_topic;
  bool man = false;
  CLI::App* help = app.add_subcommand("help", "Help on a command, or `kernels help exit-codes`");
  help->add_option("topic", help_topic, "A command name, or exit-codes");
  help->add_flag("--man", man, "Print the manual page (roff), the one installed as kernels(1)");
  std::string shell;
  CLI::App* completion = app.add_subcommand("completion",
                                            "Print a shell completion script (bash, zsh or fish)");
  completion->add_option("shell", shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  completion->footer(
      "bash: source <(kernels completion bash)\n"
      "zsh:  kernels completion zsh > \"${fpath[1]}/_kernels\"\n"
      "fish: kernels completion fish > ~/.config/fish/completions/kernels.fish");
  set_footers(app, app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::optional<std::string> hint = suggestion(app, argc, argv);
    const Error error = make_error(ErrorCode::usage, e.what(), "",
                                   hint ? *hint
                                        : "`kernels --help` lists the commands and options");
    std::fprintf(stderr, "error: %s\nhint: %s\n", e.what(), error.hint.c_str());
    if (json_requested(argc, argv))
      print_document(command_path(app), nullptr, &error, exit_code(error.code));
    return exit_code(ErrorCode::usage);
  }
  const std::string command = command_path(app);
  if (show_version || version->parsed()) {
    std::fputs(version_text(global.json).c_str(), stdout);
    return 0;
  }
  if (completion->parsed()) {
    const std::string script = completion_script(app, shell);
    if (!global.json) {
      std::fputs(script.c_str(), stdout);
      return 0;
    }
    return print_document(command, {{"shell", shell}, {"script", script}}, nullptr, 0);
  }
  if (help->parsed()) {
    std::string text;
    nlohmann::json fields;
    if (man) {
      text = man_page(app, KERNELS_CLI_VERSION, exit_code_table(), environment_summary());
    } else if (help_topic.empty()) {
      text = app.help();
    } else if (help_topic == "exit-codes") {
      text = exit_code_table();
      fields["exit_codes"] = exit_codes_json();
    } else if (auto subs = app.get_subcommands(
                   [&](CLI::App* s) { return s->get_name() == help_topic; });
               !subs.empty()) {
      text = subs.front()->help();
    } else {
      auto best = closest_name(help_topic, [&] {
        std::vector<std::string> names = {"exit-codes"};
        for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; }))
          names.push_back(s->get_name());
        return names;
      }());
      const Error error = make_error(ErrorCode::usage, "no help topic `" + help_topic + "`",
                                     help_topic,
                                     best ? "did you mean `" + *best + "`?"
                                          : "`kernels --help` lists the commands");
      std::fprintf(stderr, "error: %s\nhint: %s\n", error.what.c_str(), error.hint.c_str());
      if (global.json) print_document(command, nullptr, &error, exit_code(error.code));
      return exit_code(ErrorCode::usage);
    }
    if (!global.json) {
      std::fputs(text.c_str(), stdout);
      return 0;
    }
    fields["topic"] = text_or_null(help_topic);
    fields["text"] = text;
    return print_document(command, fields, nullptr, 0);
  }
  if (!chosen) {
    std::fputs(app.help().c_str(), stderr);
    if (global.json) {
      const Error error = make_error(ErrorCode::usage, "no command given", "",
                                     "`kernels --help` lists the commands");
      print_document(command, nullptr, &error, exit_code(error.code));
    }
    return exit_code(ErrorCode::usage);
  }
#ifdef KERNELS_TEST_HOOKS
  // Test hook: proves that an exception escaping a command becomes exit code 70 with a message.
  // Compiled only into builds that build the tests (never with -DKERNELS_BUILD_TESTS=OFF, as the
  // Dockerfile and release builds do: the test cli:release_has_no_test_hook checks).
  if (const char* hook = std::getenv("KERNELS_TEST_THROW"); hook && *hook) {
    throw std::runtime_error(std::string("test hook KERNELS_TEST_THROW=") + hook);
  }
#endif
  Console console(ConsoleOptions{global.quiet, global.verbosity, global.json,
                                 progress == "always"  ? ProgressMode::always
                                 : progress == "never" ? ProgressMode::never
                                                       : ProgressMode::automatic});
  CommandContext context(global, console);
  if (Result<void> safe = check_cache_permissions(context.cache()); !safe) {
    console.error(safe.error());
    if (global.json) print_document(command, nullptr, &safe.error(), exit_code(safe.error().code));
    return exit_code(safe.error().code);
  }
  // In the commands that fetch, Ctrl-C and SIGTERM stop transfers and lock waits; the command
  // then returns, its partial files kept for the next run to resume (installer.h), and the exit
  // status says which signal (128 + its number, as a shell does). The others (hashing, pack,
  // unpack, cache) never check the flag, so there the signals keep their default action and stop
  // the process at once: what they leave behind (a temp file, an unpack staging directory) is what
  // `cache prune` clears.
  const bool fetches = std::any_of(std::begin(kFetchingCommands), std::end(kFetchingCommands),
                                   [&](const char* name) { return app.got_subcommand(name); });
  CLI::App* verify = app.get_subcommand("verify");
  if (fetches || (verify->parsed() && verify->get_option("--repair")->count() > 0)) {
    hub::install_interrupt_handlers();
  }
  Result<void> result = chosen(context);
  if (int signal = hub::interrupt_signal(); signal != 0) {
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    console.info("interrupted (" + name +
                 "): stopped; what was partly downloaded is kept and resumes "
                 "on the next run (`kernels cache prune` removes it)");
    if (global.json) {
      const Error error = make_error(ErrorCode::internal, "interrupted by " + name, "",
                                     "run the same command again to finish");
      print_document(command, console.result(), &error, 128 + signal,
                     signal == SIGINT ? "interrupted" : "terminated");
    }
    return 128 + signal;
  }
  if (!result) {
    console.error(result.error());
    if (global.json)
      print_document(command, console.result(), &result.error(), exit_code(result.error().code));
    return exit_code(result.error().code);
  }
  // `info --json` prints 0.17.2's own document (cmd_info.cpp), the one command without the
  // envelope on success (docs/JSON.md).
  if (global.json && command != "info") print_document(command, console.result(), nullptr, 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string what;
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    what = std::string("internal error: ") + e.what();
  } catch (...) {
    what = "internal error (unknown exception)";
  }
  const kernels::Error error = kernels::make_error(kernels::ErrorCode::internal, what, "",
                                                   "this is a bug in kernels; please report it");
  std::fprintf(stderr, "error: %s\nhint: %s\n", error.what.c_str(), error.hint.c_str());
  // What was printed before the exception is lost to a reader of the document: the command
  // prints nothing itself with --json, so stdout holds this one document only.
  if (json_requested(argc, argv))
    print_document("", nullptr, &error, kernels::exit_code(error.code));
  return kernels::exit_code(error.code);
}
