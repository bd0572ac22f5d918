#pragma once

#include <atomic>

namespace painpoint::service {

// Installs SIGINT/SIGTERM handlers that set a flag (async-signal-safe) and returns it.
// Long-running commands poll the flag; a second signal while stopping is the same request.
const std::atomic<bool>& install_stop_signal_handlers();

// On SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT: writes the signal, the faulting thread's name
// and its stack (binary offsets; `addr2line -e painpoint OFFSET` names them) to stderr, then dies
// of the same signal as before (exit status and core dumps unchanged). A crash in a service
// with a dozen threads is otherwise a bare "signal 11". Not installed under AddressSanitizer,
// whose own report says more.
void install_crash_handlers();

}  // namespace painpoint::service
