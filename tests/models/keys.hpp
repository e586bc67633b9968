// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers for the width-1 key and count tests: tests/golden/models_keys.txt holds, per network, the
// PyTorch parameter count and every state_dict key with its shape.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "gkd/models/models.hpp"
#include "support/check.hpp"

namespace gkd::test {

struct NetKeys {
  std::int64_t count = 0;
  std::vector<std::pair<std::string, Shape>> keys;
};

inline std::map<std::string, NetKeys> load_keys() {
  std::ifstream in(std::string(GKD_GOLDEN_DIR) + "/models_keys.txt");
  REQUIRE(in);
  std::map<std::string, NetKeys> nets;
  std::string line, current;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string kind, name;
    words >> kind >> name;
    if (kind == "net") {
      current = name;
      words >> nets[current].count;
    } else {
      Shape shape;
      std::int64_t d = 0;
      while (words >> d) shape.push_back(d);
      nets[current].keys.emplace_back(name, shape);
    }
  }
  return nets;
}

template <nn::Module M>
void require_keys(M& net, const NetKeys& expected) {
  const auto state = nn::state_dict(net);
  REQUIRE(state.size() == expected.keys.size());
  for (std::size_t i = 0; i < state.size(); ++i) {
    INFO("key " << i << ": " << state[i].name << " vs " << expected.keys[i].first);
    REQUIRE(state[i].name == expected.keys[i].first);
    REQUIRE(state[i].tensor.shape() == expected.keys[i].second);
  }
  REQUIRE(nn::parameter_count(net) == expected.count);
}

/// method.md's figure: the count in millions rounded to two decimals (or exactly, for small ones).
inline void require_millions(std::int64_t count, double millions) {
  INFO("count " << count);
  REQUIRE(std::round(static_cast<double>(count) / 1e4) / 100 == Approx(millions).margin(1e-9));
}

inline auto& model_keys() {
  static const auto keys = load_keys();
  return keys;
}

}  // namespace gkd::test
