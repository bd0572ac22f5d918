#include "signals.h"

#include <execinfo.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

namespace painpoint::service {
namespace {
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "flag must be safe to set in a handler");

extern "C" void on_stop_signal(int /*signal*/) { g_stop_requested.store(true); }

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

// write(2) until done or failed: the only output that is async-signal-safe.
void write_all(const char* text, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, size);
    if (n <= 0) return;
    text += n;
    size -= static_cast<std::size_t>(n);
  }
}
void write_text(const char* text) { write_all(text, std::strlen(text)); }

void write_number(int value) {
  char digits[16];
  std::size_t n = 0;
  unsigned v = value < 0 ? 0U : static_cast<unsigned>(value);
  do {
    digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < sizeof digits);
  write_all(digits + sizeof digits - n, n);
}

extern "C" void on_fatal_signal(int signal) {
  char thread[17] = {};
  (void)::prctl(PR_GET_NAME, thread, 0, 0, 0);
  write_text("\npainpoint: fatal signal ");
  write_number(signal);
  write_text(" (");
  write_text(sigabbrev_np(signal) != nullptr ? sigabbrev_np(signal) : "?");
  write_text(") in thread ");
  write_text(thread);
  write_text("; stack (addr2line -e <painpoint> <offset> names the frames):\n");
  void* frames[64];
  const int depth = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, depth, STDERR_FILENO);
  // Die of the same signal: the default action gives the usual exit status and core dump.
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  ::sigaction(signal, &fallback, nullptr);
  ::raise(signal);
}

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

void install_crash_handlers() {
  if (kUnderAddressSanitizer) return;
  // backtrace() loads libgcc's unwinder on first use, which is not safe inside a handler.
  void* warm[1];
  (void)::backtrace(warm, 1);
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  // One report per crash: a second fault while reporting takes the default action.
  action.sa_flags = SA_RESETHAND;
  for (int signal : kFatalSignals) ::sigaction(signal, &action, nullptr);
}

}  // namespace painpoint::service
