// SPDX-License-Identifier: Apache-2.0
// The fused distillation losses as standalone CUDA kernels on raw device pointers, for code that only
// wants the kernels (no gkd tensors, no autodiff): a DCGD-style full graph over 4096 pixel features
// (gkd/cuda/graph_kd.hpp: loss and student gradient in one call), SKD on the same features
// (gkd/cuda/pairwise_kd.hpp) and DICD on logits (gkd/cuda/cross_recon_kd.hpp). Every call queues its
// work on one stream and returns; the host synchronises once before reading the losses.
//
//   build/examples/gkd_example_cuda_distillation_kernels
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "gkd/cuda/cross_recon_kd.hpp"
#include "gkd/cuda/graph_kd.hpp"
#include "gkd/cuda/pairwise_kd.hpp"
#include "gkd/cuda/runtime.hpp"

namespace {

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(status));
  std::exit(1);
}

/// n floats on the device, filled with N(0, 1) values from `rng` (or left uninitialised).
float* device_floats(std::size_t n, std::mt19937* rng = nullptr) {
  float* p = nullptr;
  check(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc");
  if (rng) {
    std::normal_distribution<float> normal;
    std::vector<float> host(n);
    for (float& v : host) v = normal(*rng);
    check(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  return p;
}

}  // namespace

int main() {
  if (!gkd::cuda::available()) {
    std::printf("no GPU: %s\n", gkd::cuda::unavailable_reason().c_str());
    return 0;
  }
  std::printf("%s\n", gkd::cuda::describe_device(0).c_str());
  std::mt19937 rng(0);
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  constexpr std::int64_t n = 4096, cs = 128, ct = 256;
  float* student = device_floats(n * cs, &rng);
  float* teacher = device_floats(n * ct, &rng);
  float* grad = device_floats(n * cs);      // d graph KL / d student
  float* skd_grad = device_floats(n * cs);  // d SKD / d student
  float* losses = device_floats(3);

  // 1. Graph KL over one full graph: per-row losses, row log-sum-exps, the mean loss and d loss / d student.
  gkd::cuda::GraphKDConfig graph;
  graph.n = n;
  graph.student_channels = cs;
  graph.teacher_channels = ct;
  graph.temperature = 0.5f;
  const gkd::cuda::GraphKDForward forward(graph);  // validates; Auto picks the Panels schedule here
  float* rows = device_floats(n);
  float* lse = device_floats(forward.row_lse_count());
  void* workspace = nullptr;
  check(cudaMalloc(&workspace, forward.gradient_workspace_bytes()), "cudaMalloc");
  forward.run_with_gradient(student, teacher, rows, lse, losses + 0, grad, workspace, stream);

  // 2. SKD similarity MSE on the same features (one image of 4096 pixels): loss and gradient in one call.
  const gkd::cuda::PairwiseShape shape{.batch = 1, .nodes = n, .cs = cs, .ct = ct};
  const gkd::cuda::PairwiseArgs args{};
  const std::size_t skd_bytes = gkd::cuda::similarity_mse_workspace(shape, args);
  void* skd_workspace = nullptr;
  check(cudaMalloc(&skd_workspace, skd_bytes), "cudaMalloc");
  gkd::cuda::similarity_mse_forward(student, teacher, shape, args, losses + 1, skd_grad, skd_workspace, skd_bytes,
                                    stream);

  // 3. DICD: teacher logits against two cross predictions, [B = 8, K = 2, 64 × 64].
  constexpr std::int64_t batch = 8, classes = 2, pixels = 64 * 64;
  float* t_logits = device_floats(batch * classes * pixels, &rng);
  float* cross1 = device_floats(batch * classes * pixels, &rng);
  float* cross2 = device_floats(batch * classes * pixels, &rng);
  float* grad1 = device_floats(batch * classes * pixels);
  float* grad2 = device_floats(batch * classes * pixels);
  const std::size_t dicd_bytes = gkd::cuda::cross_recon_kd_workspace(batch, classes, pixels);
  void* dicd_workspace = nullptr;
  check(cudaMalloc(&dicd_workspace, dicd_bytes), "cudaMalloc");
  gkd::cuda::cross_recon_kd_forward(t_logits, cross1, cross2, batch, classes, pixels, {.temperature = 4.0}, losses + 2,
                                    grad1, grad2, dicd_workspace, dicd_bytes, stream);

  float host[3] = {};
  check(cudaMemcpyAsync(host, losses, sizeof host, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::printf("graph KL %.6f   SKD %.6f   DICD %.6f\n", double(host[0]), double(host[1]), double(host[2]));
  for (void* p : {static_cast<void*>(student), static_cast<void*>(teacher), static_cast<void*>(grad),
                  static_cast<void*>(skd_grad), static_cast<void*>(losses), static_cast<void*>(rows), static_cast<void*>(lse), workspace, skd_workspace,
                  static_cast<void*>(t_logits), static_cast<void*>(cross1), static_cast<void*>(cross2),
                  static_cast<void*>(grad1), static_cast<void*>(grad2), dicd_workspace})
    check(cudaFree(p), "cudaFree");
  check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  return 0;
}
