// SPDX-License-Identifier: Apache-2.0
// Image decoding/encoding: PNG round trips through files, committed fixtures of the other formats, and
// corrupt/truncated/empty inputs that must raise a gkd::Error naming the file.
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>

#include <catch2/catch.hpp>
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;
using gkd::data::Image;

namespace {
Image pattern(int w, int h, int c) {
  Image img = Image::zeros(w, h, c);
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<std::uint8_t>((i * 37 + i / 7) & 0xFF);
  return img;
}
fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("gkd_test_image_io_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
fs::path fixture(const char* name) { return fs::path(GKD_SOURCE_DIR) / "tests/fixtures/images" / name; }
}  // namespace

TEST_CASE("PNG round trip through a file keeps every byte (gray, gray+alpha, RGB, RGBA)", "[data]") {
  const fs::path dir = temp_dir();
  for (int c = 1; c <= 4; ++c) {
    const Image img = pattern(13, 7, c);
    const fs::path p = dir / ("rt" + std::to_string(c) + ".png");
    gkd::data::write_png(p, img);
    const Image back = gkd::data::read_image(p);
    CHECK(back.width == 13);
    CHECK(back.height == 7);
    CHECK(back.channels == c);
    CHECK(back.pixels == img.pixels);
  }
  fs::remove_all(dir);
}

TEST_CASE("Tensor <-> PNG: C×H×W and H×W in [0, 1] round trip to 8-bit levels", "[data]") {
  const fs::path dir = temp_dir();
  auto t = gkd::Tensor<float>::empty({3, 5, 6});
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = float((i * 11) % 256) / 255.f;
  gkd::data::write_png(dir / "t.png", t);
  auto back = gkd::data::read_image_tensor<float>(dir / "t.png");
  REQUIRE(back.shape() == gkd::Shape{3, 5, 6});
  for (std::int64_t i = 0; i < t.numel(); ++i) CHECK(back.data()[i] == t.data()[i]);
  auto g = gkd::Tensor<double>::full({4, 4}, 0.5);
  gkd::data::write_png(dir / "g.png", g);
  const Image gi = gkd::data::read_image(dir / "g.png");
  CHECK(gi.channels == 1);
  CHECK(gi.at(3, 3) == 128);
  fs::remove_all(dir);
}

TEST_CASE("A valid PNG with an empty IDAT chunk inserted decodes to the same pixels", "[data]") {
  const Image img = pattern(9, 5, 3);
  std::vector<std::uint8_t> png = gkd::data::encode_png(img);
  // insert an empty IDAT (length 0, type, CRC) right after IHDR (8-byte signature + 25-byte IHDR chunk)
  const std::vector<std::uint8_t> empty{0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};
  png.insert(png.begin() + 33, empty.begin(), empty.end());
  CHECK(gkd::data::decode_image(png, "with-empty-idat.png").pixels == img.pixels);
}

TEST_CASE("BMP and JPEG encoders decode back (BMP exactly, JPEG within quality loss)", "[data]") {
  const Image img = pattern(16, 16, 3);
  const Image bmp = gkd::data::decode_image(gkd::data::encode_bmp(img), "mem.bmp");
  CHECK(bmp.pixels == img.pixels);
  Image flat = Image::zeros(16, 16, 3);
  for (std::size_t i = 0; i < flat.pixels.size(); ++i) flat.pixels[i] = static_cast<std::uint8_t>(60 + 40 * (i % 3));
  const Image jpg = gkd::data::decode_image(gkd::data::encode_jpeg(flat, 95), "mem.jpg");
  REQUIRE(jpg.pixels.size() == flat.pixels.size());
  for (std::size_t i = 0; i < flat.pixels.size(); ++i) CHECK(std::abs(int(jpg.pixels[i]) - int(flat.pixels[i])) <= 3);
}

TEST_CASE("Committed fixtures of every format decode to the same 8x6 RGB pattern", "[data]") {
  // tests/fixtures/images/make_fixtures.py wrote the same pattern as PNG, BMP, GIF, PPM, PGM, TIFF and .ppm.gz
  const Image ref = gkd::data::read_image(fixture("pattern_rgb.png"));
  REQUIRE(ref.width == 8);
  REQUIRE(ref.height == 6);
  REQUIRE(ref.channels == 3);
  for (const char* name : {"pattern_rgb.bmp", "pattern_rgb.ppm", "pattern_rgb.ppm.gz", "pattern_rgb.tif"}) {
    INFO(name);
    const Image img = gkd::data::read_image(fixture(name));
    CHECK(img.channels == 3);
    CHECK(img.pixels == ref.pixels);
  }
  const Image gray = gkd::data::read_image(fixture("pattern_gray.png"));
  for (const char* name : {"pattern_gray.pgm", "pattern_gray.tif", "pattern_gray.gif"}) {
    INFO(name);
    const Image img = gkd::data::read_image(fixture(name));
    // GIF is palette-based: stb returns it as RGBA; the gray level is in every colour channel
    const int c = img.channels;
    REQUIRE(img.width == gray.width);
    REQUIRE(img.height == gray.height);
    for (std::size_t i = 0; i < gray.pixels.size(); ++i) CHECK(img.pixels[i * c] == gray.pixels[i]);
  }
  const Image jpg = gkd::data::read_image(fixture("pattern_rgb.jpg"));
  CHECK(jpg.width == 8);
  CHECK(jpg.height == 6);
}

TEST_CASE("Empty, truncated, corrupt and unknown inputs raise a gkd::Error naming the file", "[data]") {
  const fs::path dir = temp_dir();
  const std::vector<std::uint8_t> png = gkd::data::encode_png(pattern(32, 32, 3));
  auto require_error_naming = [](const fs::path& p, const char* what) {
    try {
      (void)gkd::data::read_image(p);
      FAIL("no error for " << p);
    } catch (const gkd::Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(p.string()) != std::string::npos);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  gkd::data::write_file_bytes(dir / "empty.png", {});
  require_error_naming(dir / "empty.png", "0-byte");
  gkd::data::write_file_bytes(dir / "trunc.png", std::span(png).first(png.size() / 2));
  require_error_naming(dir / "trunc.png", "PNG");
  gkd::data::write_file_bytes(dir / "header.png", std::span(png).first(12));
  require_error_naming(dir / "header.png", "PNG");
  std::vector<std::uint8_t> junk(100, 0x42);
  gkd::data::write_file_bytes(dir / "junk.png", junk);
  require_error_naming(dir / "junk.png", "unknown signature");
  const auto gz = gkd::data::read_file_bytes(fixture("pattern_rgb.ppm.gz"));
  gkd::data::write_file_bytes(dir / "trunc.ppm.gz", std::span(gz).first(gz.size() - 10));
  require_error_naming(dir / "trunc.ppm.gz", "gzip");
  const auto tif = gkd::data::read_file_bytes(fixture("pattern_rgb.tif"));
  gkd::data::write_file_bytes(dir / "trunc.tif", std::span(tif).first(20));
  require_error_naming(dir / "trunc.tif", "TIFF");
  require_error_naming(dir / "missing.png", "cannot open");
  CHECK_THROWS_WITH(gkd::data::decode_image(png, "big.png", 1000), Catch::Contains("exceeds 1000 pixels"));
  // found by tests/fuzz/fuzz_image_decode.cpp: a JPEG Huffman table with > 256 symbols overflows a table
  // inside Debian's stb_image 2.27; image_io refuses it before stb sees it
  require_error_naming(fixture("fuzz_jpeg_dht_overflow.jpg"), "Huffman table");
  // the same, with the oversized table read past the end of its segment (as stb does)
  require_error_naming(fixture("fuzz_jpeg_dht_overrun.jpg"), "Huffman table");
  // also found by the fuzzer: a 10-digit PPM width overflows stb's int parser (undefined behaviour)
  require_error_naming(fixture("fuzz_pnm_int_overflow.ppm"), "PPM/PGM header");
  // and a PNG whose first IDAT chunk is empty (stb passes a null pointer to memcpy): the empty chunk is
  // dropped before decoding; this one is still truncated, so the error names the file
  require_error_naming(fixture("fuzz_png_empty_idat.png"), "PNG");
  fs::remove_all(dir);
}
