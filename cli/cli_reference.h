// Shell completion scripts and the manual page, generated from the CLI11 app the program parses
// with, so they name exactly the commands and options it accepts (`kernels completion SHELL`,
// `kernels help --man`; the build writes kernels.1 with the latter and installs it).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace kernels::cli {

// `shell`: "bash", "zsh" or "fish".
std::string completion_script(const CLI::App& app, const std::string& shell);

// man(7) roff. `exit_codes` and `environment`: the text `kernels --help` ends with.
std::string man_page(const CLI::App& app, const std::string& version, const std::string& exit_codes,
                     const std::string& environment);

}  // namespace kernels::cli
