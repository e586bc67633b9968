// SPDX-License-Identifier: Apache-2.0
// batch_norm2d through cuDNN against the CPU implementation, float32 and float64: training (batch
// statistics; the running mean and unbiased variance updated in place with the same momentum) and
// evaluation (running statistics), with and without weight/bias and running statistics; forward,
// input, weight and bias gradients; running statistics updated through strided views; errors.
#include <catch2/catch.hpp>

#include "compare.hpp"

using gkd::Tensor;
using gkd::test::random;
using gkd::test::require_close;
using gkd::test::require_gpu_matches_cpu;

namespace {

template <gkd::Real T>
struct Running {  // the same running statistics on both devices
  Tensor<T> mean_cpu, var_cpu, mean_gpu, var_gpu;
  Running(std::int64_t channels, std::uint64_t seed) {
    mean_cpu = random<T>({channels}, seed, T(0.5));
    var_cpu = (mean_cpu * mean_cpu + T(0.5)).detach();  // positive
    mean_gpu = mean_cpu.cuda();
    var_gpu = var_cpu.cuda();
    mean_cpu = mean_cpu.clone();
    var_cpu = var_cpu.clone();
  }
  const Tensor<T>& mean(const Tensor<T>& x) const { return x.device().is_cuda() ? mean_gpu : mean_cpu; }
  const Tensor<T>& var(const Tensor<T>& x) const { return x.device().is_cuda() ? var_gpu : var_cpu; }
};

template <gkd::Real T>
void check_mode(bool training, bool affine, double fwd_tol, double bwd_tol, double stat_tol, const std::string& type) {
  const std::vector<gkd::Shape> shapes = {{4, 3, 5, 6}, {8, 16, 9, 7}, {3, 5, 1, 1}, {1, 2, 4, 3}};
  std::uint64_t seed = 120;
  for (const auto& shape : shapes) {
    const std::int64_t channels = shape[1];
    const std::string name = type + (training ? " training " : " evaluation ") + (affine ? "affine " : "plain ") +
                             gkd::to_string(shape);
    Running<T> running(channels, seed++);
    const Tensor<T> x = (random<T>(shape, seed++, T(2)) + T(0.7)).detach();  // mean and scale off 0 and 1
    const double momentum = 0.3, eps = 1e-3;
    if (affine) {
      require_gpu_matches_cpu<T>(
          [&](const auto& in) {
            return gkd::batch_norm2d(in[0], in[1], in[2], running.mean(in[0]), running.var(in[0]), training, momentum,
                                     eps);
          },
          {x, random<T>({channels}, seed++), random<T>({channels}, seed++)}, fwd_tol, bwd_tol, name);
    } else {
      require_gpu_matches_cpu<T>(
          [&](const auto& in) {
            return gkd::batch_norm2d(in[0], Tensor<T>(), Tensor<T>(), running.mean(in[0]), running.var(in[0]),
                                     training, momentum, eps);
          },
          {x}, fwd_tol, bwd_tol, name);
    }
    // Training updated both copies of the running statistics once; evaluation left them alone.
    require_close(running.mean_gpu.cpu(), running.mean_cpu, stat_tol, name + " running_mean");
    require_close(running.var_gpu.cpu(), running.var_cpu, stat_tol, name + " running_var");
  }
}

}  // namespace

TEST_CASE("batch_norm2d training matches the CPU, running statistics included", "[cuda][norm]") {
  check_mode<float>(true, true, 1e-4, 5e-4, 5e-5, "float32");
  check_mode<float>(true, false, 1e-4, 5e-4, 5e-5, "float32");
  check_mode<double>(true, true, 1e-10, 1e-10, 1e-12, "float64");
  check_mode<double>(true, false, 1e-10, 1e-10, 1e-12, "float64");
}

TEST_CASE("batch_norm2d evaluation matches the CPU", "[cuda][norm]") {
  check_mode<float>(false, true, 1e-4, 1e-4, 0, "float32");
  check_mode<float>(false, false, 1e-4, 1e-4, 0, "float32");
  check_mode<double>(false, true, 1e-12, 1e-12, 0, "float64");
  check_mode<double>(false, false, 1e-12, 1e-12, 0, "float64");
}

TEST_CASE("batch_norm2d training without running statistics, or with only one", "[cuda][norm]") {
  const auto x = random<double>({3, 4, 5, 5}, 140);
  const auto w = random<double>({4}, 141), b = random<double>({4}, 142);
  require_gpu_matches_cpu<double>(
      [](const auto& in) { return gkd::batch_norm2d(in[0], in[1], in[2], Tensor<double>(), Tensor<double>(), true); },
      {x, w, b}, 1e-10, 1e-10, "no running statistics");
  const auto var_cpu = Tensor<double>::ones({4});
  const auto var_gpu = var_cpu.cuda();
  require_gpu_matches_cpu<double>(
      [&](const auto& in) {
        return gkd::batch_norm2d(in[0], in[1], in[2], Tensor<double>(),
                                 in[0].device().is_cuda() ? var_gpu : var_cpu, true, 0.2);
      },
      {x, w, b}, 1e-10, 1e-10, "running_var only");
  require_close(var_gpu.cpu(), var_cpu, 1e-12, "running_var only: the update");
}

TEST_CASE("batch_norm2d updates strided running statistics in place", "[cuda][norm]") {
  // Running mean and variance interleaved in one [2C] buffer: views with stride 2.
  const std::int64_t channels = 3;
  const auto stats_cpu = Tensor<float>::from({2 * channels}, {0.1f, 1.0f, -0.2f, 2.0f, 0.3f, 0.5f});
  const auto stats_gpu = stats_cpu.cuda();
  const auto x = random<float>({4, channels, 3, 3}, 143);
  const auto y_cpu = gkd::batch_norm2d(x, Tensor<float>(), Tensor<float>(), stats_cpu.slice(0, 0, 2 * channels, 2),
                                       stats_cpu.slice(0, 1, 2 * channels, 2), true, 0.25);
  const auto y_gpu = gkd::batch_norm2d(x.cuda(), Tensor<float>(), Tensor<float>(), stats_gpu.slice(0, 0, 2 * channels, 2),
                                       stats_gpu.slice(0, 1, 2 * channels, 2), true, 0.25);
  require_close(y_gpu.cpu(), y_cpu, 1e-4, "output");
  require_close(stats_gpu.cpu(), stats_cpu, 5e-5, "interleaved running statistics");
  REQUIRE(stats_cpu.to_vector()[1] != 1.0f);  // the CPU op did update them
}

TEST_CASE("batch_norm2d on the GPU rejects bad input like the CPU", "[cuda][norm]") {
  const auto x = random<float>({2, 3, 4, 4}, 150).cuda();
  const auto c3 = Tensor<float>::ones({3}).cuda();
  REQUIRE_THROWS_WITH(gkd::batch_norm2d(x, c3, c3, Tensor<float>(), Tensor<float>(), false),
                      Catch::Contains("running_mean"));
  REQUIRE_THROWS_WITH(gkd::batch_norm2d(x, Tensor<float>::ones({4}).cuda(), c3, c3, c3, true),
                      Catch::Contains("does not match"));
  REQUIRE_THROWS_WITH(gkd::batch_norm2d(random<float>({1, 3, 1, 1}, 151).cuda(), c3, c3, c3, c3, true),
                      Catch::Contains("more than 1 value"));
  REQUIRE_THROWS(gkd::batch_norm2d(x, Tensor<float>::ones({3}), c3, c3, c3, true));  // weight on the host
  REQUIRE_THROWS(gkd::batch_norm2d(random<float>({3, 4, 4}, 152).cuda(), c3, c3, c3, c3, true));
}

TEST_CASE("batch_norm2d with a fused ReLU or ReLU6 matches the CPU's fused op", "[cuda][norm]") {
  // float64, so that no value lies close enough to a kink for the two devices to disagree on its side.
  const Tensor<double> x = (random<double>({4, 3, 5, 6}, 300, 2.0) + 0.7).detach();
  const Tensor<double> w = random<double>({3}, 301, 5.0), b = random<double>({3}, 302);  // outputs past 6
  for (const auto act : {gkd::FusedActivation::ReLU, gkd::FusedActivation::ReLU6}) {
    for (const bool training : {true, false}) {
      Running<double> running(3, 303);
      require_gpu_matches_cpu<double>(
          [&](const auto& in) {
            return gkd::batch_norm2d(in[0], in[1], in[2], running.mean(in[0]), running.var(in[0]), training, 0.1, 1e-5,
                                     act);
          },
          {x, w, b}, 1e-10, 1e-10, std::string(training ? "training " : "evaluation ") + std::to_string(int(act)));
    }
  }
}
