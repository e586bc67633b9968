// SPDX-License-Identifier: Apache-2.0
// matmul and linear through cuBLAS (strided-batched GEMM) with autograd; under a 16-bit autocast they
// multiply bfloat16 or half operands (the CPU's roundings, gkd/ops/autocast.hpp) on tensor cores with
// float32 accumulation and output, then round as the CPU ops do.
#include "gkd/cuda/linalg.hpp"

#include <atomic>

#include "check.hpp"
#include "gkd/cuda/memory.hpp"
#include "gkd/ops/autocast.hpp"
#include "ops/buffer16.hpp"
#include "ops/elementwise_kernels.hpp"
#include "runtime/blas.hpp"

namespace gkd::cuda {
namespace {

std::atomic<bool> tf32_allowed{false};

/// A GEMM operand: contiguous float32/float64 values, or (float32 under a 16-bit autocast) their bfloat16
/// or half roundings, which cuBLAS multiplies on tensor cores with float32 accumulation.
template <Real T>
struct Operand {
  Tensor<T> values;  // when `half` is not defined
  Buffer16 half;

  /// `t` as the operand of an op computing in precision p (autocast_for<T>()).
  static Operand of(const Tensor<T>& t, Precision p) {
    Operand o;
    if constexpr (std::is_same_v<T, float>) {
      if (p != Precision::f32) {
        const Tensor<T> c = t.contiguous_copy_if_needed();
        o.half = Buffer16::rounded(c.data(), c.numel(), p);
        return o;
      }
    }
    o.values = t.contiguous_copy_if_needed();
    return o;
  }
  [[nodiscard]] const void* data() const { return half.defined() ? half.data() : values.data(); }
  [[nodiscard]] cudaDataType_t type() const {
    return half.defined() ? half.cuda_type() : std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  }
};

/// C[b] = op(A[b]) op(B[b]) for contiguous row-major device batches; float32 C accumulates in float32
/// (TF32 when allowed and A, B are float32). Row-major C = A B is column-major Cᵀ = Bᵀ Aᵀ, so cuBLAS
/// gets the operands swapped.
template <Real T>
void gemm_batched(const Operand<T>& a, const Operand<T>& b, T* c, std::int64_t batch, std::int64_t m, std::int64_t k,
                  std::int64_t n, bool trans_a, bool trans_b) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    fill(c, batch * m * n, T(0));
    return;
  }
  cublasHandle_t handle = blas::handle();
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const auto lda = static_cast<int>(trans_a ? m : k), ldb = static_cast<int>(trans_b ? k : n);
  const T alpha = 1, beta = 0;
  GKD_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && batch <= INT32_MAX, "matmul",
            "GEMM sizes beyond 32-bit cuBLAS limits: " << m << "x" << k << "x" << n << " batch " << batch);
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k), ib = static_cast<int>(batch);
  if constexpr (std::is_same_v<T, float>) {
    const bool fp32 = a.type() == CUDA_R_32F;
    const cublasComputeType_t compute =
        fp32 && tf32_allowed.load() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    GKD_CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, op_b, op_a, in, im, ik, &alpha, b.data(), b.type(), ldb, k * n,
                                                a.data(), a.type(), lda, m * k, &beta, c, CUDA_R_32F, in, m * n, ib,
                                                compute, CUBLAS_GEMM_DEFAULT));
  } else {
    GKD_CUBLAS_CHECK(cublasDgemmStridedBatched(handle, op_b, op_a, in, im, ik, &alpha, static_cast<const T*>(b.data()),
                                               ldb, k * n, static_cast<const T*>(a.data()), lda, m * k, &beta, c, in,
                                               m * n, ib));
  }
}

template <Real T>
void check_device(const Tensor<T>& t, std::string_view op) {
  GKD_CHECK(t.defined(), op, "input is an undefined tensor");
  GKD_CHECK(t.device().is_cuda(), op, "expected a CUDA tensor, got one on " << t.device().str());
}

}  // namespace

void set_allow_tf32(bool allow) noexcept { tf32_allowed.store(allow); }
bool allow_tf32() noexcept { return tf32_allowed.load(); }

template <Real T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  check_device(a, "matmul");
  check_device(b, "matmul");
  GKD_CHECK(a.device() == b.device(), "matmul", "operands on " << a.device().str() << " and " << b.device().str());
  GKD_CHECK(a.dim() >= 2 && a.dim() == b.dim(), "matmul",
            "needs two tensors of equal rank >= 2, got " << to_string(a.shape()) << " and " << to_string(b.shape()));
  const std::size_t r = a.dim();
  GKD_CHECK(Shape(a.shape().begin(), a.shape().end() - 2) == Shape(b.shape().begin(), b.shape().end() - 2) &&
                a.shape()[r - 1] == b.shape()[r - 2],
            "matmul", "shapes " << to_string(a.shape()) << " and " << to_string(b.shape()) << " do not chain");
  const std::int64_t m = a.shape()[r - 2], k = a.shape()[r - 1], n = b.shape()[r - 1];
  const std::int64_t batch = numel(Shape(a.shape().begin(), a.shape().end() - 2));  // right even when k == 0
  Shape out_shape = a.shape();
  out_shape[r - 1] = n;
  const Precision p = detail::autocast_for<T>();
  const Operand<T> ao = Operand<T>::of(a, p), bo = Operand<T>::of(b, p);
  Tensor<T> y = Tensor<T>::empty(out_shape, a.device());
  gemm_batched(ao, bo, y.data(), batch, m, k, n, false, false);
  detail::round_in_place(y, p);
  const bool ga = needs_grad(a), gb = needs_grad(b);
  // Each operand is kept only for the other's gradient.
  return record("matmul", y, {a, b}, [ao = gb ? ao : Operand<T>(), bo = ga ? bo : Operand<T>(), sa = a.shape(),
                                      sb = b.shape(), batch, m, k, n, ga, gb, p](const Tensor<T>& g) {
    const Operand<T> go = Operand<T>::of(g, p);
    Tensor<T> da, db;
    if (ga) {  // dA = dY Bᵀ
      da = Tensor<T>::empty(sa, g.device());
      gemm_batched(go, bo, da.data(), batch, m, n, k, false, true);
    }
    if (gb) {  // dB = Aᵀ dY
      db = Tensor<T>::empty(sb, g.device());
      gemm_batched(ao, go, db.data(), batch, k, m, n, true, false);
    }
    detail::round_in_place(da, p), detail::round_in_place(db, p);
    return std::vector<Tensor<T>>{da, db};
  });
}

template <Real T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias) {
  check_device(x, "linear");
  check_device(weight, "linear");
  GKD_CHECK(x.device() == weight.device() && (!bias.defined() || bias.device() == x.device()), "linear",
            "input, weight and bias must be on one device");
  GKD_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.shape().back() == weight.shape()[1], "linear",
            "input " << to_string(x.shape()) << " does not match weight " << to_string(weight.shape())
                     << " (expected [..., in] and [out, in])");
  GKD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[0]), "linear",
            "bias " << to_string(bias.shape()) << " does not match weight " << to_string(weight.shape()));
  const std::int64_t in = weight.shape()[1], out = weight.shape()[0];
  const std::int64_t rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));  // right even when in == 0
  Shape out_shape = x.shape();
  out_shape.back() = out;
  const Precision p = detail::autocast_for<T>();
  const Operand<T> xo = Operand<T>::of(x, p), wo = Operand<T>::of(weight, p);
  Tensor<T> y = Tensor<T>::empty(out_shape, x.device());
  gemm_batched(xo, wo, y.data(), 1, rows, in, out, false, true);
  if (bias.defined() && y.numel() > 0) {  // y[r, o] += bias[o], in place
    const Tensor<T> bc = detail::rounded_copy(bias, p);
    const Shape flat{rows, out};
    const StridedPair layout = detail::strided_pair(flat, Strides{out, 1}, Strides{0, 1});
    launch_binary(BinaryOp::Add, y.data(), bc.data(), y.data(), y.numel(), &layout);
  }
  detail::round_in_place(y, p);
  const bool gx = needs_grad(x), gw = needs_grad(weight), gbias = needs_grad(bias);
  // The input is kept only for the weight's gradient and the weight only for the input's.
  return record("linear", y, {x, weight, bias}, [xo = gw ? xo : Operand<T>(), wo = gx ? wo : Operand<T>(),
                                                 sx = x.shape(), sw = weight.shape(), rows, in, out, gx, gw, gbias,
                                                 p](const Tensor<T>& g) {
    const Operand<T> go = Operand<T>::of(g, p);
    Tensor<T> dx, dw, db;
    if (gx) {  // dX = dY W
      dx = Tensor<T>::empty(sx, g.device());
      gemm_batched(go, wo, dx.data(), 1, rows, out, in, false, false);
    }
    if (gw) {  // dW = dYᵀ X
      dw = Tensor<T>::empty(sw, g.device());
      gemm_batched(go, xo, dw.data(), 1, out, rows, in, true, false);
    }
    if (gbias) db = detail::sum_to(detail::rounded_copy(g, p).reshape({rows, out}), Shape{1, out}).reshape({out});
    for (Tensor<T>* d : {&dx, &dw, &db}) detail::round_in_place(*d, p);
    return std::vector<Tensor<T>>{dx, dw, db};
  });
}

template Tensor<float> matmul<float>(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul<double>(const Tensor<double>&, const Tensor<double>&);
template Tensor<float> linear<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&);
template Tensor<double> linear<double>(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&);

}  // namespace gkd::cuda
