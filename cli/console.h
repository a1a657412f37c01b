// What the program says, and where: data on stdout, logs and progress on stderr. Progress bars
// only when stderr is a terminal; colour only on a terminal and when NO_COLOR is unset or empty;
// --quiet silences everything on stderr except errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "hub/hub_client.h"
#include "kernels/lockfile/error.h"

namespace kernels::cli {

// --progress: auto draws the progress line only when stderr is a terminal and TERM is not dumb.
enum class ProgressMode { automatic, always, never };

struct ConsoleOptions {
  bool quiet = false;
  int verbosity = 0;  // -v count
  bool json = false;  // --json: commands set_result() and main() prints the one document
  ProgressMode progress = ProgressMode::automatic;
};

class Console {
 public:
  explicit Console(ConsoleOptions options);

  const ConsoleOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  bool stderr_is_tty() const { return stderr_tty_; }

  // stdout, exactly as given.
  void out(std::string_view text) const;
  // With --json: the command's fields of the one document main() prints on stdout when the
  // command ends, success or error (json_document.h). A later call replaces an earlier one.
  void set_result(nlohmann::json fields) const { result_ = std::move(fields); }
  const nlohmann::json& result() const { return result_; }
  // stderr lines; info and warn are silenced by --quiet, debug needs -v.
  void info(std::string_view line) const;
  void warn(std::string_view line) const;
  void debug(std::string_view line) const;
  void error(const Error& error) const;

  // "\x1b[...m" + text + reset when colour is on; text otherwise.
  std::string green(std::string_view text) const;
  std::string red(std::string_view text) const;
  std::string bold(std::string_view text) const;

  // A progress bar (bytes, rate, ETA) redrawn in place on a TTY at most 10 times a second, one
  // line never wider than the terminal (ProgressLine); on a non-TTY, with TERM=dumb or with
  // --quiet it draws nothing (the per-file log lines say what happens). --progress=always draws
  // it anyway (but for --quiet), --progress=never never.
  std::unique_ptr<ProgressSink> progress(std::string label) const;

 private:
  ConsoleOptions options_;
  bool stderr_tty_ = false;
  bool color_ = false;
  bool dumb_terminal_ = false;
  mutable nlohmann::json result_;  // null until set_result
};

// One progress line: "<label> [#####     ] <bytes>  <rate>  <files>".
struct ProgressLine {
  std::string label;  // "Downloading org/name"
  std::string bytes;  // "1.5 MiB / 3.0 MiB"
  std::string rate;   // "1.2 MiB/s  ETA 2.0s"
  std::string files;  // "(3/12 files)"
  double fraction = 0;
  // The line in at most columns - 1 characters (the width of the terminal, where the last column
  // would wrap on some): the bar shrinks from 24 to 10 cells; then the file count goes, then the
  // rate, then the bar, then the text is cut. All pieces are ASCII, so characters are columns.
  std::string fit(std::size_t columns) const;
};

std::string format_bytes(std::uint64_t bytes);  // "1.5 MiB"
// `text` with zero-width, bidirectional-control, separator and BOM code points shown as
// "<U+202E>": what the console prints for people (logs, errors, text output) goes through it.
std::string visible_text(std::string_view text);
std::string format_duration(std::chrono::duration<double> seconds);  // "1m05s", "3.2s"

}  // namespace kernels::cli
