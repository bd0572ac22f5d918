#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace painpoint::service {

Progress::Progress(std::string label, std::uint64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(std::uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  draw();
}

std::string Progress::format_duration(double seconds) {
  if (seconds < 0 || seconds > 360'000) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

void Progress::draw() {
  const double secs = elapsed_seconds();
  const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
  char line[256];
  if (total_ > 0) {
    const double pct = 100.0 * static_cast<double>(done_) / static_cast<double>(total_);
    const double left =
        rate > 0 ? static_cast<double>(total_ > done_ ? total_ - done_ : 0) / rate : -1;
    std::snprintf(line, sizeof line, "\r%s: %llu/%llu %s (%.0f%%), %.0f/s, %s left\x1b[K",
                  label_.c_str(), static_cast<unsigned long long>(done_),
                  static_cast<unsigned long long>(total_), unit_.c_str(), pct, rate,
                  format_duration(left).c_str());
  } else {
    std::snprintf(line, sizeof line, "\r%s: %llu %s, %.0f/s\x1b[K", label_.c_str(),
                  static_cast<unsigned long long>(done_), unit_.c_str(), rate);
  }
  std::fputs(line, stderr);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (!drawn_) return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace painpoint::service
