// SPDX-License-Identifier: Apache-2.0
// Fused multi-tensor SGD and Adam/AdamW updates, and the multi-tensor gradient norm and scale of
// clip_grad_norm. One block per chunk of one tensor (see optim/multi_tensor.hpp). Every product,
// sum, quotient and square root is an explicitly rounded intrinsic, so nvcc cannot contract or
// approximate anything and each element follows the CPU optimizer's rounding step by step.
#include <cub/block/block_reduce.cuh>

#include "check.hpp"
#include "gkd/cuda/optim.hpp"
#include "optim/multi_tensor.hpp"

namespace gkd::cuda {
namespace {

using multi_tensor::Chunk;
using multi_tensor::kChunk;
using multi_tensor::kThreads;

// ---- correctly rounded arithmetic ----------------------------------------------------------------

__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float add(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ inline double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ inline float quotient(float a, float b) { return __fdiv_rn(a, b); }
__device__ inline double quotient(double a, double b) { return __ddiv_rn(a, b); }
__device__ inline float root(float a) { return __fsqrt_rn(a); }
__device__ inline double root(double a) { return __dsqrt_rn(a); }
__device__ inline float fused(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ inline double fused(double a, double b, double c) { return __fma_rn(a, b, c); }

/// a * b + c rounded once (fused) or twice, as detail::fmadd on the host that built the launch.
template <class T>
__device__ inline T fmadd(T a, T b, T c, bool fuse) {
  return fuse ? fused(a, b, c) : add(mul(a, b), c);
}

/// The element range [begin, end) of `chunk` in a tensor of `numel` elements.
struct Range {
  std::int64_t begin, end;
};
__device__ inline Range chunk_range(const Chunk& chunk, std::int64_t numel) {
  const std::int64_t begin = static_cast<std::int64_t>(chunk.index) * kChunk;
  return {begin, begin + kChunk < numel ? begin + kChunk : numel};
}

// ---- SGD ------------------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(const SGDTensor<T>* tensors, const Chunk* chunks, SGDGroup<T> g) {
  const Chunk chunk = chunks[blockIdx.x];
  const SGDTensor<T> t = tensors[chunk.tensor];
  const Range r = chunk_range(chunk, t.numel);
  for (std::int64_t i = r.begin + threadIdx.x; i < r.end; i += blockDim.x) {
    const T grad = t.grad[i];
    const T gi = g.maximize ? -grad : grad;
    const T p = t.param[i];
    const T d = g.decay ? fmadd(p, g.weight_decay, gi, g.fused_multiply_add) : gi;
    if (!g.use_momentum) {
      t.param[i] = fmadd(d, g.neg_lr, p, g.fused_multiply_add);
      continue;
    }
    const T b = t.first ? d : fmadd(d, g.keep, mul(t.momentum_buffer[i], g.momentum), g.fused_multiply_add);
    t.momentum_buffer[i] = b;
    const T direction = g.nesterov ? fmadd(b, g.momentum, d, g.fused_multiply_add) : b;
    t.param[i] = fmadd(direction, g.neg_lr, p, g.fused_multiply_add);
  }
}

// ---- Adam / AdamW ---------------------------------------------------------------------------------

template <class T>
__global__ void __launch_bounds__(kThreads)
    adam_kernel(const AdamTensor<T>* tensors, const Chunk* chunks, AdamGroup<T> g) {
  const Chunk chunk = chunks[blockIdx.x];
  const AdamTensor<T> t = tensors[chunk.tensor];
  const Range r = chunk_range(chunk, t.numel);
  const bool fuse = g.fused_multiply_add;
  for (std::int64_t i = r.begin + threadIdx.x; i < r.end; i += blockDim.x) {
    const T grad = t.grad[i];
    T gi = g.maximize ? -grad : grad;
    T pi = t.param[i];
    if (g.decay) {
      if (g.decoupled) {
        pi = mul(pi, g.shrink);
      } else {
        gi = fmadd(pi, g.weight_decay, gi, fuse);
      }
    }
    // lerp as ATen: a weight below 0.5 interpolates from exp_avg, otherwise from the gradient
    const T m_old = t.exp_avg[i];
    const T diff = sub(gi, m_old);
    const T m = g.small_weight ? fmadd(g.weight1, diff, m_old, fuse) : fmadd(sub(g.weight1, T(1)), diff, gi, fuse);
    t.exp_avg[i] = m;
    const T v = fmadd(mul(g.one_minus_beta2, gi), gi, mul(t.exp_avg_sq[i], g.beta2), fuse);
    t.exp_avg_sq[i] = v;
    T second = v;
    if (t.max_exp_avg_sq != nullptr) {
      T v_max = t.max_exp_avg_sq[i];
      if (!(v_max >= second)) v_max = second;  // torch.maximum: NaN propagates
      t.max_exp_avg_sq[i] = v_max;
      second = v_max;
    }
    const T denom = add(quotient(root(second), t.bias_correction2_sqrt), g.eps);
    t.param[i] = add(pi, quotient(mul(t.neg_step_size, m), denom));
  }
}

// ---- gradient norm and scale ----------------------------------------------------------------------

enum class NormKind { Max, One, Two, Other };

NormKind norm_kind(double p) {
  if (std::isinf(p)) return NormKind::Max;
  if (p == 1) return NormKind::One;
  if (p == 2) return NormKind::Two;
  return NormKind::Other;
}

/// Combines two partial accumulations: the NaN-propagating max for the max norm, else the sum.
struct Combine {
  NormKind kind;
  __device__ double operator()(double a, double b) const {
    if (kind == NormKind::Max) return (isnan(a) || a > b) ? a : b;
    return a + b;
  }
};

/// One element's contribution to an accumulation.
__device__ inline double contribution(double v, NormKind kind, double p) {
  switch (kind) {
    case NormKind::Two: return v * v;
    case NormKind::Other: return pow(fabs(v), p);
    default: return fabs(v);
  }
}

/// The norm from a finished accumulation.
__device__ inline double finish(double acc, NormKind kind, double p) {
  if (kind == NormKind::Two) return sqrt(acc);
  if (kind == NormKind::Other) return pow(acc, 1 / p);
  return acc;
}

/// partial[b] = accumulation over chunk b (block reduce of per-thread accumulations).
template <class T>
__global__ void __launch_bounds__(kThreads)
    norm_partial_kernel(const GradSpan<T>* tensors, const Chunk* chunks, NormKind kind, double p, double* partial) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const Chunk chunk = chunks[blockIdx.x];
  const GradSpan<T> t = tensors[chunk.tensor];
  const Range r = chunk_range(chunk, t.numel);
  const Combine combine{kind};
  double acc = 0;
  for (std::int64_t i = r.begin + threadIdx.x; i < r.end; i += blockDim.x)
    acc = combine(acc, contribution(static_cast<double>(t.data[i]), kind, p));
  const double total = Reduce(temp).Reduce(acc, combine);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

/// *out = the norm of the per-tensor norms (each rounded to T), rounded to T (one block).
template <class T>
__global__ void __launch_bounds__(kThreads)
    norm_finish_kernel(const double* partial, const std::int64_t* first_chunk, std::int64_t n, NormKind kind, double p,
                       double* out) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const Combine combine{kind};
  double acc = 0;
  for (std::int64_t t = threadIdx.x; t < n; t += blockDim.x) {
    double tensor_acc = 0;
    for (std::int64_t c = first_chunk[t]; c < first_chunk[t + 1]; ++c) tensor_acc = combine(tensor_acc, partial[c]);
    const T tensor_norm = static_cast<T>(finish(tensor_acc, kind, p));
    acc = combine(acc, contribution(static_cast<double>(tensor_norm), kind, p));
  }
  const double total = Reduce(temp).Reduce(acc, combine);
  if (threadIdx.x == 0) *out = static_cast<double>(static_cast<T>(finish(total, kind, p)));
}

template <class T>
__global__ void __launch_bounds__(kThreads) scale_kernel(const GradSpan<T>* tensors, const Chunk* chunks, T coef) {
  const Chunk chunk = chunks[blockIdx.x];
  const GradSpan<T> t = tensors[chunk.tensor];
  const Range r = chunk_range(chunk, t.numel);
  for (std::int64_t i = r.begin + threadIdx.x; i < r.end; i += blockDim.x) t.data[i] = mul(t.data[i], coef);
}

template <class T>
__global__ void __launch_bounds__(kThreads) clamp_kernel(const GradSpan<T>* tensors, const Chunk* chunks, T hi) {
  const Chunk chunk = chunks[blockIdx.x];
  const GradSpan<T> t = tensors[chunk.tensor];
  const Range r = chunk_range(chunk, t.numel);
  const T lo = -hi;
  for (std::int64_t i = r.begin + threadIdx.x; i < r.end; i += blockDim.x) {
    const T v = t.data[i];
    t.data[i] = v < lo ? lo : (hi < v ? hi : v);  // std::clamp(v, lo, hi)
  }
}

}  // namespace

// ---- launchers ------------------------------------------------------------------------------------

template <Real T>
void sgd_step(const std::vector<SGDTensor<T>>& tensors, const SGDGroup<T>& group, int device) {
  if (tensors.empty()) return;
  const multi_tensor::Tables<SGDTensor<T>> tables(tensors, device);
  if (tables.num_chunks() == 0) return;
  sgd_kernel<T><<<static_cast<unsigned>(tables.num_chunks()), kThreads>>>(tables.entries(), tables.chunks(), group);
  GKD_CUDA_CHECK_LAUNCH(sgd_kernel);
}

template <Real T>
void adam_step(const std::vector<AdamTensor<T>>& tensors, const AdamGroup<T>& group, int device) {
  if (tensors.empty()) return;
  const multi_tensor::Tables<AdamTensor<T>> tables(tensors, device);
  if (tables.num_chunks() == 0) return;
  adam_kernel<T><<<static_cast<unsigned>(tables.num_chunks()), kThreads>>>(tables.entries(), tables.chunks(), group);
  GKD_CUDA_CHECK_LAUNCH(adam_kernel);
}

template <Real T>
T grad_norm(const std::vector<GradSpan<T>>& tensors, double norm_type, int device) {
  GKD_CHECK(norm_type > 0, "clip_grad_norm", "norm_type must be positive (or infinity), got " << norm_type);
  GKD_CHECK(!tensors.empty(), "clip_grad_norm", "no gradients to measure");
  const NormKind kind = norm_kind(norm_type);
  const multi_tensor::Tables<GradSpan<T>> tables(tensors, device);
  // out[0]: the total; out[1 + b]: chunk b's partial accumulation
  double* out = static_cast<double*>(allocate((1 + static_cast<std::size_t>(tables.num_chunks())) * sizeof(double), device));
  double total = 0;
  try {
    if (tables.num_chunks() > 0) {
      norm_partial_kernel<T><<<static_cast<unsigned>(tables.num_chunks()), kThreads>>>(
          tables.entries(), tables.chunks(), kind, norm_type, out + 1);
      GKD_CUDA_CHECK_LAUNCH(norm_partial_kernel);
    }
    norm_finish_kernel<T><<<1, kThreads>>>(out + 1, tables.first_chunk(), static_cast<std::int64_t>(tensors.size()),
                                           kind, norm_type, out);
    GKD_CUDA_CHECK_LAUNCH(norm_finish_kernel);
    GKD_CUDA_CHECK(cudaMemcpy(&total, out, sizeof(double), cudaMemcpyDeviceToHost));
  } catch (...) {
    deallocate(out);
    throw;
  }
  deallocate(out);
  return static_cast<T>(total);
}

template <Real T>
void scale_grads(const std::vector<GradSpan<T>>& tensors, T coef, int device) {
  if (tensors.empty()) return;
  const multi_tensor::Tables<GradSpan<T>> tables(tensors, device);
  if (tables.num_chunks() == 0) return;
  scale_kernel<T><<<static_cast<unsigned>(tables.num_chunks()), kThreads>>>(tables.entries(), tables.chunks(), coef);
  GKD_CUDA_CHECK_LAUNCH(scale_kernel);
}

template <Real T>
void clamp_grads(const std::vector<GradSpan<T>>& tensors, T hi, int device) {
  if (tensors.empty()) return;
  const multi_tensor::Tables<GradSpan<T>> tables(tensors, device);
  if (tables.num_chunks() == 0) return;
  clamp_kernel<T><<<static_cast<unsigned>(tables.num_chunks()), kThreads>>>(tables.entries(), tables.chunks(), hi);
  GKD_CUDA_CHECK_LAUNCH(clamp_kernel);
}

template void sgd_step(const std::vector<SGDTensor<float>>&, const SGDGroup<float>&, int);
template void sgd_step(const std::vector<SGDTensor<double>>&, const SGDGroup<double>&, int);
template void adam_step(const std::vector<AdamTensor<float>>&, const AdamGroup<float>&, int);
template void adam_step(const std::vector<AdamTensor<double>>&, const AdamGroup<double>&, int);
template float grad_norm(const std::vector<GradSpan<float>>&, double, int);
template double grad_norm(const std::vector<GradSpan<double>>&, double, int);
template void scale_grads(const std::vector<GradSpan<float>>&, float, int);
template void scale_grads(const std::vector<GradSpan<double>>&, double, int);
template void clamp_grads(const std::vector<GradSpan<float>>&, float, int);
template void clamp_grads(const std::vector<GradSpan<double>>&, double, int);

}  // namespace gkd::cuda
