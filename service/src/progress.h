#pragma once

// Progress of a long command on stderr: "label: done/total (pct) rate/s, m:ss left", redrawn in
// place at most a few times per second, and only when stderr is a terminal (logs and pipes get
// the command's final summary line instead).
//
// Thread safety: one thread calls advance()/finish(). Not copyable.

#include <chrono>
#include <cstdint>
#include <string>

namespace painpoint::service {

class Progress {
 public:
  // total 0: unknown (no percentage or time left).
  Progress(std::string label, std::uint64_t total, std::string unit = "events");
  ~Progress();  // finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::uint64_t n = 1);
  void set_total(std::uint64_t total) { total_ = total; }
  [[nodiscard]] std::uint64_t done() const { return done_; }
  // Seconds since construction.
  [[nodiscard]] double elapsed_seconds() const;
  // Clears the progress line (if one was drawn). Idempotent.
  void finish();

  // "12,345 events/s", "1:05" — shared with the summary lines.
  [[nodiscard]] static std::string format_duration(double seconds);

 private:
  void draw();

  std::string label_;
  std::string unit_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace painpoint::service
