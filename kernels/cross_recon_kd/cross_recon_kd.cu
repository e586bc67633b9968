// SPDX-License-Identifier: Apache-2.0
// DICD cross-reconstruction KL (declared in gkd/cuda/cross_recon_kd.hpp): one grid-stride pass over
// the pixels; each thread handles one pixel at a time with the per-pixel mathematics of
// gkd/losses/detail/cross_recon_tile.hpp (K classes at stride P: consecutive threads read consecutive
// addresses, so every class row is read coalesced exactly once for the loss and once more for the
// gradient, from L1/L2). Per-block loss partials through cub::BlockReduce, summed in a fixed order.
#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "gkd/cuda/cross_recon_kd.hpp"
#include "gkd/losses/detail/cross_recon_tile.hpp"
#include "pairwise_kd/pkd_check.hpp"

namespace gkd::cuda {
namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kMaxBlocks = 2048;

std::int64_t blocks_for(std::int64_t pixels_total) {
  return std::max<std::int64_t>(1, std::min<std::int64_t>((pixels_total + kThreads - 1) / kThreads, kMaxBlocks));
}

__global__ void __launch_bounds__(kThreads)
    cross_recon_kernel(const float* __restrict__ t, const float* __restrict__ x1, const float* __restrict__ x2,
                       std::int64_t classes, std::int64_t pixels, std::int64_t total, float inv_tau, float tau,
                       float tau_sq, float grad_scale, float* __restrict__ g1, float* __restrict__ g2,
                       double* __restrict__ partial) {
  double sum = 0;
  for (std::int64_t q = blockIdx.x * static_cast<std::int64_t>(kThreads) + threadIdx.x; q < total;
       q += static_cast<std::int64_t>(gridDim.x) * kThreads) {
    const std::int64_t at = (q / pixels) * classes * pixels + q % pixels;
    sum += gkd::detail::cross_recon_pixel<float, float, float>(t + at, x1 + at, x2 + at, classes, pixels, inv_tau, tau,
                                                               tau_sq, grad_scale, g1 ? g1 + at : nullptr,
                                                               g2 ? g2 + at : nullptr, pixels);
  }
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const double block_sum = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) partial[blockIdx.x] = block_sum;
}

__global__ void finalize_kernel(const double* __restrict__ partial, std::int64_t count, double scale, float* __restrict__ loss) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  double s = 0;
  for (std::int64_t i = threadIdx.x; i < count; i += kThreads) s += partial[i];
  const double total = Reduce(temp).Sum(s);
  if (threadIdx.x == 0) *loss = static_cast<float>(total * scale);
}

__global__ void scale_two_kernel(const float* __restrict__ factor, float* __restrict__ a, float* __restrict__ b,
                                 std::int64_t n) {
  const float f = *factor;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    if (a) a[i] *= f;
    if (b) b[i] *= f;
  }
}

void check_sizes(std::int64_t batch, std::int64_t classes, std::int64_t pixels) {
  GKD_CHECK(batch > 0 && classes > 0 && pixels > 0, "cross_recon_kd",
            "needs B, K and pixels > 0, got B " << batch << " K " << classes << " pixels " << pixels);
}

}  // namespace

std::size_t cross_recon_kd_workspace(std::int64_t batch, std::int64_t classes, std::int64_t pixels) {
  check_sizes(batch, classes, pixels);
  return sizeof(double) * static_cast<std::size_t>(blocks_for(batch * pixels));
}

void cross_recon_kd_forward(const float* teacher, const float* cross1, const float* cross2, std::int64_t batch,
                            std::int64_t classes, std::int64_t pixels, const CrossReconArgs& args, float* loss,
                            float* grad1, float* grad2, void* workspace, std::size_t workspace_bytes, void* stream) {
  constexpr const char* op = "cross_recon_kd";
  check_sizes(batch, classes, pixels);
  GKD_CHECK(args.temperature > 0 && std::isfinite(args.temperature), op,
            "temperature must be positive and finite, got " << args.temperature);
  GKD_CHECK(teacher != nullptr && cross1 != nullptr && cross2 != nullptr && loss != nullptr && workspace != nullptr, op,
            "teacher, cross1, cross2, loss and workspace must be device pointers, got a null one");
  const std::size_t need = cross_recon_kd_workspace(batch, classes, pixels);
  GKD_CHECK(workspace_bytes >= need, op, "workspace of " << workspace_bytes << " bytes is smaller than the " << need << " needed");
  const std::int64_t total = batch * pixels, blocks = blocks_for(total);
  const double tau = args.temperature, scale = args.mean ? 1.0 / double(total) : 1.0;
  const auto s = static_cast<cudaStream_t>(stream);
  auto* partial = static_cast<double*>(workspace);
  cross_recon_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(
      teacher, cross1, cross2, classes, pixels, total, static_cast<float>(1.0 / tau), static_cast<float>(tau),
      static_cast<float>(tau * tau), static_cast<float>(scale), grad1, grad2, partial);
  GKD_PKD_CHECK_LAUNCH("cross_recon_kernel");
  finalize_kernel<<<1, kThreads, 0, s>>>(partial, blocks, scale, loss);
  GKD_PKD_CHECK_LAUNCH("finalize_kernel");
}

void cross_recon_kd_backward(const float* grad_output, float* grad1, float* grad2, std::int64_t n, void* stream) {
  GKD_CHECK(n >= 0, "cross_recon_kd_backward", "n must be >= 0, got " << n);
  if (n == 0 || (grad1 == nullptr && grad2 == nullptr)) return;
  GKD_CHECK(grad_output != nullptr, "cross_recon_kd_backward", "grad_output is null");
  const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>((n + kThreads - 1) / kThreads, 4096));
  scale_two_kernel<<<blocks, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(grad_output, grad1, grad2, n);
  GKD_PKD_CHECK_LAUNCH("scale_two_kernel");
}

}  // namespace gkd::cuda
