// SPDX-License-Identifier: Apache-2.0
// Interop with Python's safetensors, both directions, through committed files in
// tests/fixtures/safetensors/:
// - python_*.safetensors were written by `python3 tools/make_safetensors_fixtures.py write`;
// - gkd_written_f32/f64.safetensors are what gkd writes for the tensors built below (this test
//   checks byte equality); `python3 tools/make_safetensors_fixtures.py verify` proves they load in
//   Python with the same values. After a deliberate format change regenerate them with
//   `GKD_WRITE_FIXTURES=1 build/tests/test_io_safetensors_interop` and re-run the verify command.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gkd/gkd.hpp>
#include <gkd/io/safetensors.hpp>

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(GKD_SOURCE_DIR) / "tests" / "fixtures" / "safetensors";

template <gkd::Real T>
gkd::Tensor<T> ramp(const gkd::Shape& shape, double scale, double shift) {
  auto t = gkd::Tensor<T>::empty(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(static_cast<double>(i) * scale + shift);
  return t;
}

/// The tensors of the gkd-written fixtures; tools/make_safetensors_fixtures.py (expected_gkd) has
/// the same formulas.
template <gkd::Real T>
gkd::NamedTensors<T> gkd_fixture_tensors() {
  return {{"conv.weight", ramp<T>({2, 1, 3, 3}, 0.25, -2.0)},
          {"bn.running_mean", ramp<T>({2}, 0.5, 0.125)},
          {"fc.weight", ramp<T>({2, 3}, 1.0, 0.0).transpose(0, 1)},
          {"scale", gkd::Tensor<T>::scalar(T(-1.5))},
          {"empty", gkd::Tensor<T>::zeros({0, 3})}};
}

template <gkd::Real T>
void check_gkd_fixture(const char* file) {
  const auto bytes = gkd::io::serialize_safetensors(gkd_fixture_tensors<T>(), {{"producer", "gkd"}, {"epoch", "3"}});
  const fs::path path = kFixtures / file;
  if (const char* regen = std::getenv("GKD_WRITE_FIXTURES"); regen && std::string(regen) == "1") {
    gkd::io::write_file_atomically(path, bytes);
    WARN("wrote " << path.string() << "; now run: python3 tools/make_safetensors_fixtures.py verify");
  }
  REQUIRE(fs::exists(path));
  CHECK(gkd::io::read_file(path) == bytes);
  auto loaded = gkd::io::load_safetensors<T>(path);  // and gkd reads its own file back
  const auto expected = gkd_fixture_tensors<T>();
  REQUIRE(loaded.tensors.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(loaded.tensors[i].tensor.to_vector() == expected[i].tensor.to_vector());
}

}  // namespace

TEST_CASE("gkd-written fixtures: byte-identical to what gkd writes now", "[io]") {
  check_gkd_fixture<float>("gkd_written_f32.safetensors");
  check_gkd_fixture<double>("gkd_written_f64.safetensors");
}

TEST_CASE("Python-written file of every dtype reads exactly", "[io]") {
  auto actual = gkd::io::load_safetensors<double>(kFixtures / "python_dtypes.safetensors");
  auto expected = gkd::io::load_safetensors<double>(kFixtures / "python_expected.safetensors");
  CHECK(actual.metadata.at("producer") == "python-safetensors");
  CHECK(actual.metadata.at("note") == "uni\xc3\xa7ode \"quoted\"");
  REQUIRE(actual.tensors.size() == 13);
  REQUIRE(actual.tensors.size() == expected.tensors.size());
  for (const auto& [name, want] : expected.tensors) {
    INFO(name);
    auto it = std::find_if(actual.tensors.begin(), actual.tensors.end(), [&](const auto& nt) { return nt.name == name; });
    REQUIRE(it != actual.tensors.end());
    CHECK(it->tensor.shape() == want.shape());
    const auto a = it->tensor.to_vector(), w = want.to_vector();
    REQUIRE(a.size() == w.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i] == w[i]);
      CHECK(std::signbit(a[i]) == std::signbit(w[i]));  // -0.0 stays negative
    }
  }
  // Read as float: the nearest float of each exact value.
  auto as_float = gkd::io::load_safetensors<float>(kFixtures / "python_dtypes.safetensors");
  for (std::size_t t = 0; t < as_float.tensors.size(); ++t) {
    const auto& [name, got] = as_float.tensors[t];
    const auto exact = actual.tensors[t].tensor.to_vector();
    const auto f = got.to_vector();
    for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == static_cast<float>(exact[i]));
  }
}

TEST_CASE("a torch.nn state_dict saved by Python loads strictly into gkd tensors", "[io]") {
  gkd::NamedTensors<float> model{{"0.weight", gkd::Tensor<float>::zeros({4, 1, 3, 3})},
                                 {"0.bias", gkd::Tensor<float>::zeros({4})},
                                 {"1.weight", gkd::Tensor<float>::zeros({4})},
                                 {"1.bias", gkd::Tensor<float>::ones({4})},
                                 {"1.running_mean", gkd::Tensor<float>::zeros({4})},
                                 {"1.running_var", gkd::Tensor<float>::ones({4})},
                                 {"1.num_batches_tracked", gkd::Tensor<float>::zeros({})}};
  auto report = gkd::io::load_into(kFixtures / "python_state_dict.safetensors", model);
  CHECK(report.ok());
  CHECK(report.loaded.size() == 7);
  CHECK(model[6].tensor.item() == 1.f);                                          // I64 -> float
  CHECK(model[2].tensor.to_vector() == std::vector<float>{1, 1, 1, 1});          // BN weight init
  CHECK(model[3].tensor.to_vector() == std::vector<float>{0, 0, 0, 0});          // BN bias init
  for (float v : model[5].tensor.to_vector()) CHECK(v != 1.f);                   // running_var moved
}
