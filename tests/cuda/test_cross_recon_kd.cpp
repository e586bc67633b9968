// SPDX-License-Identifier: Apache-2.0
// CUDA DICD cross-reconstruction KL against the CPU op (double, same float inputs): loss and both
// gradients for K = 1, 2, 5, single pixels, pixel counts that are not multiples of the block, large
// logits; backward scaling; argument errors. The kernel computes in float (exp, log of centred
// logits): 1e-5 relative on the loss, 1e-4 relative L2 on the gradients (2e-4 at τ = 0.25, where the
// logits / τ are 4x larger).
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "gkd/cuda/cross_recon_kd.hpp"
#include "gkd/losses/cross_recon_kd.hpp"
#include "support/device_buffer.hpp"

using gkd::test::DeviceBuffer;
using gkd::test::random_floats;
using gkd::test::relative_l2;

TEST_CASE("CUDA cross_recon_kd equals the CPU op", "[cuda][cross_recon_kd]") {
  struct Case {
    std::int64_t b, k, p;
    double scale;
  };
  std::uint64_t seed = 5000;
  for (const Case c : {Case{1, 1, 1, 3.0}, Case{1, 2, 1, 3.0}, Case{2, 2, 1000, 3.0}, Case{3, 5, 4097, 2.0},
                       Case{16, 2, 128 * 128, 4.0}, Case{2, 3, 333, 1e4}}) {
    for (double tau : {0.25, 1.0, 4.0}) {
      for (bool mean : {true, false}) {
        INFO("B " << c.b << " K " << c.k << " P " << c.p << " scale " << c.scale << " tau " << tau << " mean " << mean);
        const std::int64_t n = c.b * c.k * c.p;
        const auto t = random_floats(n, ++seed, c.scale), x1 = random_floats(n, ++seed, c.scale),
                   x2 = random_floats(n, ++seed, c.scale);
        const std::vector<double> t64(t.begin(), t.end()), a64(x1.begin(), x1.end()), b64(x2.begin(), x2.end());
        std::vector<double> g1(static_cast<std::size_t>(n)), g2(static_cast<std::size_t>(n));
        const gkd::CrossReconKdOptions o{.temperature = tau, .reduction = mean ? gkd::Reduction::Mean : gkd::Reduction::Sum};
        const double ref = gkd::cross_recon_kd_raw(t64.data(), a64.data(), b64.data(), c.b, c.k, c.p, o, g1.data(), g2.data());
        DeviceBuffer<float> dt(t), d1(x1), d2(x2), loss(1), dg1(static_cast<std::size_t>(n)), dg2(static_cast<std::size_t>(n));
        const std::size_t bytes = gkd::cuda::cross_recon_kd_workspace(c.b, c.k, c.p);
        DeviceBuffer<char> ws(bytes);
        gkd::cuda::cross_recon_kd_forward(dt.ptr, d1.ptr, d2.ptr, c.b, c.k, c.p, {.temperature = tau, .mean = mean}, loss.ptr,
                                          dg1.ptr, dg2.ptr, ws.ptr, bytes);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
        const float l = loss.download(1)[0];
        INFO("loss gpu " << l << " cpu " << ref);
        REQUIRE(std::isfinite(l));
        // large logits: the loss is a difference of terms of size |logit| / τ, rounded in float
        const double loss_tol = c.scale > 100 ? 1e-4 : 1e-5;
        REQUIRE(std::abs(l - ref) <= loss_tol * std::abs(ref) + 1e-6);
        const double gtol = tau < 0.5 ? 2e-4 : 1e-4;
        REQUIRE(relative_l2(dg1.download(static_cast<std::size_t>(n)), g1) <= gtol);
        REQUIRE(relative_l2(dg2.download(static_cast<std::size_t>(n)), g2) <= gtol);
      }
    }
  }
}

TEST_CASE("CUDA cross_recon_kd backward scales both gradients", "[cuda][cross_recon_kd]") {
  const std::vector<float> a{1.f, 2.f, -3.f}, b{4.f, -5.f, 6.f};
  DeviceBuffer<float> da(a), db(b), factor(std::vector<float>{2.f});
  gkd::cuda::cross_recon_kd_backward(factor.ptr, da.ptr, db.ptr, 3);
  gkd::cuda::cross_recon_kd_backward(factor.ptr, nullptr, db.ptr, 3);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  const auto ra = da.download(3), rb = db.download(3);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(ra[i] == 2.f * a[i]);
    REQUIRE(rb[i] == 4.f * b[i]);
  }
}

TEST_CASE("CUDA cross_recon_kd rejects bad arguments", "[cuda][cross_recon_kd]") {
  DeviceBuffer<float> x(8), loss(1);
  const std::size_t bytes = gkd::cuda::cross_recon_kd_workspace(1, 2, 4);
  DeviceBuffer<char> ws(bytes);
  REQUIRE_THROWS_AS(gkd::cuda::cross_recon_kd_workspace(0, 2, 4), gkd::Error);
  REQUIRE_THROWS_AS(gkd::cuda::cross_recon_kd_forward(x.ptr, x.ptr, x.ptr, 1, 2, 4, {.temperature = -1.0}, loss.ptr, nullptr,
                                                      nullptr, ws.ptr, bytes),
                    gkd::Error);
  REQUIRE_THROWS_AS(gkd::cuda::cross_recon_kd_forward(x.ptr, x.ptr, x.ptr, 1, 2, 4, {}, loss.ptr, nullptr, nullptr, ws.ptr, 0),
                    gkd::Error);
  REQUIRE_THROWS_WITH(gkd::cuda::cross_recon_kd_forward(nullptr, x.ptr, x.ptr, 1, 2, 4, {}, loss.ptr, nullptr, nullptr, ws.ptr,
                                                        bytes),
                      Catch::Contains("cross_recon_kd"));
}
