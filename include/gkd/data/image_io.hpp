// SPDX-License-Identifier: Apache-2.0
// (classic include guard instead of #pragma once: the implementation section below must be reachable
//  by a second inclusion in the one translation unit that defines GKD_IMAGE_IO_IMPLEMENTATION)
#ifndef GKD_DATA_IMAGE_IO_HPP
#define GKD_DATA_IMAGE_IO_HPP
/// @file
/// Reading and writing 2-D images: PNG, JPEG, BMP, GIF (first frame), binary PPM/PGM (P5/P6) through
/// stb_image, TIFF through libtiff, any of these gzip-compressed (`.gz`, e.g. STARE's `.ppm.gz` labels)
/// through zlib; writing PNG, JPEG and BMP through stb_image_write.
///
/// Contract
/// - Decoders take the bytes and a `name` (the file path) that every error message quotes:
///   `gkd::Error: read_image: /data/im01.png: truncated or corrupt PNG (stb_image: bad zlib header)`.
///   A 0-byte file, an unknown signature, a truncated stream, an image larger than
///   `kMaxImagePixels`, a gzip stream that inflates past `max_inflated_bytes` all throw `gkd::Error`.
/// - The format is found from the leading bytes (signature), not from the file name.
/// - TIFF needs libtiff (Debian `libtiff-dev`), `.gz` needs zlib (`zlib1g-dev`): cmake/GkdImageIO.cmake
///   defines `GKD_HAS_TIFF` / `GKD_HAS_ZLIB` when found; without them those inputs throw a `gkd::Error`
///   naming the package that enables them.
/// - 16-bit PNG/PNM samples are reduced to 8 bits (stb_image's rounding); TIFF goes through libtiff's
///   RGBA reader (any photometric, 8-bit result; 1-sample TIFFs stay gray).
///
/// The stb_image/libtiff/zlib code is compiled once: exactly one translation unit of the program
/// defines `GKD_IMAGE_IO_IMPLEMENTATION` before including this header (every other one includes it
/// plainly; forgetting it gives "undefined reference to gkd::data::decode_image"). That TU must not
/// have included `stb_image.h` itself: stb is compiled here with internal linkage (`STB_*_STATIC`), so it
/// never clashes with another copy of stb in the program.
///
/// @code
/// // image_io.cpp — the one TU with the implementation
/// #define GKD_IMAGE_IO_IMPLEMENTATION
/// #include <gkd/data/image_io.hpp>
///
/// // anywhere else
/// #include <gkd/data/image_io.hpp>
/// gkd::data::Image img = gkd::data::read_image("Image_01L.jpg");      // 999x960x3
/// gkd::Tensor<float> x = gkd::data::read_image_tensor<float>("Image_01L.jpg");  // [3, 960, 999] in [0, 1]
/// gkd::data::write_png("out.png", x);                                  // C×H×W or H×W in [0, 1]
/// @endcode
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "gkd/data/image.hpp"

namespace gkd::data {

/// Decoded images above this many pixels are refused (HRF's 3504×2336 is 8.2 Mpx).
inline constexpr std::int64_t kMaxImagePixels = std::int64_t(1) << 27;
/// Default cap on what one gzip stream may inflate to (LiTS volumes reach ~600 MB as int16).
inline constexpr std::size_t kDefaultMaxInflatedBytes = std::size_t(2) << 30;

enum class ImageFormat { unknown, png, jpeg, bmp, gif, pnm, tiff, gzip };

/// The container format from its signature (the first bytes); `unknown` when none matches.
inline ImageFormat sniff_format(std::span<const std::uint8_t> b) noexcept {
  auto starts = [&](std::initializer_list<int> sig) {
    if (b.size() < sig.size()) return false;
    std::size_t i = 0;
    for (int s : sig)
      if (b[i++] != static_cast<std::uint8_t>(s)) return false;
    return true;
  };
  if (starts({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return ImageFormat::png;
  if (starts({0xFF, 0xD8, 0xFF})) return ImageFormat::jpeg;
  if (starts({'B', 'M'})) return ImageFormat::bmp;
  if (starts({'G', 'I', 'F', '8'})) return ImageFormat::gif;
  if (starts({'I', 'I', 42, 0}) || starts({'M', 'M', 0, 42}) || starts({'I', 'I', 43, 0}) || starts({'M', 'M', 0, 43}))
    return ImageFormat::tiff;
  if (starts({0x1F, 0x8B})) return ImageFormat::gzip;
  if (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return ImageFormat::pnm;
  return ImageFormat::unknown;
}

/// The whole file as bytes; throws naming the file when it cannot be opened or read.
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path);
/// Writes `bytes` to `path` (created or truncated); throws naming the file on failure.
void write_file_bytes(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);

/// Inflates a gzip (or zlib) stream; throws naming `name` when it is corrupt, truncated or would exceed
/// `max_bytes`.
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> bytes, const std::string& name,
                                 std::size_t max_bytes = kDefaultMaxInflatedBytes);

/// Decodes an image held in memory (format sniffed, gzip unwrapped); `name` appears in every error.
/// Images of more than `max_pixels` pixels are refused before their pixels are allocated.
Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name = "<memory>",
                   std::int64_t max_pixels = kMaxImagePixels);

/// PNG bytes of `image` (any of 1–4 channels).
std::vector<std::uint8_t> encode_png(const Image& image);
/// Baseline JPEG bytes of `image` at `quality` in [1, 100] (alpha ignored by stb).
std::vector<std::uint8_t> encode_jpeg(const Image& image, int quality = 90);
/// BMP bytes of `image`.
std::vector<std::uint8_t> encode_bmp(const Image& image);

/// Reads and decodes an image file (`.gz` or not: the bytes decide).
inline Image read_image(const std::filesystem::path& path) { return decode_image(read_file_bytes(path), path.string()); }

/// Reads an image as a C×H×W tensor in [0, 1].
template <Real T = float>
Tensor<T> read_image_tensor(const std::filesystem::path& path) {
  return to_tensor<T>(read_image(path));
}

/// Writes `image` as PNG.
inline void write_png(const std::filesystem::path& path, const Image& image) { write_file_bytes(path, encode_png(image)); }
/// Writes an H×W or C×H×W tensor with values in [0, 1] as an 8-bit PNG (see `from_tensor`).
template <Real T>
void write_png(const std::filesystem::path& path, const Tensor<T>& t) {
  write_png(path, from_tensor(t));
}
/// Writes `image` as JPEG at `quality`.
inline void write_jpeg(const std::filesystem::path& path, const Image& image, int quality = 90) {
  write_file_bytes(path, encode_jpeg(image, quality));
}
/// Writes by extension: `.png`, `.jpg`/`.jpeg` (quality 95), `.bmp`.
void write_image(const std::filesystem::path& path, const Image& image);

}  // namespace gkd::data

#endif  // GKD_DATA_IMAGE_IO_HPP

// ================================ implementation (one TU only) ========================================
#if defined(GKD_IMAGE_IO_IMPLEMENTATION) && !defined(GKD_IMAGE_IO_IMPLEMENTED)
#define GKD_IMAGE_IO_IMPLEMENTED
// GCC 12 at -O2/-O3 reports a false -Wstringop-overflow in std::vector::insert once stb_append is
// inlined into the encoders; scoped to this implementation section so users need no pragma of their own.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_MAX_DIMENSIONS (1 << 20)
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#if defined(GKD_HAS_TIFF)
#include <tiffio.h>
#endif
#if defined(GKD_HAS_ZLIB)
#include <zlib.h>
#endif

namespace gkd::data {

namespace detail_io {
inline const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::png: return "PNG";
    case ImageFormat::jpeg: return "JPEG";
    case ImageFormat::bmp: return "BMP";
    case ImageFormat::gif: return "GIF";
    case ImageFormat::pnm: return "PPM/PGM";
    case ImageFormat::tiff: return "TIFF";
    case ImageFormat::gzip: return "gzip";
    default: return "unknown";
  }
}

/// stb_image 2.27 (Debian 12) writes past a 257-entry table when a JPEG Huffman table (DHT) declares more
/// than 256 symbols (fixed upstream in 2.28); found by tests/fuzz/fuzz_image_decode.cpp. Walks the JPEG
/// markers (skipping segments by length and entropy-coded data by its 0xFF stuffing) and refuses such tables.
inline void check_jpeg_huffman_tables(std::span<const std::uint8_t> b, const std::string& name) {
  std::size_t pos = 2;
  while (pos + 1 < b.size()) {
    if (b[pos] != 0xFF) {
      ++pos;  // entropy-coded data
      continue;
    }
    const std::uint8_t m = b[pos + 1];
    if (m == 0xFF) {
      ++pos;  // fill byte
      continue;
    }
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      pos += 2;  // stuffed 0xFF, TEM, restart markers, SOI: no length
      continue;
    }
    if (m == 0xD9 || pos + 4 > b.size()) return;
    const std::size_t len = (std::size_t(b[pos + 2]) << 8) | b[pos + 3];
    if (len < 2) return;
    if (m == 0xC4) {
      // like stb: read tables while the declared length is not used up, even past the segment's end
      // (bytes past the end of the buffer read as 0); a negative remainder makes stb stop with an error
      std::ptrdiff_t remaining = std::ptrdiff_t(len) - 2;
      std::size_t p = pos + 4;
      while (remaining > 0) {
        std::size_t symbols = 0;
        for (std::size_t i = 1; i <= 16; ++i) symbols += p + i < b.size() ? b[p + i] : 0;
        GKD_CHECK(symbols <= 256, "read_image",
                  name << ": truncated or corrupt JPEG (Huffman table with " << symbols << " symbols, at most 256)");
        p += 17 + symbols;
        remaining -= std::ptrdiff_t(17 + symbols);
      }
      if (remaining < 0) return;
    }
    pos += 2 + len;
  }
}

/// stb_image 2.27 accumulates PNM header numbers in an `int` without an overflow check (undefined
/// behaviour on a 10-digit width; found by the fuzzer). Reads the header the way stb does (whitespace,
/// `#` comments to the end of the line) and refuses numbers of more than 7 digits (dimensions are capped
/// at 2^20 and maxval at 65535 anyway).
inline void check_pnm_header(std::span<const std::uint8_t> b, const std::string& name) {
  std::size_t p = 2;
  for (int field = 0; field < 3; ++field) {
    while (p < b.size() && (std::isspace(b[p]) || b[p] == '#')) {
      if (b[p] == '#')
        while (p < b.size() && b[p] != '\n' && b[p] != '\r') ++p;
      else
        ++p;
    }
    std::size_t digits = 0;
    while (p < b.size() && std::isdigit(b[p])) ++p, ++digits;
    GKD_CHECK(digits <= 7, "read_image",
              name << ": unreadable PPM/PGM header (a " << (field == 2 ? "maxval" : "dimension") << " of " << digits
                   << " digits)");
    if (digits == 0) return;  // malformed: stb reports it
  }
}

/// stb_image 2.27 passes a null buffer to memcpy for a zero-length first IDAT chunk (undefined behaviour,
/// found by the fuzzer). Empty IDAT chunks carry no data, so a copy without them decodes identically;
/// returns an empty vector when there is none to drop (the common case: no copy).
inline std::vector<std::uint8_t> drop_empty_png_idat(std::span<const std::uint8_t> b) {
  std::vector<std::uint8_t> out;
  std::size_t p = 8, copied = 0;
  while (p + 12 <= b.size()) {
    const std::size_t len = (std::size_t(b[p]) << 24) | (std::size_t(b[p + 1]) << 16) | (std::size_t(b[p + 2]) << 8) | b[p + 3];
    if (len == 0 && b[p + 4] == 'I' && b[p + 5] == 'D' && b[p + 6] == 'A' && b[p + 7] == 'T') {
      out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(copied), b.begin() + static_cast<std::ptrdiff_t>(p));
      copied = p + 12;
    }
    if (len > b.size() - p - 12) break;
    p += 12 + len;
  }
  if (copied == 0) return {};
  out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(copied), b.end());
  return out;
}

inline Image decode_stb(std::span<const std::uint8_t> bytes, const std::string& name, ImageFormat f,
                        std::int64_t max_pixels) {
  if (f == ImageFormat::jpeg) check_jpeg_huffman_tables(bytes, name);
  if (f == ImageFormat::pnm) check_pnm_header(bytes, name);
  std::vector<std::uint8_t> cleaned;
  if (f == ImageFormat::png && !(cleaned = drop_empty_png_idat(bytes)).empty()) bytes = cleaned;
  GKD_CHECK(bytes.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "read_image",
            name << ": " << bytes.size() << " bytes is too large for the " << format_name(f) << " decoder");
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, c = 0;
  GKD_CHECK(stbi_info_from_memory(bytes.data(), len, &w, &h, &c), "read_image",
            name << ": unreadable " << format_name(f) << " header (stb_image: " << stbi_failure_reason() << ")");
  GKD_CHECK(w > 0 && h > 0 && std::int64_t(w) * h <= max_pixels, "read_image",
            name << ": " << format_name(f) << " size " << w << "x" << h << " is empty or exceeds " << max_pixels
                 << " pixels");
  stbi_uc* px = stbi_load_from_memory(bytes.data(), len, &w, &h, &c, 0);
  GKD_CHECK(px != nullptr, "read_image",
            name << ": truncated or corrupt " << format_name(f) << " (stb_image: " << stbi_failure_reason() << ")");
  Image img{w, h, c, std::vector<std::uint8_t>(px, px + static_cast<std::size_t>(w) * h * c)};
  stbi_image_free(px);
  return img;
}

#if defined(GKD_HAS_TIFF)
struct TiffMemory {
  std::span<const std::uint8_t> bytes;
  toff_t pos = 0;
};
inline tsize_t tiff_read(thandle_t h, tdata_t buf, tsize_t n) {
  auto* m = static_cast<TiffMemory*>(h);
  if (m->pos >= m->bytes.size()) return 0;
  const auto k = std::min<toff_t>(static_cast<toff_t>(n), m->bytes.size() - m->pos);
  std::memcpy(buf, m->bytes.data() + m->pos, k);
  m->pos += k;
  return static_cast<tsize_t>(k);
}
inline tsize_t tiff_write(thandle_t, tdata_t, tsize_t) { return 0; }
inline toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
  auto* m = static_cast<TiffMemory*>(h);
  toff_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->bytes.size() : 0;
  m->pos = base + off;
  return m->pos;
}
inline int tiff_close(thandle_t) { return 0; }
inline toff_t tiff_size(thandle_t h) { return static_cast<TiffMemory*>(h)->bytes.size(); }
inline int tiff_map(thandle_t, tdata_t*, toff_t*) { return 0; }
inline void tiff_unmap(thandle_t, tdata_t, toff_t) {}
inline int tiff_quiet(TIFF*, void*, const char*, const char*, va_list) { return 1; }
#endif

inline Image decode_tiff([[maybe_unused]] std::span<const std::uint8_t> bytes, const std::string& name,
                         [[maybe_unused]] std::int64_t max_pixels) {
#if defined(GKD_HAS_TIFF)
  TiffMemory mem{bytes, 0};
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_quiet, nullptr);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_quiet, nullptr);
  TIFF* tif = TIFFClientOpenExt(name.c_str(), "rm", &mem, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size,
                                tiff_map, tiff_unmap, opts);
  TIFFOpenOptionsFree(opts);
  GKD_CHECK(tif != nullptr, "read_image", name << ": unreadable TIFF header");
  std::uint32_t w = 0, h = 0;
  std::uint16_t spp = 1;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  if (w == 0 || h == 0 || std::int64_t(w) * h > max_pixels) {
    TIFFClose(tif);
    GKD_FAIL("read_image", name << ": TIFF size " << w << "x" << h << " is empty or exceeds " << max_pixels << " pixels");
  }
  std::vector<std::uint32_t> rgba(static_cast<std::size_t>(w) * h);
  const int ok = TIFFReadRGBAImageOriented(tif, w, h, rgba.data(), ORIENTATION_TOPLEFT, 0);
  TIFFClose(tif);
  GKD_CHECK(ok == 1, "read_image", name << ": truncated or corrupt TIFF (or an encoding libtiff cannot read)");
  const int c = spp == 1 ? 1 : spp == 2 ? 2 : spp == 3 ? 3 : 4;
  Image img = Image::zeros(static_cast<int>(w), static_cast<int>(h), c);
  for (std::size_t i = 0; i < rgba.size(); ++i) {
    const std::uint32_t p = rgba[i];
    const std::uint8_t r = TIFFGetR(p), g = TIFFGetG(p), b = TIFFGetB(p), a = TIFFGetA(p);
    std::uint8_t* o = &img.pixels[i * c];
    if (c == 1) o[0] = r;
    else if (c == 2) o[0] = r, o[1] = a;
    else {
      o[0] = r, o[1] = g, o[2] = b;
      if (c == 4) o[3] = a;
    }
  }
  return img;
#else
  GKD_FAIL("read_image", name << ": TIFF support is not built in; install libtiff (Debian: libtiff-dev) and reconfigure");
#endif
}

inline void stb_append(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(context);
  const auto* p = static_cast<const std::uint8_t*>(data);
  if (size > 0) out->insert(out->end(), p, p + static_cast<std::size_t>(size));
}

inline void check_encodable(const Image& image, const char* op) {
  GKD_CHECK(image.width > 0 && image.height > 0 && image.channels >= 1 && image.channels <= 4 &&
                image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * image.channels,
            op, "image " << image.width << "x" << image.height << "x" << image.channels << " with "
                         << image.pixels.size() << " bytes is not a valid image");
}
}  // namespace detail_io

std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  GKD_CHECK(in.good(), "read_file", path.string() << ": cannot open (missing file or no permission)");
  const std::streamoff size = in.tellg();
  GKD_CHECK(size >= 0, "read_file", path.string() << ": cannot determine the size (a directory?)");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  GKD_CHECK(in.good() || size == 0, "read_file", path.string() << ": read error");
  return bytes;
}

void write_file_bytes(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  GKD_CHECK(out.good(), "write_file", path.string() << ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  GKD_CHECK(out.good(), "write_file", path.string() << ": write error (disk full?)");
}

std::vector<std::uint8_t> gunzip([[maybe_unused]] std::span<const std::uint8_t> bytes, const std::string& name,
                                 [[maybe_unused]] std::size_t max_bytes) {
#if defined(GKD_HAS_ZLIB)
  GKD_CHECK(!bytes.empty(), "gunzip", name << ": empty file");
  z_stream zs{};
  GKD_CHECK(inflateInit2(&zs, 15 + 32) == Z_OK, "gunzip", name << ": zlib initialisation failed");  // gzip or zlib
  std::vector<std::uint8_t> out;
  std::size_t in_pos = 0;
  int rc = Z_OK;
  std::uint8_t chunk[1 << 16];
  while (true) {
    if (zs.avail_in == 0 && in_pos < bytes.size()) {
      const std::size_t n = std::min<std::size_t>(bytes.size() - in_pos, 1u << 30);
      zs.next_in = const_cast<Bytef*>(bytes.data() + in_pos);
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    zs.next_out = chunk;
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t produced = sizeof(chunk) - zs.avail_out;
    if (out.size() + produced > max_bytes) {
      inflateEnd(&zs);
      GKD_FAIL("gunzip", name << ": inflates past the limit of " << max_bytes << " bytes");
    }
    out.insert(out.end(), chunk, chunk + produced);
    if (rc == Z_STREAM_END) {
      // concatenated gzip members (allowed by RFC 1952) continue after a reset
      if (zs.avail_in == 0 && in_pos >= bytes.size()) break;
      if (inflateReset(&zs) != Z_OK) break;
      continue;
    }
    if (rc != Z_OK) break;
    if (zs.avail_in == 0 && in_pos >= bytes.size() && produced == 0) {
      rc = Z_BUF_ERROR;
      break;
    }
  }
  const char* msg = zs.msg;
  inflateEnd(&zs);
  GKD_CHECK(rc == Z_STREAM_END, "gunzip",
            name << ": " << (rc == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip stream")
                 << (msg ? std::string(" (zlib: ") + msg + ")" : std::string()));
  return out;
#else
  GKD_FAIL("gunzip", name << ": gzip support is not built in; install zlib (Debian: zlib1g-dev) and reconfigure");
#endif
}

Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name, std::int64_t max_pixels) {
  GKD_CHECK(!bytes.empty(), "read_image", name << ": empty (0-byte) file");
  const ImageFormat f = sniff_format(bytes);
  switch (f) {
    case ImageFormat::gzip: {
      const std::vector<std::uint8_t> inner = gunzip(bytes, name, std::size_t(max_pixels) * 4 + (1 << 20));
      GKD_CHECK(sniff_format(inner) != ImageFormat::gzip, "read_image", name << ": gzip inside gzip is not an image");
      return decode_image(inner, name, max_pixels);
    }
    case ImageFormat::tiff: return detail_io::decode_tiff(bytes, name, max_pixels);
    case ImageFormat::pnm:
      GKD_CHECK(bytes[1] == '5' || bytes[1] == '6', "read_image",
                name << ": ASCII or bitmap netpbm (P" << char(bytes[1]) << ") is not supported; use binary P5/P6");
      [[fallthrough]];
    case ImageFormat::png:
    case ImageFormat::jpeg:
    case ImageFormat::bmp:
    case ImageFormat::gif: return detail_io::decode_stb(bytes, name, f, max_pixels);
    default: break;
  }
  GKD_FAIL("read_image", name << ": not a PNG, JPEG, BMP, GIF, PPM/PGM, TIFF or gzip file (unknown signature)");
}

std::vector<std::uint8_t> encode_png(const Image& image) {
  detail_io::check_encodable(image, "encode_png");
  std::vector<std::uint8_t> out;
  const int ok = stbi_write_png_to_func(detail_io::stb_append, &out, image.width, image.height, image.channels,
                                        image.pixels.data(), image.width * image.channels);
  GKD_CHECK(ok != 0 && !out.empty(), "encode_png", "stb_image_write failed on a " << image.width << "x" << image.height
                                                                                  << " image");
  return out;
}

std::vector<std::uint8_t> encode_jpeg(const Image& image, int quality) {
  detail_io::check_encodable(image, "encode_jpeg");
  GKD_CHECK(quality >= 1 && quality <= 100, "encode_jpeg", "quality " << quality << " is outside [1, 100]");
  std::vector<std::uint8_t> out;
  const int ok = stbi_write_jpg_to_func(detail_io::stb_append, &out, image.width, image.height, image.channels,
                                        image.pixels.data(), quality);
  GKD_CHECK(ok != 0 && !out.empty(), "encode_jpeg", "stb_image_write failed");
  return out;
}

std::vector<std::uint8_t> encode_bmp(const Image& image) {
  detail_io::check_encodable(image, "encode_bmp");
  std::vector<std::uint8_t> out;
  const int ok = stbi_write_bmp_to_func(detail_io::stb_append, &out, image.width, image.height, image.channels,
                                        image.pixels.data());
  GKD_CHECK(ok != 0 && !out.empty(), "encode_bmp", "stb_image_write failed");
  return out;
}

void write_image(const std::filesystem::path& path, const Image& image) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (ext == ".png") return write_file_bytes(path, encode_png(image));
  if (ext == ".jpg" || ext == ".jpeg") return write_file_bytes(path, encode_jpeg(image, 95));
  if (ext == ".bmp") return write_file_bytes(path, encode_bmp(image));
  GKD_FAIL("write_image", path.string() << ": unsupported extension '" << ext << "' (use .png, .jpg or .bmp)");
}

}  // namespace gkd::data
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // GKD_IMAGE_IO_IMPLEMENTATION
