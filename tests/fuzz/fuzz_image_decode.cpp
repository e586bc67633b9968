// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the image decoders of include/gkd/data/image_io.hpp: format sniffing, the
// stb_image / libtiff / gzip decode paths (decode_image) and gunzip with a small inflation cap. Every
// malformed input must end in a gkd::Error (caught here), never a crash, sanitizer report or hang; a
// decoded image must have consistent sizes and, when small, survive a PNG encode/decode round trip.
// TIFF and gzip paths are exercised when built with -DGKD_HAS_TIFF=1 -DGKD_HAS_ZLIB=1 -ltiff -lz
// (without them those inputs raise the "not built in" gkd::Error).
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  (void)gkd::data::sniff_format(bytes);
  try {
    // 4 Mpx cap: keeps the fuzzer within libFuzzer's 2 GB RSS limit under ASan
    const gkd::data::Image img = gkd::data::decode_image(bytes, "fuzz-input", std::int64_t(1) << 22);
    if (img.width <= 0 || img.height <= 0 || img.channels < 1 || img.channels > 4 ||
        img.pixels.size() != std::size_t(img.width) * img.height * img.channels)
      __builtin_trap();
    if (std::size_t(img.width) * img.height <= 4096) {
      const gkd::data::Image back = gkd::data::decode_image(gkd::data::encode_png(img), "fuzz-roundtrip");
      if (back.pixels != img.pixels || back.channels != img.channels) __builtin_trap();
    }
  } catch (const gkd::Error&) {
  }
  try {
    (void)gkd::data::gunzip(bytes, "fuzz-input", std::size_t(1) << 20);
  } catch (const gkd::Error&) {
  }
  return 0;
}
