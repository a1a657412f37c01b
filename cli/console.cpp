#include "console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace kernels::cli {
namespace {

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n <= 0) return;  // a closed pipe is not worth dying for
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// The code point of the UTF-8 sequence at s[i] if it is one a terminal shows as nothing or uses
// to reorder text: zero-width spaces and joiners, direction marks, embeddings, overrides and
// isolates, line and paragraph separators, BOM. A tree path holding one (from a hostile Hub)
// can make a message read as something it is not. Its length goes to `len`.
std::optional<unsigned> invisible_at(std::string_view s, std::size_t i, std::size_t& len) {
  if (i + 3 > s.size()) return std::nullopt;
  const auto b0 = static_cast<unsigned char>(s[i]);
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  const auto b2 = static_cast<unsigned char>(s[i + 2]);
  if ((b0 & 0xF0) != 0xE0 || (b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) return std::nullopt;
  const unsigned cp = ((b0 & 0x0Fu) << 12) | ((b1 & 0x3Fu) << 6) | (b2 & 0x3Fu);
  const bool hidden = (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
                      (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
  if (!hidden) return std::nullopt;
  len = 3;
  return cp;
}

}  // namespace

std::string visible_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 0;
    if (auto cp = invisible_at(text, i, len)) {
      char shown[16];
      std::snprintf(shown, sizeof shown, "<U+%04X>", *cp);
      out += shown;
      i += len;
    } else {
      out += text[i++];
    }
  }
  return out;
}

namespace {

void line_to_stderr(std::string_view prefix, std::string_view line) {
  std::string text;
  text.reserve(prefix.size() + line.size() + 1);
  text.append(prefix).append(visible_text(line)).push_back('\n');
  write_all(2, text);
}

// Columns of the terminal on stderr, read at every redraw so a resize takes effect at once:
// TIOCGWINSZ, else COLUMNS, else 80.
std::size_t terminal_columns() {
  winsize ws{};
  if (::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* columns = std::getenv("COLUMNS"); columns && *columns) {
    char* end = nullptr;
    const long n = std::strtol(columns, &end, 10);
    if (*end == '\0' && n > 0 && n < 10000) return static_cast<std::size_t>(n);
  }
  return 80;
}

class TerminalProgress final : public ProgressSink {
 public:
  explicit TerminalProgress(std::string label) : label_(std::move(label)) {}
  ~TerminalProgress() override {
    if (drawn_) write_all(2, "\r\x1b[2K");
  }
  void on_start(std::uint64_t total_bytes, std::size_t files) override {
    total_ = total_bytes;
    files_ = files;
    start_ = std::chrono::steady_clock::now();
  }
  void on_bytes(std::uint64_t bytes_done) override {
    done_ = bytes_done;
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(now);
  }
  void on_file_done(const DownloadRequest&, const Result<void>&) override { ++files_done_; }

 private:
  void draw(std::chrono::steady_clock::time_point now) {
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::string eta = "--";
    if (rate > 0 && total_ >= done_) {
      eta = format_duration(
          std::chrono::duration<double>(static_cast<double>(total_ - done_) / rate));
    }
    ProgressLine line;
    line.label = label_;
    line.bytes = format_bytes(done_) + " / " + format_bytes(total_);
    line.rate = format_bytes(static_cast<std::uint64_t>(rate)) + "/s  ETA " + eta;
    line.files = "(" + std::to_string(files_done_) + "/" + std::to_string(files_) + " files)";
    line.fraction = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 0.0;
    write_all(2, "\r\x1b[2K" + line.fit(terminal_columns()));
    drawn_ = true;
  }

  std::string label_;
  std::uint64_t total_ = 0;
  std::uint64_t done_ = 0;
  std::size_t files_ = 0;
  std::size_t files_done_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace

Console::Console(ConsoleOptions options) : options_(options) {
  stderr_tty_ = ::isatty(2) == 1;
  // NO_COLOR is not a boolean switch (env_truthy): no-color.org turns colour off for any
  // non-empty value, "0" and "false" included.
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  dumb_terminal_ = term && std::string_view(term) == "dumb";
  color_ = stderr_tty_ && !(no_color && *no_color) && !dumb_terminal_;
}

// JSON data is left exact for programs; text for people shows hidden characters.
void Console::out(std::string_view text) const {
  if (options_.json) {
    write_all(1, text);
  } else {
    write_all(1, visible_text(text));
  }
}

void Console::info(std::string_view line) const {
  if (!options_.quiet) line_to_stderr("", line);
}

void Console::warn(std::string_view line) const {
  if (!options_.quiet) line_to_stderr(color_ ? "\x1b[33mwarning\x1b[0m: " : "warning: ", line);
}

void Console::debug(std::string_view line) const {
  if (options_.verbosity > 0 && !options_.quiet) line_to_stderr("debug: ", line);
}

void Console::error(const Error& error) const {
  line_to_stderr(color_ ? "\x1b[31merror\x1b[0m: " : "error: ", error.message());
}

std::string Console::green(std::string_view text) const {
  return color_ ? "\x1b[32m" + std::string(text) + "\x1b[0m" : std::string(text);
}
std::string Console::red(std::string_view text) const {
  return color_ ? "\x1b[31m" + std::string(text) + "\x1b[0m" : std::string(text);
}
std::string Console::bold(std::string_view text) const {
  return color_ ? "\x1b[1m" + std::string(text) + "\x1b[0m" : std::string(text);
}

std::string ProgressLine::fit(std::size_t columns) const {
  // The last column stays empty: writing it makes some terminals wrap, and a wrapped line is one
  // that "\r" + erase-line no longer clears. The bar is kept longest (it is what a glance reads),
  // then the rate, then the file count; the label is cut last.
  const std::size_t room = columns > 1 ? columns - 1 : 0;
  const std::string tails[] = {"  " + rate + "  " + files, "  " + rate, std::string()};
  for (const std::string& tail : tails) {
    const std::size_t fixed = label.size() + 1 + bytes.size() + tail.size();
    if (fixed + 3 + 10 > room) continue;  // " [" + at least 10 cells + "]"
    const std::size_t cells = std::min<std::size_t>(24, room - fixed - 3);
    const auto filled = static_cast<std::size_t>(static_cast<double>(cells) *
                                                 std::clamp(fraction, 0.0, 1.0));
    return label + " [" + std::string(filled, '#') + std::string(cells - filled, ' ') + "] " +
           bytes + tail;
  }
  for (const std::string& tail : tails) {
    if (label.size() + 1 + bytes.size() + tail.size() <= room) return label + " " + bytes + tail;
  }
  return (label + " " + bytes).substr(0, room);
}

std::unique_ptr<ProgressSink> Console::progress(std::string label) const {
  if (options_.quiet || options_.progress == ProgressMode::never) return nullptr;
  if (options_.progress == ProgressMode::automatic && (!stderr_tty_ || dumb_terminal_))
    return nullptr;
  return std::make_unique<TerminalProgress>(std::move(label));
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char buffer[32];
  if (unit == 0) {
    std::snprintf(buffer, sizeof buffer, "%" PRIu64 " B", bytes);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f %s", value, kUnits[unit]);
  }
  return buffer;
}

std::string format_duration(std::chrono::duration<double> seconds) {
  double s = seconds.count();
  char buffer[32];
  if (s < 60) {
    std::snprintf(buffer, sizeof buffer, "%.1fs", s);
  } else {
    auto total = static_cast<long long>(s);
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", total / 60, total % 60);
  }
  return buffer;
}

}  // namespace kernels::cli
