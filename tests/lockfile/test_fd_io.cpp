// The one home of the descriptor I/O rules (kernels/lockfile/fd_io.h) and the ASCII text rules
// (kernels/lockfile/text.h): EINTR retried, no endless zero-progress write, bounded reads.
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "kernels/lockfile/fd_io.h"
#include "kernels/lockfile/text.h"

using namespace kernels;

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe(fd) == 0); }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void close_write() {
    ::close(fd[1]);
    fd[1] = -1;
  }
};

void on_alarm(int) {}

}  // namespace

TEST_CASE("read_to_end takes a file of exactly the bound and refuses one byte more", "[fd_io]") {
  for (std::size_t extra : {0, 1}) {
    Pipe p;
    const std::string body(100 + extra, 'x');
    REQUIRE(write_all(p.fd[1], body.data(), body.size()) == 0);
    p.close_write();
    std::string out;
    const int err = read_to_end(p.fd[0], out, 100);
    if (extra == 0) {
      CHECK(err == 0);
      CHECK(out == body);
    } else {
      CHECK(err == EFBIG);
      CHECK(out.size() <= 101);
    }
  }
}

TEST_CASE("read_to_end with no bound reads everything, in several chunks", "[fd_io]") {
  Pipe p;
  const std::string body(200000, 'y');
  std::thread writer([&] {
    CHECK(write_all(p.fd[1], body.data(), body.size()) == 0);
    p.close_write();
  });
  std::string out = "prefix:";
  const int err = read_to_end(p.fd[0], out, out.max_size());
  writer.join();
  CHECK(err == 0);
  CHECK(out == "prefix:" + body);
}

TEST_CASE("a read or write interrupted by a signal is made again", "[fd_io]") {
  // A handler without SA_RESTART: the blocked read returns EINTR at the timer's signal, and
  // read_retrying must carry on until the data written 300 ms later arrives.
  struct sigaction action {
  }, old{};
  action.sa_handler = on_alarm;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  REQUIRE(::sigaction(SIGALRM, &action, &old) == 0);
  itimerval timer{{0, 20000}, {0, 20000}};  // every 20 ms
  REQUIRE(::setitimer(ITIMER_REAL, &timer, nullptr) == 0);
  Pipe p;
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(write_all(p.fd[1], "hello", 5) == 0);
  });
  char buf[8] = {};
  const ssize_t n = read_retrying(p.fd[0], buf, sizeof buf);
  const int err = errno;
  writer.join();
  itimerval off{};
  ::setitimer(ITIMER_REAL, &off, nullptr);
  ::sigaction(SIGALRM, &old, nullptr);
  INFO("errno " << err);
  CHECK(n == 5);
  CHECK(std::string(buf, 5) == "hello");
}

TEST_CASE("write_all reports the errno that stopped it", "[fd_io]") {
  Pipe p;
  ::close(p.fd[0]);
  p.fd[0] = -1;
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(::sigaction(SIGPIPE, &ignore, &old) == 0);
  CHECK(write_all(p.fd[1], "x", 1) == EPIPE);
  ::sigaction(SIGPIPE, &old, nullptr);
  CHECK(write_all(-1, "x", 1) == EBADF);
}

TEST_CASE("ASCII lowering and trimming leave other bytes alone", "[text]") {
  CHECK(ascii_lower("Content-Encoding: GZIP") == "content-encoding: gzip");
  CHECK(ascii_lower("\xC3\x84Z") == "\xC3\x84z");  // UTF-8 bytes unchanged
  CHECK(trim_space(" \t value \r\n") == "value");
  CHECK(trim_space("   ").empty());
  CHECK(trim_space("a b") == "a b");
}
