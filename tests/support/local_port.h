// TCP ports on 127.0.0.1 for tests, the one home of this rule for every C++ suite (the shell
// scripts have tests/support/local_port.sh). Prefer a server that binds port 0 itself and reports
// the port it got (FakeHub, fake_hub_server --print-port): nothing can take that port first.
// These are for the two cases that cannot do that.
#pragma once

#include <chrono>
#include <string>

namespace kernels::test_support {

// A port on 127.0.0.1 where a connection is refused: bound by this object, never listened on, for
// as long as it lives, so no other process can start listening there during the test.
class RefusingPort {
 public:
  RefusingPort();  // throws std::runtime_error, naming the call, if the socket cannot be bound
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A port on 127.0.0.1 that nothing was bound to when asked, for a server that needs its port in
// its configuration and cannot report one it picked (nginx). Another process can take it before
// the server binds it: start the server with a fresh port again when it is not listening.
// Throws std::runtime_error, naming the call, if no socket can be bound.
int unused_port();

// Whether something accepts a TCP connection on 127.0.0.1:port now.
bool port_accepts(int port);

// port_accepts, tried every 20 ms until it is true (true) or the timeout passes (false).
bool wait_for_port(int port, std::chrono::milliseconds timeout);

}  // namespace kernels::test_support
