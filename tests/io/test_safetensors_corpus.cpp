// SPDX-License-Identifier: Apache-2.0
// Replays the libFuzzer seed corpus (and any crash reproducers added to it) through the fuzz
// harness in the g++ build, so that the harness and the parser's handling of those inputs are
// exercised on every build, with or without clang (and under ASan/UBSan in the sanitizer build).
#include <catch2/catch.hpp>

#include <filesystem>
#include <vector>

#include <gkd/io/atomic_file.hpp>

#include "../fuzz/fuzz_safetensors.cpp"

TEST_CASE("safetensors fuzz corpus replays through the harness without escaping errors", "[io][fuzz]") {
  const std::filesystem::path corpus = std::filesystem::path(GKD_SOURCE_DIR) / "tests/fuzz/corpus/safetensors";
  REQUIRE(std::filesystem::is_directory(corpus));
  std::size_t files = 0, parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    INFO(entry.path().string());
    const std::vector<std::byte> bytes = gkd::io::read_file(entry.path());
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    CHECK_NOTHROW(LLVMFuzzerTestOneInput(data, bytes.size()));
    try {
      (void)gkd::io::parse_safetensors(bytes, entry.path().string());
      ++parsed;
    } catch (const gkd::Error&) {
    }
    // Every prefix of a seed (a truncated file) must be handled too.
    for (std::size_t n = 0; n < bytes.size(); n += 7) CHECK_NOTHROW(LLVMFuzzerTestOneInput(data, n));
    ++files;
  }
  CHECK(files >= 5);
  CHECK(parsed >= 4);  // the well-formed seeds parse
}
