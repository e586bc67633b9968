// SPDX-License-Identifier: Apache-2.0
// LinePlot: nice and log axis ticks, tick labels, series drawn in their colours where the frame maps their
// points, axes and ticks, NaN/Inf/non-positive points skipped, empty and single-point plots, PNG output.
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>
#include <gkd/report/plot.hpp>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "support/rgb_printer.hpp"
#include "support/scratch.hpp"

using gkd::report::Canvas;
using gkd::report::LinePlot;
using gkd::report::Rgb;
namespace colors = gkd::report::colors;


namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

void check_ticks(const gkd::report::Axis& a, double lo, double hi, std::vector<double> ticks) {
  CHECK(a.lo == Approx(lo));
  CHECK(a.hi == Approx(hi));
  REQUIRE(a.ticks.size() == ticks.size());
  for (std::size_t i = 0; i < ticks.size(); ++i) CHECK(a.ticks[i] == Approx(ticks[i]).margin(1e-12));
}
int count(const Canvas& c, Rgb colour, int x0 = 0, int y0 = 0, int x1 = -1, int y1 = -1) {
  if (x1 < 0) x1 = c.width();
  if (y1 < 0) y1 = c.height();
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += c.pixel(x, y) == colour;
  return n;
}
/// Within a few levels of `b` (anti-aliased line pixels off the exact centre line).
bool near(Rgb a, Rgb b) { return std::abs(a.r - b.r) + std::abs(a.g - b.g) + std::abs(a.b - b.b) <= 24; }
Rgb at(const Canvas& c, double px, double py) { return c.pixel(static_cast<int>(std::floor(px)), static_cast<int>(std::floor(py))); }
}  // namespace

TEST_CASE("nice_step rounds up to 1, 2 or 5 times a power of ten", "[report]") {
  CHECK(gkd::report::nice_step(0.148) == Approx(0.2));
  CHECK(gkd::report::nice_step(0.2) == Approx(0.2));
  CHECK(gkd::report::nice_step(3.1) == Approx(5));
  CHECK(gkd::report::nice_step(7) == Approx(10));
  CHECK(gkd::report::nice_step(1) == Approx(1));
  CHECK(gkd::report::nice_step(0.00042) == Approx(0.0005));
}

TEST_CASE("nice_axis covers the range with multiples of a nice step", "[report]") {
  using gkd::report::nice_axis;
  check_ticks(nice_axis(0, 1), 0, 1, {0, 0.2, 0.4, 0.6, 0.8, 1});
  check_ticks(nice_axis(0.13, 0.87), 0, 1, {0, 0.2, 0.4, 0.6, 0.8, 1});
  check_ticks(nice_axis(-3, 7), -4, 8, {-4, -2, 0, 2, 4, 6, 8});
  check_ticks(nice_axis(12, 987), 0, 1000, {0, 200, 400, 600, 800, 1000});
  check_ticks(nice_axis(1, 100, 3), 0, 100, {0, 50, 100});
  check_ticks(nice_axis(0.41, 0.43), 0.41, 0.43, {0.41, 0.415, 0.42, 0.425, 0.43});
  // Degenerate ranges are widened around the value.
  check_ticks(nice_axis(0, 0), -0.6, 0.6, {-0.6, -0.4, -0.2, 0, 0.2, 0.4, 0.6});
  check_ticks(nice_axis(1000, 1000), 400, 1600, {400, 600, 800, 1000, 1200, 1400, 1600});
  CHECK(nice_axis(-2, -2).ticks.front() <= -2);
  CHECK(nice_axis(-2, -2).ticks.back() >= -2);
  // Zero is exactly zero, not -0 or 1e-17.
  for (double t : nice_axis(-0.3, 0.3).ticks) CHECK((t == 0 || std::abs(t) >= 0.09));
  CHECK_THROWS_AS(nice_axis(1, 0), gkd::Error);
  CHECK_THROWS_AS(nice_axis(0, kNaN), gkd::Error);
  CHECK_THROWS_AS(nice_axis(-1e308, 1e308), gkd::Error);
}

TEST_CASE("log_axis uses whole decades, with 2 and 5 inside a single decade", "[report]") {
  using gkd::report::log_axis;
  check_ticks(log_axis(0.02, 3), 0.01, 10, {0.01, 0.1, 1, 10});
  check_ticks(log_axis(0.3, 0.8), 0.1, 1, {0.1, 0.2, 0.5, 1});
  check_ticks(log_axis(1, 1), 1, 10, {1, 2, 5, 10});
  check_ticks(log_axis(0.1, 100), 0.1, 100, {0.1, 1, 10, 100});
  CHECK_THROWS_AS(log_axis(0, 1), gkd::Error);
}

TEST_CASE("tick labels have the decimals their step needs", "[report]") {
  using gkd::report::tick_label;
  CHECK(tick_label(0.2, 0.2) == "0.2");
  CHECK(tick_label(0, 0.2) == "0.0");
  CHECK(tick_label(1000, 200) == "1000");
  CHECK(tick_label(0.415, 0.005) == "0.415");
  CHECK(tick_label(-4, 2) == "-4");
  CHECK(tick_label(2e6, 5e5) == "2e+06");
  CHECK(tick_label(0.01, 0.09, true) == "0.01");
  CHECK(tick_label(1e-5, 9e-5, true) == "1e-05");
  CHECK(tick_label(100, 900, true) == "100");
}

TEST_CASE("series are drawn in their colours at the frame's positions, with axes and ticks", "[report]") {
  LinePlot plot;
  plot.title("loss").x_label("step").y_label("value");
  plot.add("ce", {1, 2, 3, 4, 5}, {1.0, 0.8, 0.6, 0.5, 0.45});
  plot.add("dice", {1, 2, 3, 4, 5}, {0.1, 0.3, 0.5, 0.55, 0.6});
  std::vector<double> flat(100, 0.2);
  plot.add_y("flat", flat, Rgb{1, 2, 3});
  REQUIRE(plot.series()[0].color == gkd::report::palette(0));
  REQUIRE(plot.series()[1].color == gkd::report::palette(1));

  const Canvas c = plot.render(800, 500);
  const auto f = plot.frame(800, 500);
  CHECK(c.width() == 800);
  CHECK(c.height() == 500);
  CHECK(f.x.lo <= 1);
  CHECK(f.x.hi >= 100);
  CHECK(f.y.lo <= 0.1);
  CHECK(f.y.hi >= 1.0);
  // Each point of the short series carries a dot of its colour (the first two points: clear of the legend).
  for (int s = 0; s < 2; ++s)
    for (int i = 0; i < 2; ++i) {
      const auto& sr = plot.series()[s];
      CHECK(at(c, f.to_px(sr.x[i]), f.to_py(sr.y[i])) == sr.color);
    }
  // The long series is a horizontal line without dots, visible all along.
  const double py = f.to_py(0.2);
  for (double x : {2.0, 20.0, 50.0, 90.0}) CHECK(at(c, f.to_px(x), py) == Rgb{1, 2, 3});
  CHECK(count(c, Rgb{1, 2, 3}, f.left, static_cast<int>(py) - 4, f.right, static_cast<int>(py) + 5) < 6 * (f.right - f.left));
  // Frame, tick marks and labels in black.
  CHECK(c.pixel(f.left - 1, (f.top + f.bottom) / 2) == colors::black);
  CHECK(c.pixel((f.left + f.right) / 2, f.bottom) == colors::black);
  for (double t : f.x.ticks) {
    const int px = static_cast<int>(std::floor(f.to_px(t)));
    CHECK(c.pixel(px, f.bottom + 1) == colors::black);
    CHECK(count(c, colors::black, px - 20, f.bottom + 8, px + 20, f.bottom + 30) > 5);  // its label
  }
  for (double t : f.y.ticks) {
    const int y = static_cast<int>(std::floor(f.to_py(t)));
    CHECK(c.pixel(f.left - 2, y) == colors::black);
    CHECK(count(c, colors::black, 0, y - 8, f.left - 8, y + 8) > 5);
  }
  CHECK(count(c, colors::black, 0, 0, 800, f.top - 2) > 20);                 // title
  CHECK(count(c, colors::black, 0, f.top, 20, f.bottom) > 20);               // y label
  // Legend swatches of the three colours near the top right.
  for (const auto& sr : plot.series()) CHECK(count(c, sr.color, f.right - 300, f.top, f.right, f.top + 100) >= 6 * 14);
}

TEST_CASE("NaN and Inf points are skipped: same axes, line broken at the gap", "[report]") {
  LinePlot clean, dirty;
  clean.add("a", {0, 2}, {0, 1});
  dirty.add("a", {0, 1, 2, 3, kInf}, {0, kNaN, 1, kInf, 5});
  const auto fc = clean.frame(640, 400), fd = dirty.frame(640, 400);
  CHECK(fd.x.lo == fc.x.lo);
  CHECK(fd.x.hi == fc.x.hi);
  CHECK(fd.y.lo == fc.y.lo);
  CHECK(fd.y.hi == fc.y.hi);
  const Canvas cc = clean.render(640, 400), cd = dirty.render(640, 400);
  const Rgb colour = clean.series()[0].color;
  CHECK(near(at(cc, fc.to_px(1), fc.to_py(0.5)), colour));  // joined without the gap
  CHECK_FALSE(near(at(cd, fd.to_px(1), fd.to_py(0.5)), colour));
  CHECK(at(cd, fd.to_px(0), fd.to_py(0)) == colour);   // both finite points still shown
  CHECK(at(cd, fd.to_px(2), fd.to_py(1)) == colour);
}

TEST_CASE("log_y skips non-positive values and places decades evenly", "[report]") {
  LinePlot plot;
  plot.log_y().add("loss", {1, 2, 3, 4}, {1.0, 0.1, 0.0, -1.0});
  const auto f = plot.frame(640, 400);
  CHECK(f.y.log);
  CHECK(f.y.lo == Approx(0.1));
  CHECK(f.y.hi == Approx(1.0));
  CHECK(f.to_py(std::sqrt(0.1)) == Approx((f.to_py(0.1) + f.to_py(1.0)) / 2));
  const Canvas c = plot.render(640, 400);
  CHECK(at(c, f.to_px(2), f.to_py(0.1)) == plot.series()[0].color);
}

TEST_CASE("empty plots, empty series and single points render", "[report]") {
  const Canvas empty = LinePlot().render(320, 200);
  CHECK(empty.width() == 320);
  const auto f0 = LinePlot().frame(320, 200);
  CHECK(f0.x.lo == 0);
  CHECK(f0.x.hi == 1);

  LinePlot plot;
  plot.add("nothing", {}, {});
  plot.add("nan only", {kNaN}, {1.0});
  plot.append("one", 3.0, 0.5);
  const auto f = plot.frame(400, 300);
  CHECK(f.x.lo < 3.0);
  CHECK(f.x.hi > 3.0);
  CHECK(f.y.lo < 0.5);
  CHECK(f.y.hi > 0.5);
  const Canvas c = plot.render(400, 300);
  CHECK(at(c, f.to_px(3.0), f.to_py(0.5)) == plot.series()[2].color);
  CHECK(count(c, plot.series()[0].color) > 0);  // the empty series is still in the legend
  plot.append("one", 4.0, 0.25);
  CHECK(plot.series().size() == 3);
  CHECK(plot.series()[2].x.size() == 2);
}

TEST_CASE("palette colours are distinct, bad input throws", "[report]") {
  for (std::size_t i = 0; i < 10; ++i)
    for (std::size_t j = i + 1; j < 10; ++j) CHECK_FALSE(gkd::report::palette(i) == gkd::report::palette(j));
  CHECK(gkd::report::palette(10) == gkd::report::palette(0));
  LinePlot plot;
  CHECK_THROWS_AS(plot.add("bad", {1, 2}, {1}), gkd::Error);
  CHECK_THROWS_AS(plot.render(50, 50), gkd::Error);
}

TEST_CASE("save_png writes a decodable PNG of the requested size", "[report]") {
  gkd::test::ScratchDir dir("report_plot");
  LinePlot plot;
  plot.title("validation Dice").add("student", {1, 2, 3}, {0.5, 0.6, 0.65});
  plot.save_png(dir.path / "dice.png", 480, 320);
  const gkd::data::Image back = gkd::data::read_image(dir.path / "dice.png");
  CHECK(back.width == 480);
  CHECK(back.height == 320);
  CHECK(back.pixels == plot.render(480, 320).image().pixels);
}
