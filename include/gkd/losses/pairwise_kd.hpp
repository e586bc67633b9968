// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Pair-wise relational distillation losses, tiled so that the N × N similarity matrices are never
/// materialised (O(N·C) memory): `similarity_mse` (SKD's pair-wise loss, Liu et al. CVPR 2019) and
/// `pixel_pair_kl` (CIRKD's cross-image pixel-pair KL, Yang et al. CVPR 2022).
///
/// Inputs are node features as rows: student [B, N, C_s] and teacher [B, N, C_t] (or [N, C], B = 1;
/// permute a [B, C, H, W] map to [B, H·W, C] first). Rows are L2-normalised inside the op
/// (F.normalize, eps = options.eps): ŝ = s / max(‖s‖, eps).
///
///   similarity_mse:  L = w Σ_b Σ_{i,j} (ŝ_bi·ŝ_bj − t̂_bi·t̂_bj)²,          w = 1 / (B N²) (Mean) or 1 (Sum)
///   pixel_pair_kl:   for every ordered pair of images (a, b) of the batch (a = b included) and every
///                    row i of image a, z_s = ŝ_ai·ŝ_bj / τ, z_t = t̂_ai·t̂_bj / τ over the columns j of b:
///                    L = w Σ_{a,b,i} KL(softmax_j(z_t) ‖ softmax_j(z_s)),  w = 1 / (B² N) (Mean) or 1 (Sum)
///                    (CIRKD's mini-batch cross-image pair loss: batchmean KL per pair, averaged over B² pairs)
///
/// **Gradients flow to the student features only** (through rows and, for pixel_pair_kl, columns);
/// the teacher is frozen and receives none. The gradient is computed during the forward pass (the
/// teacher is a constant): backward only scales it. CPU kernels: graph_kd's schedule
/// (gkd/losses/graph_kd.hpp) over the B·N nodes in blocks of `options.tile` nodes. Both similarity
/// matrices are symmetric, so each pair of row blocks is computed once (two GEMM tiles, Eigen) and feeds
/// its rows and, transposed, its columns; pairs run in round-robin rounds that never share a block, so
/// results do not depend on the thread count. similarity_mse pairs blocks of one image with
/// `skd_pair` (gkd/losses/detail/pairwise_tile.hpp); pixel_pair_kl pairs every two blocks, with one
/// softmax per row and column image, row state and gradient coefficient of graph_kd_tile.hpp. The CUDA
/// kernels run the same per-element functions.
///
/// `reference::` holds naive materialised versions (N × N in memory) for the tests.
/// @code
///   auto fs = gkd::Tensor<float>::empty({2, 4096, 128}), ft = gkd::Tensor<float>::empty({2, 4096, 256});
///   auto loss = gkd::similarity_mse(fs, ft) + gkd::pixel_pair_kl(fs, ft, {.temperature = 0.1});
///   // standalone, raw pointers, gradient for a loss weight of 1:
///   std::vector<float> grad(2 * 4096 * 128);
///   double l = gkd::similarity_mse_raw(fs.data(), ft.data(), 2, 4096, 128, 256, {}, grad.data());
/// @endcode
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <string_view>
#include <vector>

#include "gkd/losses/detail/pairwise_tile.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "gkd/losses/reduction.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/distill_losses.hpp"
#endif

namespace gkd {

/// Options of `similarity_mse`.
struct SimilarityMseOptions {
  double eps = 1e-12;                     ///< norm clamp of the row normalisation
  Reduction reduction = Reduction::Mean;  ///< Mean (÷ B N²) or Sum; None is rejected
  std::int64_t tile = 128;                ///< nodes per row / column tile (CPU), > 0
};

/// Options of `pixel_pair_kl`.
struct PixelPairKlOptions {
  double temperature = 1.0;               ///< τ > 0 of softmax(similarity / τ)
  double eps = 1e-12;                     ///< norm clamp of the row normalisation
  Reduction reduction = Reduction::Mean;  ///< Mean (÷ B² N) or Sum; None is rejected
  std::int64_t tile = 128;                ///< nodes per row / column tile (CPU), > 0
};

namespace detail {

inline void check_pairwise_sizes(std::string_view op, std::int64_t batch, std::int64_t nodes, std::int64_t cs,
                                 std::int64_t ct, double eps, Reduction reduction, std::int64_t tile) {
  GKD_CHECK(batch > 0 && nodes > 0 && cs > 0 && ct > 0, op,
            "needs B, N, C_s, C_t > 0, got B " << batch << " N " << nodes << " C_s " << cs << " C_t " << ct);
  GKD_CHECK(eps >= 0 && std::isfinite(eps), op, "eps must be finite and >= 0, got " << eps);
  GKD_CHECK(reduction != Reduction::None, op, "reduction none is not supported (use mean or sum)");
  GKD_CHECK(tile > 0, op, "tile must be positive, got " << tile);
}

}  // namespace detail

/// SKD pair-wise similarity MSE on raw row-major buffers student [B, N, C_s], teacher [B, N, C_t];
/// returns the loss and, when `grad_student` is not null, writes d loss / d student there
/// ([B, N, C_s]). The teacher gets no gradient. Both similarity matrices are symmetric, so each pair of
/// row blocks of an image is computed once for its rows and its columns (graph_kd's schedule): 2 N²C
/// multiply-adds per image for the loss and the gradient.
/// @throws gkd::Error for empty sizes, eps < 0, reduction None or tile <= 0
template <Real T>
double similarity_mse_raw(const T* student, const T* teacher, std::int64_t batch, std::int64_t nodes, std::int64_t cs,
                          std::int64_t ct, const SimilarityMseOptions& options = {}, T* grad_student = nullptr) {
  constexpr std::string_view op = "similarity_mse";
  detail::check_pairwise_sizes(op, batch, nodes, cs, ct, options.eps, options.reduction, options.tile);
  detail::GraphProblem<T> p(student, teacher, batch * nodes, cs, ct, {.tile = options.tile, .eps = options.eps});
  p.segment = nodes;
  p.enable_amx(false);
  const double w = options.reduction == Reduction::Mean ? 1.0 / (double(batch) * double(nodes) * double(nodes)) : 1.0;
  const std::int64_t nb = p.blocks();
  std::vector<double> partial(static_cast<std::size_t>(nb * nb), 0.0);
  detail::RowMatrix<T> dx = grad_student ? detail::RowMatrix<T>::Zero(batch * nodes, cs) : detail::RowMatrix<T>();
  detail::for_each_block_pair(nb, false, [&](std::int64_t ib, std::int64_t jb) {
    if (p.segment_of(ib) != p.segment_of(jb)) return;  // pairs of nodes of one image only
    thread_local detail::RowMatrix<T> as, at;
    const auto [i0, i1] = p.block_rows(ib);
    const auto [j0, j1] = p.block_rows(jb);
    using Side = typename detail::GraphProblem<T>::Side;
    p.similarity_tile(Side::Student, Side::Student, i0, i1, j0, j1, as);
    p.similarity_tile(Side::Teacher, Side::Teacher, i0, i1, j0, j1, at);
    double loss = 0;  // as becomes the gradient coefficients
    for (Eigen::Index r = 0; r < as.rows(); ++r)
      for (Eigen::Index c = 0; c < as.cols(); ++c) as(r, c) = static_cast<T>(detail::skd_pair<double>(as(r, c), at(r, c), w, loss));
    partial[static_cast<std::size_t>(ib * nb + jb)] = ib == jb ? loss : 2 * loss;  // (i, j) and (j, i)
    if (!grad_student) return;
    p.add_tile_product(as, false, Side::Student, j0, dx.data() + i0 * cs);
    if (ib != jb) p.add_tile_product(as, true, Side::Student, i0, dx.data() + j0 * cs);
  });
  if (grad_student) {
#pragma omp parallel for if (batch * nodes * cs > detail::kParallelGrain)
    for (std::int64_t i = 0; i < batch * nodes; ++i) p.normalise_backward(i, dx.row(i).data(), grad_student + i * cs);
  }
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

/// CIRKD cross-image pixel-pair KL on raw row-major buffers student [B, N, C_s], teacher [B, N, C_t];
/// returns the loss and, when `grad_student` is not null, writes d loss / d student ([B, N, C_s]).
/// It is graph_kd's symmetric KL schedule on the B·N nodes of the batch with every pair an edge
/// (self-pairs included) and one softmax per row and column image: each pair of row blocks is computed
/// once and feeds its rows and, transposed, its columns (3 B²N²C multiply-adds for the loss and the
/// gradient, against 4 for the materialised formula). Tiles are in T; 2 B²N doubles of row statistics.
/// @throws gkd::Error for empty sizes, τ <= 0 or not finite, eps < 0, reduction None or tile <= 0
template <Real T>
double pixel_pair_kl_raw(const T* student, const T* teacher, std::int64_t batch, std::int64_t nodes, std::int64_t cs,
                         std::int64_t ct, const PixelPairKlOptions& options = {}, T* grad_student = nullptr) {
  constexpr std::string_view op = "pixel_pair_kl";
  detail::check_pairwise_sizes(op, batch, nodes, cs, ct, options.eps, options.reduction, options.tile);
  GKD_CHECK(options.temperature > 0 && std::isfinite(options.temperature), op,
            "temperature must be positive and finite, got " << options.temperature);
  detail::GraphProblem<T> p(student, teacher, batch * nodes, cs, ct,
                            {.temperature = options.temperature, .tile = options.tile, .eps = options.eps});
  p.mask = {.kind = 3};
  p.segment = nodes;
  p.enable_amx(false);
  std::vector<double> lse(static_cast<std::size_t>(2 * batch * batch * nodes)), row_loss(static_cast<std::size_t>(batch * nodes));
  const std::int64_t terms = detail::graph_kd_forward_impl(p, lse.data(), row_loss.data());  // B² N
  const double w = options.reduction == Reduction::Mean ? 1.0 / double(terms) : 1.0;
  if (grad_student) {
    const std::vector<double> weights(row_loss.size(), w);
    detail::graph_kd_backward_impl(p, lse.data(), weights.data(), grad_student);
  }
  double total = 0;
  for (double v : row_loss) total += v;
  return w * total;
}

namespace detail {

/// [B, N, C] or [N, C] → (B, N, C), validating a student / teacher pair.
template <Real T>
std::array<std::int64_t, 4> pairwise_dims(std::string_view op, const Tensor<T>& student, const Tensor<T>& teacher) {
  check_cpu(student, op);
  check_cpu(teacher, op);
  GKD_CHECK((student.dim() == 2 || student.dim() == 3) && teacher.dim() == student.dim(), op,
            "expects student [B, N, C_s] and teacher [B, N, C_t] (or [N, C]), got student "
                << to_string(student.shape()) << " teacher " << to_string(teacher.shape()));
  const bool batched = student.dim() == 3;
  const std::int64_t b = batched ? student.shape()[0] : 1, n = student.shape()[batched ? 1 : 0];
  GKD_CHECK((!batched || teacher.shape()[0] == b) && teacher.shape()[batched ? 1 : 0] == n, op,
            "student " << to_string(student.shape()) << " and teacher " << to_string(teacher.shape())
                       << " must have the same batch and node counts");
  return {b, n, student.shape().back(), teacher.shape().back()};
}

/// Records a loss whose gradient (for a unit output gradient) was computed in the forward pass.
template <Real T>
Tensor<T> record_scaled_grad(std::string_view op, double loss, const Tensor<T>& student, Tensor<T> grad) {
  Tensor<T> out = Tensor<T>::scalar(static_cast<T>(loss));
  if (!grad.defined()) return out;
  return record(op, out, {student}, [grad](const Tensor<T>& g) {
    const T scale = g.item();
    Tensor<T> d = Tensor<T>::empty(grad.shape());
    const T* src = grad.data();
    T* dst = d.data();
    const std::int64_t n = grad.numel();
#pragma omp parallel for if (n > kParallelGrain)
    for (std::int64_t k = 0; k < n; ++k) dst[k] = scale * src[k];
    return std::vector<Tensor<T>>{d};
  });
}

}  // namespace detail

/// SKD similarity MSE as a differentiable op (see the file comment). student [B, N, C_s] or [N, C_s],
/// teacher [B, N, C_t] or [N, C_t]; returns a scalar. Gradient to the student only.
/// @throws gkd::Error for mismatched shapes or bad options
template <Real T>
Tensor<T> similarity_mse(const Tensor<T>& student, const Tensor<T>& teacher, const SimilarityMseOptions& options = {}) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(student.device(), teacher.device()), "similarity_mse",
                    similarity_mse(student, teacher, options));
  const auto [b, n, cs, ct] = detail::pairwise_dims("similarity_mse", student, teacher);
  const Tensor<T> sc = student.contiguous_copy_if_needed(), tc = teacher.contiguous_copy_if_needed();
  Tensor<T> grad = needs_grad(student) ? Tensor<T>::empty(student.shape()) : Tensor<T>();
  const double loss = similarity_mse_raw(sc.data(), tc.data(), b, n, cs, ct, options, grad.defined() ? grad.data() : nullptr);
  return detail::record_scaled_grad("similarity_mse", loss, student, grad);
}

/// CIRKD cross-image pixel-pair KL as a differentiable op (see the file comment). Shapes as for
/// `similarity_mse`; returns a scalar. Gradient to the student only (rows and columns).
/// @throws gkd::Error for mismatched shapes or bad options
template <Real T>
Tensor<T> pixel_pair_kl(const Tensor<T>& student, const Tensor<T>& teacher, const PixelPairKlOptions& options = {}) {
  GKD_CUDA_DISPATCH(detail::dispatch_device(student.device(), teacher.device()), "pixel_pair_kl",
                    pixel_pair_kl(student, teacher, options));
  const auto [b, n, cs, ct] = detail::pairwise_dims("pixel_pair_kl", student, teacher);
  const Tensor<T> sc = student.contiguous_copy_if_needed(), tc = teacher.contiguous_copy_if_needed();
  Tensor<T> grad = needs_grad(student) ? Tensor<T>::empty(student.shape()) : Tensor<T>();
  const double loss = pixel_pair_kl_raw(sc.data(), tc.data(), b, n, cs, ct, options, grad.defined() ? grad.data() : nullptr);
  return detail::record_scaled_grad("pixel_pair_kl", loss, student, grad);
}

/// Naive materialised versions (B · N² doubles in memory) of the two losses, for tests: each returns
/// the loss and writes d loss / d student (same layout as the input) into `grad`.
namespace reference {

namespace pairwise_detail {
inline std::vector<double> normalized(const std::vector<double>& x, std::int64_t rows, std::int64_t c, double eps,
                                      std::vector<double>& norm) {
  std::vector<double> h(x.size());
  norm.assign(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    double sq = 0;
    for (std::int64_t k = 0; k < c; ++k) sq += x[r * c + k] * x[r * c + k];
    norm[r] = std::sqrt(sq);
    for (std::int64_t k = 0; k < c; ++k) h[r * c + k] = x[r * c + k] / std::max(norm[r], eps);
  }
  return h;
}
inline std::vector<double> normalized_backward(const std::vector<double>& h, const std::vector<double>& dh,
                                               const std::vector<double>& norm, std::int64_t rows, std::int64_t c,
                                               double eps) {
  std::vector<double> d(h.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    double dot = 0;
    for (std::int64_t k = 0; k < c; ++k) dot += h[r * c + k] * dh[r * c + k];
    for (std::int64_t k = 0; k < c; ++k)
      d[r * c + k] = norm[r] > eps ? (dh[r * c + k] - h[r * c + k] * dot) / norm[r] : dh[r * c + k] / eps;
  }
  return d;
}
inline std::vector<double> gram(const std::vector<double>& h, std::int64_t b, std::int64_t n, std::int64_t c) {
  std::vector<double> g(static_cast<std::size_t>(b * n * n));
  for (std::int64_t q = 0; q < b; ++q)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double v = 0;
        for (std::int64_t k = 0; k < c; ++k) v += h[(q * n + i) * c + k] * h[(q * n + j) * c + k];
        g[(q * n + i) * n + j] = v;
      }
  return g;
}
}  // namespace pairwise_detail

/// Materialised SKD similarity MSE in double.
template <Real T>
double similarity_mse(const Tensor<T>& student, const Tensor<T>& teacher, const SimilarityMseOptions& o, Tensor<T>& grad) {
  const auto [b, n, cs, ct] = gkd::detail::pairwise_dims("similarity_mse", student, teacher);
  const auto vs = student.contiguous_copy_if_needed().to_vector(), vt = teacher.contiguous_copy_if_needed().to_vector();
  const std::vector<double> xs(vs.begin(), vs.end()), xt(vt.begin(), vt.end());
  std::vector<double> ns, nt;
  const auto hs = pairwise_detail::normalized(xs, b * n, cs, o.eps, ns), ht = pairwise_detail::normalized(xt, b * n, ct, o.eps, nt);
  const auto as = pairwise_detail::gram(hs, b, n, cs), at = pairwise_detail::gram(ht, b, n, ct);
  const double w = o.reduction == Reduction::Mean ? 1.0 / double(b * n * n) : 1.0;
  double loss = 0;
  std::vector<double> dh(hs.size(), 0.0);
  for (std::int64_t q = 0; q < b; ++q)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const double d = as[(q * n + i) * n + j] - at[(q * n + i) * n + j];
        loss += w * d * d;
        for (std::int64_t k = 0; k < cs; ++k) {  // d/dŝ_i and d/dŝ_j of (ŝ_i·ŝ_j − a_t)²
          dh[(q * n + i) * cs + k] += 2 * w * d * hs[(q * n + j) * cs + k];
          dh[(q * n + j) * cs + k] += 2 * w * d * hs[(q * n + i) * cs + k];
        }
      }
  const auto d = pairwise_detail::normalized_backward(hs, dh, ns, b * n, cs, o.eps);
  grad = Tensor<T>::from(student.shape(), std::vector<T>(d.begin(), d.end()));
  return loss;
}

/// Materialised CIRKD pixel-pair KL in double (log_softmax / softmax of whole rows).
template <Real T>
double pixel_pair_kl(const Tensor<T>& student, const Tensor<T>& teacher, const PixelPairKlOptions& o, Tensor<T>& grad) {
  const auto [b, n, cs, ct] = gkd::detail::pairwise_dims("pixel_pair_kl", student, teacher);
  const auto vs = student.contiguous_copy_if_needed().to_vector(), vt = teacher.contiguous_copy_if_needed().to_vector();
  const std::vector<double> xs(vs.begin(), vs.end()), xt(vt.begin(), vt.end());
  std::vector<double> ns, nt;
  const auto hs = pairwise_detail::normalized(xs, b * n, cs, o.eps, ns), ht = pairwise_detail::normalized(xt, b * n, ct, o.eps, nt);
  const double w = o.reduction == Reduction::Mean ? 1.0 / double(b * b * n) : 1.0;
  double loss = 0;
  std::vector<double> dh(hs.size(), 0.0), zs(static_cast<std::size_t>(n)), zt(static_cast<std::size_t>(n));
  for (std::int64_t a = 0; a < b; ++a)
    for (std::int64_t q = 0; q < b; ++q)
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
          double vs = 0, vt = 0;
          for (std::int64_t k = 0; k < cs; ++k) vs += hs[(a * n + i) * cs + k] * hs[(q * n + j) * cs + k];
          for (std::int64_t k = 0; k < ct; ++k) vt += ht[(a * n + i) * ct + k] * ht[(q * n + j) * ct + k];
          zs[j] = vs / o.temperature;
          zt[j] = vt / o.temperature;
        }
        const double ms = *std::max_element(zs.begin(), zs.end()), mt = *std::max_element(zt.begin(), zt.end());
        double ss = 0, st = 0;
        for (std::int64_t j = 0; j < n; ++j) ss += std::exp(zs[j] - ms), st += std::exp(zt[j] - mt);
        const double ls = ms + std::log(ss), lt = mt + std::log(st);
        for (std::int64_t j = 0; j < n; ++j) {
          const double p = std::exp(zt[j] - lt), lq = zs[j] - ls;
          loss += w * p * ((zt[j] - lt) - lq);
          const double g = w * (std::exp(lq) - p) / o.temperature;
          for (std::int64_t k = 0; k < cs; ++k) {
            dh[(a * n + i) * cs + k] += g * hs[(q * n + j) * cs + k];
            dh[(q * n + j) * cs + k] += g * hs[(a * n + i) * cs + k];
          }
        }
      }
  const auto d = pairwise_detail::normalized_backward(hs, dh, ns, b * n, cs, o.eps);
  grad = Tensor<T>::from(student.shape(), std::vector<T>(d.begin(), d.end()));
  return loss;
}

}  // namespace reference

}  // namespace gkd

GKD_REGISTER_OPS(pairwise_kd, "similarity_mse", "pixel_pair_kl")
