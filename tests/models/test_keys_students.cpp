// SPDX-License-Identifier: Apache-2.0
// MobileNetV2UNet, ENet, ERFNet and the MSAN networks at width 1 (instantiated for counting only, never
// run): the parameter count equals the exact count of the PyTorch definition (tools/golden/models.py) and
// method.md's rounded figure, and the state_dict keys (names, order, shapes) equal PyTorch's.
#include "gkd/models/models.hpp"
#include "models/keys.hpp"

using namespace gkd;
using namespace gkd::models;
using namespace gkd::test;

TEST_CASE("MobileNetV2UNet: 4,682,323 = 4.68 M effective", "[models]") {
  Generator gen(0);
  MobileNetV2UNet<float> net({}, gen);
  require_keys(net, model_keys().at("mobilenet_v2_unet"));
  REQUIRE(nn::parameter_count(net) == 4682323);
  require_millions(nn::parameter_count(net), 4.68);
}

TEST_CASE("ENet: 348,996 = 0.35 M", "[models]") {
  Generator gen(0);
  ENet<float> net({}, gen);
  require_keys(net, model_keys().at("enet"));
  REQUIRE(nn::parameter_count(net) == 348996);
  require_millions(nn::parameter_count(net), 0.35);
}

TEST_CASE("ERFNet: 2,063,130 = 2.06 M", "[models]") {
  Generator gen(0);
  ERFNet<float> net({}, gen);
  require_keys(net, model_keys().at("erfnet"));
  REQUIRE(nn::parameter_count(net) == 2063130);
  require_millions(nn::parameter_count(net), 2.06);
}

TEST_CASE("MSAN vector bottleneck: 33,281, TAN = bottleneck + BN(512), SAN", "[models]") {
  Generator gen(0);
  VectorBottleneck<float> mlp({}, gen);
  REQUIRE(nn::parameter_count(mlp) == 33281);
  TeacherAlignment<float> tan({}, gen);
  require_keys(tan, model_keys().at("teacher_alignment"));
  REQUIRE(nn::parameter_count(tan) == 33281 + 2 * 512);
  StudentAlignment<float> san({.channels = 1280, .height = 4, .width = 4}, gen);
  require_keys(san, model_keys().at("student_alignment"));
}

TEST_CASE("MobileNetV2UNet initialises conv weights N(0, sqrt(2 / (k k out))), biases 0, BN 1/0", "[models]") {
  Generator gen(0);
  MobileNetV2UNet<double> net({.width = 0.5}, gen);
  const auto& w = net.invres1.project.weight;  // 1x1, out channels 48
  double s = 0, q = 0;
  for (double v : w.to_vector()) s += v, q += v * v;
  const double n = static_cast<double>(w.numel());
  REQUIRE(std::sqrt(q / n - (s / n) * (s / n)) == Approx(std::sqrt(2.0 / 48)).epsilon(0.05));
  for (double v : net.dconv1.bias.to_vector()) REQUIRE(v == 0);
  for (double v : net.invres1.project_bn.weight.to_vector()) REQUIRE(v == 1);
}
