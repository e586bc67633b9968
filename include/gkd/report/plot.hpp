// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::report::LinePlot`: named (x, y) series drawn as lines on "nice" axes, for loss curves and
/// per-epoch validation scores in a run folder.
///
/// Contract
/// - Series keep the order they were added in; series i gets `palette(i)` (ten distinct colours, then
///   repeating) unless a colour is given.
/// - Points whose x or y is NaN or ±Inf (and, with `log_y`, y ≤ 0) are skipped: they take no part in the
///   axis ranges and the line is broken where they were. A plot with no drawable point gets the range
///   [0, 1] on both axes; a degenerate range (one point, or equal values) is widened around its value.
/// - Axes: `nice_axis` extends the data range to multiples of a step of 1, 2 or 5 × 10^k giving about
///   `target_ticks` ticks; `log_y` uses whole decades (with 2 and 5 in between when one decade or fewer).
/// - Points are joined by lines; series of at most `kMarkerLimit` points also get a dot on each point, so a
///   single point stays visible. The legend (every series, drawable or not) goes in the corner of the plot
///   area that covers the fewest points, top right when tied.
/// - `render(width, height)` returns the figure; `frame(width, height)` gives the data-to-pixel mapping
///   render uses (for callers that annotate, and for tests). `save_png` writes atomically (see canvas.hpp for
///   the one TU that must define `GKD_IMAGE_IO_IMPLEMENTATION`).
///
/// @code
/// gkd::report::LinePlot plot;
/// plot.title("distill gkd").x_label("step").y_label("loss").log_y(true);
/// for (int step = 1; step <= 100; ++step) {
///   plot.append("ce", step, ce_loss[step]);
///   plot.append("dcgd", step, dcgd_loss[step]);
/// }
/// plot.save_png("run/loss.png", 800, 500);
/// @endcode
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/report/canvas.hpp"

namespace gkd::report {

/// The i-th of ten distinct series colours (matplotlib's "tab10" values), repeating after ten.
inline Rgb palette(std::size_t i) noexcept {
  static constexpr Rgb kColors[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
                                      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return kColors[i % 10];
}

/// An axis: the range [lo, hi] and its tick values (ascending, within the range).
struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  bool log = false;
};

/// 1, 2 or 5 × 10^k nearest above `x` (> 0); the step of a nice axis.
inline double nice_step(double x) {
  const double p = std::pow(10.0, std::floor(std::log10(x)));
  const double f = x / p;
  return (f <= 1.0 + 1e-9 ? 1.0 : f <= 2.0 + 1e-9 ? 2.0 : f <= 5.0 + 1e-9 ? 5.0 : 10.0) * p;
}

/// A linear axis covering [lo, hi] whose ends and ticks are multiples of a nice step, about
/// `target_ticks` ticks. lo == hi is widened to a unit around the value (±|v|/2 for large |v|).
inline Axis nice_axis(double lo, double hi, int target_ticks = 6) {
  GKD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "nice_axis", "range [" << lo << ", " << hi << "] is not a finite interval");
  GKD_CHECK(std::isfinite(hi - lo), "nice_axis", "range [" << lo << ", " << hi << "] is too wide to draw");
  GKD_CHECK(target_ticks >= 2, "nice_axis", "target_ticks " << target_ticks << " is below 2");
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    const double half = std::max(0.5, std::abs(lo) * 0.5);
    lo -= half, hi += half;
  }
  const double step = nice_step((hi - lo) / (target_ticks - 1));
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  Axis a{first * step, last * step, {}, false};
  for (double k = first; k <= last + 0.5; k += 1.0) a.ticks.push_back(k * step == 0 ? 0.0 : k * step);
  return a;
}

/// A log10 axis covering [lo, hi] (both > 0) from the decade at or below lo to the one at or above hi;
/// ticks at every decade, plus 2× and 5× when the axis spans one decade or fewer.
inline Axis log_axis(double lo, double hi) {
  GKD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo > 0 && lo <= hi, "log_axis",
            "range [" << lo << ", " << hi << "] is not a finite positive interval");
  double e0 = std::floor(std::log10(lo) + 1e-9), e1 = std::ceil(std::log10(hi) - 1e-9);
  if (e1 <= e0) e1 = e0 + 1;
  Axis a{std::pow(10.0, e0), std::pow(10.0, e1), {}, true};
  for (double e = e0; e <= e1 + 0.5; e += 1.0) {
    const double d = std::pow(10.0, e);
    a.ticks.push_back(d);
    if (e1 - e0 <= 1 && e < e1)
      for (double m : {2.0, 5.0}) a.ticks.push_back(m * d);
  }
  return a;
}

/// The label of tick `v` on an axis of tick spacing `step` (linear) or on a log axis: as many decimals
/// as the step needs, scientific notation for very large or small magnitudes.
inline std::string tick_label(double v, double step, bool log = false) {
  char buf[32];
  const double mag = std::max(std::abs(v), step);
  if (log || mag >= 1e5 || (v != 0 && mag < 1e-3)) {
    if (log && std::abs(v) >= 1e-3 && std::abs(v) < 1e5) std::snprintf(buf, sizeof buf, "%g", v);
    else std::snprintf(buf, sizeof buf, "%.0e", v);
  } else {
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

/// The mapping from data coordinates to canvas pixels of one rendered plot.
struct PlotFrame {
  int left = 0, top = 0, right = 0, bottom = 0;  ///< the plot area: pixels [left, right) × [top, bottom)
  int inset = 0;  ///< pixels between the area's edge and the axis ends, so that markers on them show whole
  Axis x, y;
  /// The pixel-space x (continuous) of data x; pixel `floor(to_px(v))` holds it.
  [[nodiscard]] double to_px(double vx) const {
    return left + inset + (vx - x.lo) / (x.hi - x.lo) * (right - left - 1 - 2 * inset) + 0.5;
  }
  [[nodiscard]] double to_py(double vy) const {
    const double f = y.log ? (std::log10(vy) - std::log10(y.lo)) / (std::log10(y.hi) - std::log10(y.lo))
                           : (vy - y.lo) / (y.hi - y.lo);
    return bottom - 1 - inset - f * (bottom - top - 1 - 2 * inset) + 0.5;
  }
};

class LinePlot {
 public:
  /// Series of at most this many points get a dot on each point.
  static constexpr std::size_t kMarkerLimit = 40;

  struct Series {
    std::string name;
    std::vector<double> x, y;
    Rgb color;
  };

  LinePlot& title(std::string t) { title_ = std::move(t); return *this; }
  LinePlot& x_label(std::string t) { x_label_ = std::move(t); return *this; }
  LinePlot& y_label(std::string t) { y_label_ = std::move(t); return *this; }
  LinePlot& log_y(bool on = true) { log_y_ = on; return *this; }

  /// Adds a series; `x` and `y` must have the same length (may be 0).
  LinePlot& add(std::string name, std::vector<double> x, std::vector<double> y, std::optional<Rgb> color = {}) {
    GKD_CHECK(x.size() == y.size(), "LinePlot::add", "series '" << name << "' has " << x.size() << " x values and " << y.size() << " y values");
    const Rgb c = color.value_or(palette(series_.size()));
    series_.push_back({std::move(name), std::move(x), std::move(y), c});
    return *this;
  }
  /// Adds a series with x = 1, 2, ..., y.size().
  LinePlot& add_y(std::string name, const std::vector<double>& y, std::optional<Rgb> color = {}) {
    std::vector<double> x(y.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(i + 1);
    return add(std::move(name), std::move(x), y, color);
  }
  /// Appends one point to the series `name`, creating it (next palette colour) if needed.
  LinePlot& append(const std::string& name, double x, double y) {
    auto it = std::find_if(series_.begin(), series_.end(), [&](const Series& s) { return s.name == name; });
    if (it == series_.end()) {
      add(name, std::vector<double>{}, std::vector<double>{});
      it = series_.end() - 1;
    }
    it->x.push_back(x), it->y.push_back(y);
    return *this;
  }
  [[nodiscard]] const std::vector<Series>& series() const noexcept { return series_; }

  /// The plot area and axes `render(width, height)` uses.
  [[nodiscard]] PlotFrame frame(int width, int height) const {
    GKD_CHECK(width >= 120 && height >= 90, "LinePlot::render", "figure " << width << "x" << height << " is below 120x90");
    double xlo = kInf, xhi = -kInf, ylo = kInf, yhi = -kInf;
    for (const Series& s : series_)
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (drawable(s.x[i], s.y[i])) {
          xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
          ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
        }
    const bool any = xlo <= xhi;
    PlotFrame f;
    f.x = any ? nice_axis(xlo, xhi) : nice_axis(0, 1);
    f.y = log_y_ ? (any ? log_axis(ylo, yhi) : log_axis(0.1, 1)) : (any ? nice_axis(ylo, yhi) : nice_axis(0, 1));
    const int s = text_scale(width, height), gap = 4 * s;
    int label_w = 0;
    for (std::size_t i = 0; i < f.y.ticks.size(); ++i) label_w = std::max(label_w, Canvas::text_width(y_tick_label(f, i), s));
    f.left = gap + (y_label_.empty() ? 0 : Canvas::text_height(s) + gap) + label_w + gap + tick_len(s);
    const double xstep = f.x.ticks[1] - f.x.ticks[0];
    f.top = gap + Canvas::text_height(s) / 2 + (title_.empty() ? 0 : Canvas::text_height(s + 1) + gap);
    f.right = width - std::max(4 * gap, Canvas::text_width(tick_label(f.x.ticks.back(), xstep), s) / 2 + gap);
    f.bottom = height - (gap + tick_len(s) + Canvas::text_height(s) + gap + (x_label_.empty() ? 0 : Canvas::text_height(s) + gap));
    f.inset = 2 * s + 2;
    GKD_CHECK(f.right - f.left >= 20 && f.bottom - f.top >= 20, "LinePlot::render",
              "figure " << width << "x" << height << " leaves no room for the plot area");
    return f;
  }

  /// The figure as a `width`×`height` canvas.
  [[nodiscard]] Canvas render(int width = 800, int height = 500) const {
    const PlotFrame f = frame(width, height);
    const int s = text_scale(width, height), gap = 4 * s, tl = tick_len(s);
    Canvas c(width, height);
    // grid and ticks
    for (std::size_t i = 0; i < f.y.ticks.size(); ++i) {
      const int py = static_cast<int>(std::floor(f.to_py(f.y.ticks[i])));
      c.fill_rect(f.left, py, f.right - f.left, 1, colors::light_gray);
      c.fill_rect(f.left - tl, py, tl, 1, colors::black);
      const std::string label = y_tick_label(f, i);
      c.text(f.left - tl - gap / 2 - Canvas::text_width(label, s), py - Canvas::text_height(s) / 2, label, colors::black, s);
    }
    const double xstep = f.x.ticks[1] - f.x.ticks[0];
    for (double t : f.x.ticks) {
      const int px = static_cast<int>(std::floor(f.to_px(t)));
      c.fill_rect(px, f.top, 1, f.bottom - f.top, colors::light_gray);
      c.fill_rect(px, f.bottom, 1, tl, colors::black);
      const std::string label = tick_label(t, xstep);
      c.text(px - Canvas::text_width(label, s) / 2, f.bottom + tl + gap / 2, label, colors::black, s);
    }
    c.rect(f.left - 1, f.top - 1, f.right - f.left + 2, f.bottom - f.top + 2, colors::black);
    // labels
    if (!title_.empty()) c.text((f.left + f.right - Canvas::text_width(title_, s + 1)) / 2, gap, title_, colors::black, s + 1);
    if (!x_label_.empty())
      c.text((f.left + f.right - Canvas::text_width(x_label_, s)) / 2, height - gap - Canvas::text_height(s), x_label_, colors::black, s);
    if (!y_label_.empty())
      c.text(gap, (f.top + f.bottom + Canvas::text_width(y_label_, s)) / 2, y_label_, colors::black, s, Rotation::ccw90);
    // series, clipped to the plot area by drawing on a canvas of its size
    Canvas area(f.right - f.left, f.bottom - f.top);
    for (int y = 0; y < area.height(); ++y)
      for (int x = 0; x < area.width(); ++x) area.set(x, y, c.pixel(f.left + x, f.top + y));
    const double lw = std::max(1.5, 0.75 * s + 0.5);
    for (const Series& sr : series_) {
      bool joined = false;  // the previous point was drawable: join it to this one
      double qx = 0, qy = 0;
      for (std::size_t i = 0; i < sr.x.size(); ++i) {
        if (!drawable(sr.x[i], sr.y[i])) {
          joined = false;
          continue;
        }
        const double px = f.to_px(sr.x[i]) - f.left, py = f.to_py(sr.y[i]) - f.top;
        if (joined) area.line(qx, qy, px, py, sr.color, lw);
        if (sr.x.size() <= kMarkerLimit) area.disc(px, py, lw + 1.0, sr.color);
        joined = true, qx = px, qy = py;
      }
    }
    c.blit(area, f.left, f.top);
    draw_legend(c, f, s);
    return c;
  }

  /// Renders and writes the figure as a PNG file, atomically.
  void save_png(const std::filesystem::path& path, int width = 800, int height = 500) const { render(width, height).save_png(path); }

 private:
  static constexpr double kInf = std::numeric_limits<double>::infinity();
  [[nodiscard]] bool drawable(double x, double y) const noexcept {
    return std::isfinite(x) && std::isfinite(y) && (!log_y_ || y > 0);
  }
  static int text_scale(int width, int height) noexcept {
    return std::max(1, static_cast<int>(std::lround(std::min(width, height) / 250.0)));
  }
  static int tick_len(int s) noexcept { return 3 * s; }
  static std::string y_tick_label(const PlotFrame& f, std::size_t i) {
    const double step = f.y.ticks.size() > 1 ? f.y.ticks[1] - f.y.ticks[0] : 1.0;
    return tick_label(f.y.ticks[i], step, f.y.log);
  }
  void draw_legend(Canvas& c, const PlotFrame& f, int s) const {
    if (series_.empty()) return;
    const int gap = 4 * s, row = Canvas::text_height(s) + gap, swatch = 6 * s;
    int text_w = 0;
    for (const Series& sr : series_) text_w = std::max(text_w, Canvas::text_width(sr.name, s));
    const int w = gap + swatch + gap + text_w + gap, h = gap + row * static_cast<int>(series_.size());
    // The corner whose box covers the fewest points (and segment midpoints), top right first.
    const int corners[4][2] = {{f.right - w - gap, f.top + gap}, {f.left + gap, f.top + gap},
                               {f.right - w - gap, f.bottom - h - gap}, {f.left + gap, f.bottom - h - gap}};
    std::size_t hits[4] = {0, 0, 0, 0};
    auto tally = [&](double px, double py) {
      for (int k = 0; k < 4; ++k)
        hits[k] += px >= corners[k][0] - gap && px < corners[k][0] + w + gap && py >= corners[k][1] - gap && py < corners[k][1] + h + gap;
    };
    for (const Series& sr : series_)
      for (std::size_t i = 0; i < sr.x.size(); ++i) {
        if (!drawable(sr.x[i], sr.y[i])) continue;
        tally(f.to_px(sr.x[i]), f.to_py(sr.y[i]));
        if (i + 1 < sr.x.size() && drawable(sr.x[i + 1], sr.y[i + 1]))
          tally((f.to_px(sr.x[i]) + f.to_px(sr.x[i + 1])) / 2, (f.to_py(sr.y[i]) + f.to_py(sr.y[i + 1])) / 2);
      }
    const int best = static_cast<int>(std::min_element(hits, hits + 4) - hits);
    const int x = corners[best][0], y = corners[best][1];
    c.fill_rect(x, y, w, h, colors::white);
    c.rect(x, y, w, h, colors::gray);
    for (std::size_t i = 0; i < series_.size(); ++i) {
      const int ry = y + gap + row * static_cast<int>(i);
      c.fill_rect(x + gap, ry, swatch, Canvas::text_height(s), series_[i].color);
      c.text(x + gap + swatch + gap, ry, series_[i].name, colors::black, s);
    }
  }

  std::vector<Series> series_;
  std::string title_, x_label_, y_label_;
  bool log_y_ = false;
};

}  // namespace gkd::report
