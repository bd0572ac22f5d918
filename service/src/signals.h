#pragma once

#include <atomic>

namespace painpoint::service {

// Installs SIGINT/SIGTERM handlers that set a flag (async-signal-safe) and returns it.
// Long-running commands poll the flag; a second signal while stopping is the same request.
const std::atomic<bool>& install_stop_signal_handlers();

}  // namespace painpoint::service
