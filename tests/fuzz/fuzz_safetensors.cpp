// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the safetensors parser: any byte string must either parse (and then every
// tensor must read, as float and as double, and load into matching targets) or raise gkd::Error.
// Any other exception, crash, sanitizer report or huge allocation is a finding.
// Built with clang by tests/fuzz/CMakeLists.txt; tests/io/test_safetensors_corpus.cpp replays the
// corpus through the same function in the g++ build.
#include <cstddef>
#include <cstdint>
#include <span>

#include <gkd/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const gkd::io::StView view = gkd::io::parse_safetensors(bytes, "fuzz-input");
    gkd::NamedTensors<float> targets;
    for (const auto& e : view.entries) {
      (void)gkd::io::read_tensor<double>(view, e);
      targets.push_back({e.name, gkd::io::read_tensor<float>(view, e)});
    }
    const gkd::io::LoadReport report = gkd::io::load_into(view, targets);
    if (!report.ok() || report.loaded.size() != view.entries.size()) __builtin_trap();
  } catch (const gkd::Error&) {
  }
  return 0;
}
