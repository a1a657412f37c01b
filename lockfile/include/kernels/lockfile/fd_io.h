// Reads and writes on file descriptors with the rules every caller needs, written once: a call
// a signal interrupted (EINTR) is made again, a write that makes no progress is an error rather
// than a loop, and a read into memory has a bound.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace kernels {

// read(2), made again while a signal interrupts it: the bytes read (> 0), 0 at the end, or -1
// with errno set.
ssize_t read_retrying(int fd, void* buf, std::size_t n);

// Writes all `n` bytes: 0, or the errno that stopped it (ENOSPC where write(2) wrote nothing).
int write_all(int fd, const void* buf, std::size_t n);

// Appends what is left of `fd` to `out`: 0, the errno of a failed read, or EFBIG as soon as
// `out` would hold more than `max_bytes` (then `out` is left as read so far).
int read_to_end(int fd, std::string& out, std::size_t max_bytes);

}  // namespace kernels
