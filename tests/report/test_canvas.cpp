// SPDX-License-Identifier: Apache-2.0
// Canvas: clipping, rectangles, lines with and without anti-aliasing, stb_easy_font text (upright and
// rotated), conversion to image_io's Image and a PNG written atomically and decoded back.
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>
#include <gkd/report/canvas.hpp>

#include <catch2/catch.hpp>

#include "support/rgb_printer.hpp"
#include "support/scratch.hpp"

using gkd::report::Canvas;
using gkd::report::Rgb;
namespace colors = gkd::report::colors;


namespace {
constexpr Rgb red{255, 0, 0};
int count(const Canvas& c, Rgb colour) {
  int n = 0;
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x) n += c.pixel(x, y) == colour;
  return n;
}
/// Bounding box [x0, x1] × [y0, y1] of the pixels that are not `background`.
std::array<int, 4> ink_box(const Canvas& c, Rgb background = colors::white) {
  std::array<int, 4> b{c.width(), -1, c.height(), -1};
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x)
      if (!(c.pixel(x, y) == background)) b = {std::min(b[0], x), std::max(b[1], x), std::min(b[2], y), std::max(b[3], y)};
  return b;
}
}  // namespace

TEST_CASE("canvas starts filled, clips drawing, and refuses reads outside", "[report]") {
  Canvas c(10, 6, Rgb{1, 2, 3});
  CHECK(c.width() == 10);
  CHECK(c.height() == 6);
  CHECK(c.pixel(9, 5) == Rgb{1, 2, 3});
  c.fill_rect(-5, -5, 8, 7, red);  // covers x 0..2, y 0..1
  CHECK(count(c, red) == 6);
  c.set(100, 100, red);
  c.line(-50, -50, 500, 300, red, 3.0);
  c.text(-20, 200, "clipped", red, 3);
  c.line(-1e300, 3.5, 1e300, 3.5, red, 1.0, false);  // huge but finite: clipped, row 3 filled
  for (int x = 0; x < 10; ++x) CHECK(c.pixel(x, 3) == red);
  c.line(4.5, -1e300, 4.5, 1e300, red, 1.0, false);
  for (int y = 0; y < 6; ++y) CHECK(c.pixel(4, y) == red);
  c.line(0, std::nan(""), 9, 5, red);               // non-finite: nothing drawn
  CHECK(c.pixel(7, 5) == Rgb{1, 2, 3});
  CHECK(c.image().channels == 3);
  CHECK(c.image().pixels.size() == 10 * 6 * 3);
  CHECK_THROWS_AS(c.pixel(10, 0), gkd::Error);
  CHECK_THROWS_AS(Canvas(0, 5), gkd::Error);
}

TEST_CASE("rect draws an outline of the given thickness", "[report]") {
  Canvas c(12, 10);
  c.rect(1, 2, 8, 6, red, 2);
  CHECK(c.pixel(1, 2) == red);
  CHECK(c.pixel(8, 7) == red);
  CHECK(c.pixel(2, 3) == red);                // second ring
  CHECK(c.pixel(3, 4) == colors::white);      // inside
  CHECK(c.pixel(9, 2) == colors::white);      // right of it
  CHECK(count(c, red) == 8 * 6 - 4 * 2);
}

TEST_CASE("lines: hard-edged exact pixels, anti-aliased partial coverage at the edge", "[report]") {
  Canvas hard(20, 10);
  hard.line(2, 5.5, 17, 5.5, red, 1.0, false);
  for (int x = 2; x <= 16; ++x) CHECK(hard.pixel(x, 5) == red);
  CHECK(hard.pixel(5, 4) == colors::white);
  CHECK(hard.pixel(5, 6) == colors::white);

  Canvas soft(20, 10);
  soft.line(2, 5.0, 17, 5.0, red, 1.0);  // on the boundary between rows 4 and 5: both half covered
  const Rgb half = soft.pixel(8, 4);
  CHECK(half == soft.pixel(8, 5));
  CHECK(half.r == 255);
  CHECK(half.g > 100);
  CHECK(half.g < 155);
  CHECK(soft.pixel(8, 2) == colors::white);

  Canvas diagonal(20, 20);
  diagonal.line(0, 0, 20, 20, red, 2.0);
  for (int i = 1; i < 19; ++i) CHECK(diagonal.pixel(i, i) == red);
  CHECK(diagonal.pixel(15, 3) == colors::white);
}

TEST_CASE("text has the advertised size, is crisp, and handles non-ASCII bytes", "[report]") {
  CHECK(Canvas::text_width("") == 0);
  CHECK(Canvas::text_width("AB", 3) == 3 * Canvas::text_width("AB"));
  CHECK(Canvas::text_height(2) == 14);
  for (int scale : {1, 2, 3}) {
    Canvas c(200, 60);
    c.text(10, 20, "HELLO", colors::black, scale);
    const auto box = ink_box(c);
    CHECK(box[0] == 10);
    CHECK(box[2] == 20);
    CHECK(box[3] - box[2] + 1 == Canvas::text_height(scale));
    CHECK(box[1] - box[0] + 1 <= Canvas::text_width("HELLO", scale));
    CHECK(count(c, colors::black) + count(c, colors::white) == 200 * 60);  // no blended pixels
  }
  Canvas utf(100, 20);
  utf.text(2, 2, "\xc3\xa9t\xc3\xa9\t", colors::black);  // "été" and a tab: drawn as '?'
  Canvas question(100, 20);
  question.text(2, 2, "??t???", colors::black);  // é is two bytes
  CHECK(utf.image().pixels == question.image().pixels);
}

TEST_CASE("rotated text reads bottom to top from its anchor", "[report]") {
  Canvas upright(100, 100), rotated(100, 100);
  upright.text(10, 10, "Loss", colors::black, 2);
  rotated.text(10, 90, "Loss", colors::black, 2, gkd::report::Rotation::ccw90);
  const auto u = ink_box(upright), r = ink_box(rotated);
  CHECK(r[1] - r[0] == u[3] - u[2]);  // width and height swapped
  CHECK(r[3] - r[2] == u[1] - u[0]);
  CHECK(r[0] == 10);
  CHECK(r[3] == 89);
  // The first letter ('L', its foot at the bottom-left) ends up at the bottom: pixel (u, v) of the upright
  // text maps to (10 + (v - 10), 90 - 1 - (u - 10)).
  for (int y = 10; y < 24; ++y)
    for (int x = 10; x < 60; ++x) CHECK(upright.pixel(x, y) == rotated.pixel(10 + (y - 10), 89 - (x - 10)));
}

TEST_CASE("from_image replicates gray and blit copies clipped", "[report]") {
  gkd::data::Image gray = gkd::data::Image::zeros(3, 2, 1);
  gray.at(1, 2) = 77;
  const Canvas c = Canvas::from_image(gray);
  CHECK(c.pixel(2, 1) == Rgb{77, 77, 77});
  CHECK(c.pixel(0, 0) == colors::black);
  Canvas big(5, 5);
  big.blit(c, 3, 4);
  CHECK(big.pixel(3, 4) == colors::black);
  CHECK(big.pixel(4, 4) == colors::black);
  CHECK(big.pixel(2, 4) == colors::white);
  CHECK_THROWS_AS(Canvas::from_image(gkd::data::Image{}), gkd::Error);
}

TEST_CASE("save_png writes a PNG that decodes back to the same pixels", "[report]") {
  gkd::test::ScratchDir dir("report_canvas");
  Canvas c(37, 21);
  c.line(0, 0, 37, 21, Rgb{10, 200, 30}, 3.0);
  c.text(2, 2, "png", colors::black);
  const auto path = dir.path / "out.png";
  c.save_png(path);
  const gkd::data::Image back = gkd::data::read_image(path);
  CHECK(back.width == 37);
  CHECK(back.height == 21);
  CHECK(back.channels == 3);
  CHECK(back.pixels == c.image().pixels);
  int leftovers = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) leftovers += e.path().filename() != "out.png";
  CHECK(leftovers == 0);
  CHECK_THROWS_AS(c.save_png(dir.path / "missing_folder" / "x.png"), gkd::Error);
}
