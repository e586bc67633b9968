// SPDX-License-Identifier: Apache-2.0
// Every network at width 1 (instantiated for counting only, never run): its parameter count equals
// the exact count of the PyTorch definition and method.md's rounded figure, and its state_dict keys
// (names, order, shapes) equal PyTorch's, from tests/golden/models_keys.txt.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "gkd/models/models.hpp"
#include "support/check.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {

struct NetKeys {
  std::int64_t count = 0;
  std::vector<std::pair<std::string, Shape>> keys;
};

std::map<std::string, NetKeys> load_keys() {
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
void require_millions(std::int64_t count, double millions) {
  INFO("count " << count);
  REQUIRE(std::round(static_cast<double>(count) / 1e4) / 100 == Approx(millions).margin(1e-9));
}

}  // namespace

TEST_CASE("width-1 networks have PyTorch's state_dict keys and method.md's parameter counts", "[models]") {
  const auto nets = load_keys();
  Generator gen(0);
  SECTION("UnetSKA2: 38,292,295 = 38.29 M") {
    UnetSKA2<float> net({}, gen);
    require_keys(net, nets.at("unet_ska2"));
    REQUIRE(nn::parameter_count(net) == 38292295);
    require_millions(nn::parameter_count(net), 38.29);
  }
  SECTION("MobileNetV2UNet: 4,682,323 = 4.68 M effective") {
    MobileNetV2UNet<float> net({}, gen);
    require_keys(net, nets.at("mobilenet_v2_unet"));
    REQUIRE(nn::parameter_count(net) == 4682323);
    require_millions(nn::parameter_count(net), 4.68);
  }
  SECTION("ENet: 348,996 = 0.35 M") {
    ENet<float> net({}, gen);
    require_keys(net, nets.at("enet"));
    REQUIRE(nn::parameter_count(net) == 348996);
    require_millions(nn::parameter_count(net), 0.35);
  }
  SECTION("ERFNet: 2,063,130 = 2.06 M") {
    ERFNet<float> net({}, gen);
    require_keys(net, nets.at("erfnet"));
    REQUIRE(nn::parameter_count(net) == 2063130);
    require_millions(nn::parameter_count(net), 2.06);
  }
  SECTION("UNet: 31,042,434 = 31.04 M") {
    UNet<float> net({}, gen);
    require_keys(net, nets.at("unet"));
    REQUIRE(nn::parameter_count(net) == 31042434);
    require_millions(nn::parameter_count(net), 31.04);
  }
  SECTION("LatentNet: 26,828,353 = 26.83 M used") {
    LatentNet<float> net({}, gen);
    require_keys(net, nets.at("latent_net"));
    REQUIRE(nn::parameter_count(net) == 26828353);
    require_millions(nn::parameter_count(net), 26.83);
  }
  SECTION("MSAN vector bottleneck: 33,281; TAN = bottleneck + BN(512); SAN") {
    VectorBottleneck<float> mlp({}, gen);
    REQUIRE(nn::parameter_count(mlp) == 33281);
    TeacherAlignment<float> tan({}, gen);
    require_keys(tan, nets.at("teacher_alignment"));
    REQUIRE(nn::parameter_count(tan) == 33281 + 2 * 512);
    StudentAlignment<float> san({.channels = 1280, .height = 4, .width = 4}, gen);
    require_keys(san, nets.at("student_alignment"));
  }
}

TEST_CASE("width multipliers scale channels with a minimum of one", "[models]") {
  REQUIRE(nn::scaled(64, 1.0) == 64);
  REQUIRE(nn::scaled(64, 1.0 / 16) == 4);
  REQUIRE(nn::scaled(24, 1.0 / 8) == 3);
  REQUIRE(nn::scaled(16, 1.0 / 64) == 1);
  REQUIRE_THROWS_WITH(nn::scaled(16, 0.0), Catch::Contains("width multiplier must be positive"));
}

TEST_CASE("networks initialise as the official code", "[models]") {
  Generator gen(3);
  SECTION("MobileNetV2UNet: conv weights N(0, sqrt(2 / (k k out))), biases 0, BN 1/0") {
    MobileNetV2UNet<double> net({.width = 0.5}, gen);
    const auto& w = net.invres1.project.weight;  // 1x1, out channels 48
    double s = 0, q = 0;
    for (double v : w.to_vector()) s += v, q += v * v;
    const double n = static_cast<double>(w.numel());
    REQUIRE(std::sqrt(q / n - (s / n) * (s / n)) == Approx(std::sqrt(2.0 / 48)).epsilon(0.05));
    for (double v : net.dconv1.bias.to_vector()) REQUIRE(v == 0);
    for (double v : net.invres1.project_bn.weight.to_vector()) REQUIRE(v == 1);
  }
  SECTION("UnetSKA2: Xavier-uniform conv weights") {
    UnetSKA2<double> net({.width = 0.25}, gen);
    const auto& w = net.conv4.conv.template get<0>().conv3.template get<0>().weight;  // [128, 128, 1, 1]
    const double bound = std::sqrt(6.0 / (128 + 128));
    double lo = 0, hi = 0;
    for (double v : w.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
    REQUIRE(hi <= bound);
    REQUIRE(lo >= -bound);
    REQUIRE(hi > 0.9 * bound);
  }
}
