// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// FSP ("flow of solution procedure") distillation (Yim et al., CVPR 2017), composed from
/// differentiable ops (autodiff gives the gradient).
///
/// For two feature maps of one network, F1 [B, C1, H, W] and F2 [B, C2, H', W'], the FSP matrix is
/// the Gram matrix over positions
///
///   G(F1, F2)[b, i, j] = Σ_{h,w} F1[b, i, h, w] · F2[b, j, h, w] / (H·W)          -> [B, C1, C2]
///
/// where F2 is first adaptive-average-pooled (F.adaptive_avg_pool2d) to F1's H × W when its spatial
/// size differs (larger or smaller). Loss between student and teacher pairs:
///
///   L = mean over (b, i, j) of (G(S1, S2) − G(T1, T2))²
///
/// The student and teacher FSP matrices must have the same shape [B, C1, C2] (add a 1×1 projection
/// on the student when the channel counts differ). The teacher matrix is detached (no gradient to
/// the teacher features). Returns a scalar.
/// @code
///   auto s1 = gkd::Tensor<float>::empty({4, 16, 32, 32}), s2 = gkd::Tensor<float>::empty({4, 32, 16, 16});
///   auto t1 = gkd::Tensor<float>::empty({4, 16, 64, 64}), t2 = gkd::Tensor<float>::empty({4, 32, 32, 32});
///   auto loss = gkd::fsp_loss(s1, s2, t1, t2);   // Gram matrices [4, 16, 32] on both sides
/// @endcode
#include <string_view>

#include "gkd/ops/linalg.hpp"
#include "gkd/ops/pool.hpp"
#include "gkd/ops/reduce.hpp"

namespace gkd {

/// G(F1, F2) = F1 · F2ᵀ / (H·W) over positions: [B, C1, H, W] x [B, C2, H', W'] -> [B, C1, C2]
/// (F2 adaptive-average-pooled to H × W first when its size differs). Differentiable w.r.t. both.
/// @throws gkd::Error for non-4-D or empty features or different batch sizes
template <Real T>
Tensor<T> fsp_matrix(const Tensor<T>& first, const Tensor<T>& second) {
  constexpr std::string_view op = "fsp_matrix";
  for (const Tensor<T>* f : {&first, &second}) {
    GKD_CHECK(f->dim() == 4 && f->numel() > 0, op,
              "features must be non-empty 4-D [B, C, H, W], got " << to_string(first.shape()) << " and "
                                                                  << to_string(second.shape()));
  }
  GKD_CHECK(first.shape()[0] == second.shape()[0], op,
            "features of shapes " << to_string(first.shape()) << " and " << to_string(second.shape())
                                  << " have different batch sizes");
  const std::int64_t b = first.shape()[0], c1 = first.shape()[1], c2 = second.shape()[1];
  const std::int64_t h = first.shape()[2], w = first.shape()[3];
  const bool pool = second.shape()[2] != h || second.shape()[3] != w;
  const Tensor<T> f2 = pool ? adaptive_avg_pool2d(second, Size2(h, w)) : second;
  const Tensor<T> gram = matmul(first.reshape({b, c1, h * w}), f2.reshape({b, c2, h * w}).transpose(1, 2));
  return gram / static_cast<T>(h * w);
}

/// FSP loss mean((G(S1, S2) − G(T1, T2))²) with the teacher detached (see the file comment).
/// @throws gkd::Error for bad features (see fsp_matrix) or when the two FSP matrices differ in shape
template <Real T>
Tensor<T> fsp_loss(const Tensor<T>& student_first, const Tensor<T>& student_second, const Tensor<T>& teacher_first,
                   const Tensor<T>& teacher_second) {
  const Tensor<T> gs = fsp_matrix(student_first, student_second);
  const Tensor<T> gt = fsp_matrix(teacher_first.detach(), teacher_second.detach());
  GKD_CHECK(gs.shape() == gt.shape(), "fsp_loss",
            "student FSP matrix " << to_string(gs.shape()) << " (features " << to_string(student_first.shape())
                                  << ", " << to_string(student_second.shape()) << ") and teacher FSP matrix "
                                  << to_string(gt.shape()) << " (features " << to_string(teacher_first.shape())
                                  << ", " << to_string(teacher_second.shape()) << ") must have the same shape");
  const Tensor<T> diff = gs - gt;
  return mean(diff * diff);
}

}  // namespace gkd
