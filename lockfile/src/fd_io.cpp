#include "kernels/lockfile/fd_io.h"

#include <unistd.h>

#include <cerrno>

namespace kernels {

ssize_t read_retrying(int fd, void* buf, std::size_t n) {
  for (;;) {
    const ssize_t got = ::read(fd, buf, n);
    if (got >= 0 || errno != EINTR) return got;
  }
}

int write_all(int fd, const void* buf, std::size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    const ssize_t done = ::write(fd, p, n);
    if (done < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (done == 0) return ENOSPC;
    p += done;
    n -= static_cast<std::size_t>(done);
  }
  return 0;
}

int read_to_end(int fd, std::string& out, std::size_t max_bytes) {
  constexpr std::size_t kChunk = 1 << 16;
  for (;;) {
    if (out.size() > max_bytes) return EFBIG;
    const std::size_t at = out.size();
    // Read up to one byte past the bound, so that a file of exactly max_bytes is accepted and a
    // longer one is seen without reading all of it.
    const std::size_t room = max_bytes - at;
    const std::size_t want = room >= kChunk ? kChunk : room + 1;
    out.resize(at + want);
    const ssize_t got = read_retrying(fd, out.data() + at, want);
    if (got < 0) {
      const int err = errno;
      out.resize(at);
      return err;
    }
    out.resize(at + static_cast<std::size_t>(got));
    if (got == 0) return 0;
  }
}

}  // namespace kernels
