#include "signals.h"

#include <csignal>

namespace painpoint::service {
namespace {
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "flag must be safe to set in a handler");

extern "C" void on_stop_signal(int /*signal*/) { g_stop_requested.store(true); }
}  // namespace

const std::atomic<bool>& install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return g_stop_requested;
}

}  // namespace painpoint::service
