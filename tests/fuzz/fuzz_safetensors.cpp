// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness for the safetensors parser: any byte string must either parse or raise
// gkd::Error. When it parses, every tensor must read (as float and as double), load into matching
// targets, and survive a write -> parse -> read round trip bit for bit with the same names and
// metadata. Any other exception, crash, sanitizer report or huge allocation is a finding.
// Built with clang by tests/fuzz/CMakeLists.txt; tests/io/test_safetensors_corpus.cpp replays the
// corpus through the same function in the g++ build.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <gkd/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  gkd::NamedTensors<float> tensors;
  gkd::io::Metadata metadata;
  try {
    const gkd::io::StView view = gkd::io::parse_safetensors(bytes, "fuzz-input");
    for (const auto& e : view.entries) {
      (void)gkd::io::read_tensor<double>(view, e);
      tensors.push_back({e.name, gkd::io::read_tensor<float>(view, e)});
    }
    metadata = view.metadata;
    const gkd::io::LoadReport report = gkd::io::load_into(view, tensors);
    if (!report.ok() || report.loaded.size() != view.entries.size()) __builtin_trap();
  } catch (const gkd::Error&) {
    return 0;
  }
  // What gkd writes, gkd reads back identically (no exception may escape from here).
  const std::vector<std::byte> written = gkd::io::serialize_safetensors(tensors, metadata);
  const gkd::io::StView again = gkd::io::parse_safetensors(written, "fuzz-rewritten");
  if (again.metadata != metadata || again.entries.size() != tensors.size()) __builtin_trap();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& e = again.entries[i];
    const gkd::Tensor<float> t = gkd::io::read_tensor<float>(again, e);
    if (e.name != tensors[i].name || t.shape() != tensors[i].tensor.shape()) __builtin_trap();
    const auto n = static_cast<std::size_t>(t.numel()) * sizeof(float);
    if (n && std::memcmp(t.data(), tensors[i].tensor.data(), n) != 0) __builtin_trap();
  }
  return 0;
}
