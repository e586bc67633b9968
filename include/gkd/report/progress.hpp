// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::report::ProgressBar`: one status line for long work (an epoch, an evaluation), with a bar,
/// step/total, named values (losses), throughput and ETA.
///
/// Contract
/// - `update(step, values)` reports that `step` of `total` steps are done (0 ≤ step ≤ total, else
///   `gkd::Error`). The line reads
///   `<label> [#########...........] 120/500  24% loss=0.41 ce=0.3 | 12.5 it/s | ETA 00:30`
///   with values printed to 4 significant digits (`%.4g`), throughput = steps done since construction
///   (from `options.initial_step`, for resumed work) per second of elapsed time, in items/s
///   (`options.unit`) when `options.items_per_step` is set, ETA = remaining steps / throughput
///   (`--:--` until it is known). Durations read `MM:SS`, or `H:MM:SS` from one hour.
/// - Interactive (a terminal): each update redraws the line in place (`\r`, padded with spaces over a
///   longer previous line), at most every `options.redraw_interval_s`; `finish()` redraws it a last time
///   with `| <elapsed> elapsed` instead of the ETA and ends it with a newline.
/// - Not interactive (a log file, a pipe): no carriage returns; an update prints the line followed by a
///   newline only when `options.log_interval_s` seconds have passed since the last printed line (or since
///   construction), and `finish()` prints the final line. `options.interactive` defaults to
///   `isatty(2)` for std::cerr/std::clog, `isatty(1)` for std::cout, and false for any other stream.
/// - `options.clock` (seconds, any origin) replaces the steady clock, so that tests are deterministic.
/// - `finish()` is idempotent; a bar destroyed unfinished in interactive mode ends its line with a newline.
///
/// @code
/// gkd::report::ProgressBar bar("distill gkd epoch 3/10", loader.batches(), std::cerr, {.items_per_step = 8, .unit = "img"});
/// for (std::int64_t b = 0; b < loader.batches(); ++b) {
///   auto [loss, ce] = step(b);
///   bar.update(b + 1, {{"loss", loss}, {"ce", ce}});
/// }
/// bar.finish();
/// @endcode
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gkd/core/error.hpp"

namespace gkd::report {

struct ProgressOptions {
  /// Redraw in place (true) or print plain lines (false); unset: detect (see the contract).
  std::optional<bool> interactive;
  /// Non-interactive: the least time between two printed lines.
  double log_interval_s = 30.0;
  /// Interactive: the least time between two redraws.
  double redraw_interval_s = 0.1;
  /// Characters inside the brackets.
  int bar_width = 20;
  /// When > 0, throughput is `items_per_step` × steps/s, shown as `<unit>/s`.
  double items_per_step = 0.0;
  std::string unit = "it";
  /// Steps already done before this bar (resumed work): excluded from the throughput.
  std::int64_t initial_step = 0;
  /// Seconds from any origin; default: std::chrono::steady_clock.
  std::function<double()> clock;
};

/// `MM:SS`, or `H:MM:SS` from one hour (negative and non-finite read `--:--`).
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e8) return "--:--";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  return buf;
}

class ProgressBar {
 public:
  using Values = std::vector<std::pair<std::string, double>>;

  ProgressBar(std::string label, std::int64_t total, std::ostream& out = std::cerr, ProgressOptions options = {})
      : label_(std::move(label)), total_(total), out_(out), options_(std::move(options)) {
    GKD_CHECK(total_ > 0, "ProgressBar", "'" << label_ << "': total " << total_ << " must be positive");
    GKD_CHECK(options_.initial_step >= 0 && options_.initial_step <= total_, "ProgressBar",
              "'" << label_ << "': initial_step " << options_.initial_step << " is outside [0, " << total_ << "]");
    GKD_CHECK(options_.bar_width >= 0, "ProgressBar", "bar_width " << options_.bar_width << " is negative");
    if (!options_.clock) options_.clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      };
    interactive_ = options_.interactive.value_or(detect_terminal(out_));
    start_ = last_print_ = options_.clock();
    step_ = options_.initial_step;
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() {
    if (interactive_ && printed_ && !finished_) {
      try {
        out_ << '\n' << std::flush;
      } catch (...) {
      }
    }
  }

  [[nodiscard]] bool interactive() const noexcept { return interactive_; }

  /// `step` of total done, with the values to show (see the contract for when a line is printed).
  void update(std::int64_t step, const Values& values = {}) {
    GKD_CHECK(step >= 0 && step <= total_, "ProgressBar::update", "'" << label_ << "': step " << step << " is outside [0, " << total_ << "]");
    GKD_CHECK(!finished_, "ProgressBar::update", "'" << label_ << "': update after finish()");
    step_ = step, values_ = values;
    const double now = options_.clock();
    if (interactive_) {
      if (printed_ && now - last_print_ < options_.redraw_interval_s) return;
      redraw(line(now, false));
    } else {
      if (now - last_print_ < options_.log_interval_s) return;
      out_ << line(now, false) << '\n' << std::flush;
    }
    printed_ = true, last_print_ = now;
  }

  /// Prints the final line with the elapsed time; `values` replace the last update's when given.
  void finish(const std::optional<Values>& values = {}) {
    if (finished_) return;
    if (values) values_ = *values;
    const double now = options_.clock();
    if (interactive_) redraw(line(now, true)), out_ << '\n';
    else out_ << line(now, true) << '\n';
    out_ << std::flush;
    finished_ = true;
  }

  /// The status line at time `now` (a clock reading) for the last reported step and values.
  [[nodiscard]] std::string line(double now, bool final) const {
    const double elapsed = std::max(0.0, now - start_);
    const double done = double(step_ - options_.initial_step);
    const double rate = elapsed > 0 && done > 0 ? done / elapsed : NAN;
    std::string s = label_;
    if (options_.bar_width > 0) {
      const auto filled = static_cast<int>(double(step_) * options_.bar_width / double(total_));
      s += " [" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(options_.bar_width - filled), '.') + "]";
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, " %lld/%lld %3d%%", static_cast<long long>(step_), static_cast<long long>(total_),
                  static_cast<int>(100 * step_ / total_));
    s += buf;
    for (const auto& [name, value] : values_) {
      std::snprintf(buf, sizeof buf, "=%.4g", value);
      s += " " + name + buf;
    }
    const bool items = options_.items_per_step > 0;
    const double shown_rate = items ? rate * options_.items_per_step : rate;
    s += " | " + (std::isfinite(shown_rate) ? format_rate(shown_rate) : std::string("-")) + " " + (items ? options_.unit : "it") + "/s";
    s += final ? " | " + format_duration(elapsed) + " elapsed" : " | ETA " + format_duration(double(total_ - step_) / rate);
    return s;
  }

 private:
  static bool detect_terminal(const std::ostream& out) {
    if (&out == &std::cerr || &out == &std::clog) return ::isatty(2) == 1;
    if (&out == &std::cout) return ::isatty(1) == 1;
    return false;
  }
  static std::string format_rate(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, r >= 100 ? "%.0f" : r >= 10 ? "%.1f" : "%.2f", r);
    return buf;
  }
  void redraw(const std::string& text) {
    out_ << '\r' << text;
    if (text.size() < last_width_) out_ << std::string(last_width_ - text.size(), ' ');
    out_ << std::flush;
    last_width_ = text.size();
  }

  std::string label_;
  std::int64_t total_;
  std::ostream& out_;
  ProgressOptions options_;
  bool interactive_ = false, printed_ = false, finished_ = false;
  double start_ = 0, last_print_ = 0;
  std::int64_t step_ = 0;
  Values values_;
  std::size_t last_width_ = 0;
};

}  // namespace gkd::report
