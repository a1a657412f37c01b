// Shell completion and the manual page (issue 15): both are generated from the program's own
// command table, so a script sourced in a real bash completes real commands and options, and the
// installed kernels(1) names every command `kernels --help` lists.
#include <catch2/catch.hpp>

#include <sstream>

#include "project_fixture.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

ProcessResult run_plain(const std::vector<std::string>& args) {
  static TempDir dir{"kernels-reference"};
  return run_kernels(args, dir / "cache", "file:///nonexistent");
}

// The commands `kernels --help` lists (CLI11's SUBCOMMANDS section), and those of `cache`.
// A command name as the man page writes it: roff escapes '-'.
std::string roff_name(const std::string& name) {
  std::string out;
  for (char c : name) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

std::vector<std::string> listed_commands(const std::vector<std::string>& help_args) {
  ProcessResult help = run_plain(help_args);
  std::vector<std::string> names;
  std::istringstream lines(help.out);
  bool in_section = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_section = true;
      continue;
    }
    if (!in_section) continue;
    if (line.empty() || line[0] != ' ') break;
    std::istringstream words(line);
    std::string name;
    words >> name;
    names.push_back(name);
  }
  return names;
}

// COMPREPLY after sourcing `kernels completion bash` and completing `words` (the last one is
// the word under the cursor).
std::string bash_complete(const fs::path& script, const std::vector<std::string>& words) {
  std::string array;
  for (const std::string& w : words) array += " '" + w + "'";
  const std::string program = "source '" + script.string() + "'\nCOMP_WORDS=(" + array +
                              ")\nCOMP_CWORD=" + std::to_string(words.size() - 1) +
                              "\n_kernels\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
  ProcessResult r = run_process({{"bash", "--norc", "--noprofile", "-c", program}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

}  // namespace

TEST_CASE("the bash completion script completes commands, subcommands and options in a real bash",
          "[completion]") {
  TempDir dir{"kernels-completion"};
  ProcessResult script = run_plain({"completion", "bash"});
  INFO(script.err);
  REQUIRE(script.exit_code == 0);
  write_file(dir / "kernels.bash", script.out);
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "dow"}) == "download\n");
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "cache", "pr"}) == "prune\n");
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "trust-root", "r"}) == "refresh\n");
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "trust-root", "refresh", "--u"}) ==
        "--url\n");
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "download", "--all-v"}) ==
        "--all-variants\n");
  // A global option's value is skipped on the way to the command; global options complete after it.
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "--jobs", "4", "ve"}) ==
        "verify\nverify-signature\nversions\nversion\n");
  CHECK(bash_complete(dir / "kernels.bash", {"kernels", "lock", "--off"}) == "--offline\n");
  // Every command `kernels --help` lists is offered at the start.
  const std::string all = bash_complete(dir / "kernels.bash", {"kernels", ""});
  for (const std::string& name : listed_commands({"--help"})) {
    INFO(name);
    CHECK(all.find(name + "\n") != std::string::npos);
  }
}

TEST_CASE(
    "the zsh and fish completion scripts name every command, and parse and complete where the "
    "shell is installed",
    "[completion]") {
  TempDir dir{"kernels-completion"};
  const std::vector<std::string> commands = listed_commands({"--help"});
  REQUIRE(commands.size() >= 10);
  for (const std::string shell : {"zsh", "fish"}) {
    ProcessResult script = run_plain({"completion", shell});
    INFO(shell << ": " << script.err);
    REQUIRE(script.exit_code == 0);
    for (const std::string& name : commands) {
      INFO(name);
      CHECK(script.out.find(shell == std::string("fish") ? " -a " + name + " " : name) !=
            std::string::npos);
    }
    const fs::path file = dir / ("kernels." + std::string(shell));
    write_file(file, script.out);
    ProcessResult parsed = run_process({{shell, "-n", file.string()}});
    if (parsed.exit_code == 127 || parsed.exit_code == -1) {
      WARN(shell << " is not installed: syntax not checked");
      continue;
    }
    INFO(parsed.out << parsed.err);
    CHECK(parsed.exit_code == 0);
    // And it completes: fish answers `complete -C`; zsh is driven through a pseudo-terminal
    // (zpty), where <Tab> after `kernels dow` must leave `kernels download` on the line.
    ProcessResult completed;
    if (shell == std::string("fish")) {
      completed = run_process({{"fish", "--no-config", "-c",
                                "source '" + file.string() + "'; complete -C 'kernels dow'"}});
      INFO(completed.out << completed.err);
      CHECK(completed.out.rfind("download\t", 0) == 0);
    } else {
      const std::string driver =
          "zmodload zsh/zpty\n"
          "zpty z 'zsh -f -i'\n"
          "zpty -w z 'PS1=\"> \"; autoload -U compinit; compinit -u -D; source " +
          file.string() +
          "'\n"
          "zpty -w -n z $'kernels dow\\t'\n"
          "zpty -w z $'\\nprint DONE'\n"
          "zpty -r z out '*DONE*'\n"
          "print -r -- \"$out\"\n"
          "zpty -d z\n";
      ProcessResult zsh = run_process(
          {{"zsh", "-f", "-c", driver}, {}, {}, std::chrono::seconds(20)});
      INFO(zsh.out << zsh.err);
      CHECK(zsh.out.find("kernels download") != std::string::npos);
    }
  }
  CHECK(run_plain({"completion", "tcsh"}).exit_code == 2);
}

TEST_CASE("cmake --install puts kernels(1) in share/man/man1, naming every command and option",
          "[man]") {
  const fs::path build = KERNELS_BUILD_DIR;
  TempDir prefix{"kernels-man"};
  ProcessResult install = run_process({{"cmake", "--install", build.string(), "--prefix",
                                        prefix.path().string(), "--component", "man"}});
  INFO(install.out << install.err);
  REQUIRE(install.exit_code == 0);
  const fs::path page = prefix / "share/man/man1/kernels.1";
  REQUIRE(fs::exists(page));
  const std::string man = read_file(page);
  CHECK(man.rfind(".\\\" Generated by", 0) == 0);
  CHECK(man.find(".TH KERNELS 1") != std::string::npos);
  for (const std::string& name : listed_commands({"--help"})) {
    INFO(name);
    CHECK(man.find(".SS \"kernels " + roff_name(name)) != std::string::npos);
  }
  for (const std::string& name : listed_commands({"cache", "--help"})) {
    INFO(name);
    CHECK(man.find(".SS \"kernels cache " + name) != std::string::npos);
  }
  // Options with their values, the exit codes once, and what --help prints is what was built.
  CHECK(man.find("\\fB\\-\\-all\\-variants\\fR") != std::string::npos);
  CHECK(man.find("\\fB\\-\\-jobs\\fR, \\fB\\-j\\fR \\fIN\\fR") != std::string::npos);
  CHECK(man.find("70  internal") != std::string::npos);
  CHECK(man == run_plain({"help", "--man"}).out);
  // Valid roff: groff (where installed) renders it without a single warning.
  ProcessResult groff = run_process({{"groff", "-man", "-ww", "-z", "-Tutf8", page.string()}});
  if (groff.exit_code == 127 || groff.exit_code == -1) {
    WARN("groff is not installed: the page was not rendered");
  } else {
    INFO(groff.err);
    CHECK(groff.exit_code == 0);
    CHECK(groff.err.empty());
  }
}
