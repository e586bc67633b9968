// SPDX-License-Identifier: Apache-2.0
// P-SAE LatentNet (width 1/16, 2x1x32x32) and the MSAN alignment networks (TAN on a 32x4x4
// bottleneck, SAN on a 160x2x2 one) against PyTorch, in float64 and float32.
#include "gkd/models/msan.hpp"
#include "models/parity.hpp"

using namespace gkd;
using namespace gkd::models;

namespace {
template <Real T>
using Taps = std::vector<std::pair<std::string, Tensor<T>>>;
template <Real T>
struct AlignmentOutput {
  Tensor<T> logits, z;
};

template <Real T>
void check_latent() {
  Generator gen(1);
  LatentNet<T> net({.width = 1.0 / 16}, gen);
  test::require_parity(
      net, "latent_net", {2, 1, 32, 32},
      [](auto& n, const Tensor<T>& x) {
        auto o = n.forward(x);
        return AlignmentOutput<T>{o.reconstruction, o.c4};
      },
      [](auto& o) { return Taps<T>{{"c4", o.z}}; });
}
template <Real T>
void check_tan() {
  Generator gen(1);
  TeacherAlignment<T> net({.channels = 32, .height = 4, .width = 4}, gen);
  test::require_parity(
      net, "teacher_alignment", {2, 32, 4, 4},
      [](auto& n, const Tensor<T>& x) {
        auto z = n.encode(x);
        return AlignmentOutput<T>{n.header(z), z};
      },
      [](auto& o) { return Taps<T>{{"z", o.z}}; });
}
template <Real T>
void check_san() {
  Generator gen(1);
  StudentAlignment<T> net({.channels = 160, .height = 2, .width = 2, .latent = 32}, gen);
  test::require_parity(
      net, "student_alignment", {2, 160, 2, 2},
      [](auto& n, const Tensor<T>& x) {
        auto z = n.encode(x);
        return AlignmentOutput<T>{n.header(z), z};
      },
      [](auto& o) { return Taps<T>{{"z", o.z}}; });
}
}  // namespace

TEST_CASE("LatentNet matches PyTorch in float64", "[models][parity]") { check_latent<double>(); }
TEST_CASE("LatentNet matches PyTorch in float32", "[models][parity]") { check_latent<float>(); }
TEST_CASE("TeacherAlignment matches PyTorch in float64", "[models][parity]") { check_tan<double>(); }
TEST_CASE("TeacherAlignment matches PyTorch in float32", "[models][parity]") { check_tan<float>(); }
TEST_CASE("StudentAlignment matches PyTorch in float64", "[models][parity]") { check_san<double>(); }
TEST_CASE("StudentAlignment matches PyTorch in float32", "[models][parity]") { check_san<float>(); }
