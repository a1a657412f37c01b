// SIGINT and SIGTERM as a request to stop: the handler records the signal, and the transfer loops
// (HTTP engine, file:// copies) and the cache-lock waits check it, end what they are doing as a
// failure, and return; the program then exits 128 + the signal's number. A second signal of
// either kind takes its default action (the handlers reset themselves), so a stuck process still
// dies on the second Ctrl-C.
#pragma once

namespace kernels::cli::hub {

// Installs the handlers (SA_RESETHAND). Without them, interrupt_signal() stays 0.
void install_interrupt_handlers();
// The signal that asked us to stop (SIGINT or SIGTERM), or 0.
int interrupt_signal();
inline bool interrupted() { return interrupt_signal() != 0; }

}  // namespace kernels::cli::hub
