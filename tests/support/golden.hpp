// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reader for the golden files that tools/make_golden.py writes from PyTorch. Format, one tensor per
// two lines:
//   tensor <key> <float32|float64> <ndim> <d0> <d1> ...
//   <values as C99 hex floats, row-major, space separated>
// Hex floats round-trip exactly, so the files hold PyTorch's bits and regenerate byte for byte.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gkd/core/tensor.hpp"

namespace gkd::test {

class Golden {
  /// Built step by step: GCC 12 reports false -Warray-bounds/-Wstringop-overflow on a chain of + here.
  static std::string golden_path(const std::string& name) {
    std::string path = GKD_GOLDEN_DIR;
    path += '/';
    path += name;
    path += ".txt";
    return path;
  }

 public:
  /// Loads tests/golden/<name>.txt.
  explicit Golden(const std::string& name) : path_(golden_path(name)) {
    std::ifstream in(path_);
    if (!in) FAIL("golden file " << path_ << " is missing; run tools/make_golden.py");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream head(line);
      std::string word, key, dtype;
      std::size_t ndim = 0;
      head >> word >> key >> dtype >> ndim;
      if (word != "tensor") FAIL("malformed golden line in " << path_ << ": " << line);
      Entry e;
      e.dtype = dtype;
      e.shape.resize(ndim);
      for (auto& d : e.shape) head >> d;
      std::getline(in, line);
      std::istringstream body(line);
      std::string token;
      while (body >> token) e.values.push_back(std::strtod(token.c_str(), nullptr));
      if (static_cast<std::int64_t>(e.values.size()) != numel(e.shape))
        FAIL("golden tensor " << key << " in " << path_ << " has " << e.values.size() << " values for shape "
                              << to_string(e.shape));
      entries_[key] = std::move(e);
    }
  }

  /// The tensor stored under `key`, converted to T (exact for the dtype it was stored in).
  template <Real T>
  Tensor<T> get(const std::string& key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) FAIL("golden tensor " << key << " not found in " << path_);
    std::vector<T> values(it->second.values.begin(), it->second.values.end());
    return Tensor<T>::from(it->second.shape, values);
  }
  /// A scalar stored under `key`.
  double scalar(const std::string& key) const { return get<double>(key).item(); }
  bool has(const std::string& key) const { return entries_.count(key) != 0; }

 private:
  struct Entry {
    std::string dtype;
    Shape shape;
    std::vector<double> values;
  };
  std::string path_;
  std::map<std::string, Entry> entries_;
};

}  // namespace gkd::test

#include "support/check.hpp"

namespace gkd::test {

/// Replays a case written by Writer.case(): loads <name>.<dtype>.in*, runs `f`, compares the
/// output with .out and, after backward(.gout), each input gradient with .grad<i>.
/// Tolerance: 1e-10 in float64 and 1e-5 in float32 (relative, see require_close).
template <Real T, class F>
void check_golden_case(const Golden& golden, const std::string& name, F&& f, std::vector<bool> differentiate = {}) {
  const std::string tag = name + "." + std::string(dtype_name<T>());
  const double tol = std::is_same_v<T, double> ? 1e-10 : 1e-5;
  std::vector<Tensor<T>> inputs;
  for (int i = 0; golden.has(tag + ".in" + std::to_string(i)); ++i) {
    inputs.push_back(golden.get<T>(tag + ".in" + std::to_string(i)));
    const bool diff = differentiate.empty() || differentiate[static_cast<std::size_t>(i)];
    if (diff) inputs.back().requires_grad();
  }
  REQUIRE(!inputs.empty());
  Tensor<T> out = f(inputs);
  require_close(out, golden.get<T>(tag + ".out"), tol, tag + " forward");
  out.backward(golden.get<T>(tag + ".gout"));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string key = tag + ".grad" + std::to_string(i);
    if (golden.has(key)) require_close(inputs[i].grad(), golden.get<T>(key), tol, key);
  }
}

}  // namespace gkd::test
