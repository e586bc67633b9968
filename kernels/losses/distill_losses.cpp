// SPDX-License-Identifier: Apache-2.0
// The fused distillation losses as differentiable ops on CUDA tensors (include/gkd/cuda/distill_losses.hpp):
// argument checks, workspaces from the caching allocator, the kernels, and the recorded backward.
#include "gkd/cuda/distill_losses.hpp"

#include <string_view>
#include <type_traits>

#include "gkd/cuda/cross_recon_kd.hpp"
#include "gkd/cuda/graph_kd.hpp"
#include "gkd/cuda/pairwise_kd.hpp"
#include "gkd/losses/cross_recon_kd.hpp"
#include "gkd/losses/graph_kd.hpp"
#include "gkd/losses/pairwise_kd.hpp"

namespace gkd::cuda {
namespace {

/// Every input defined, float32, on one CUDA device; returns that device.
template <Real T>
Device check_inputs(std::string_view op, std::initializer_list<const Tensor<T>*> inputs) {
  const Device device = (*inputs.begin())->device();
  for (const Tensor<T>* t : inputs) {
    GKD_CHECK(t->defined(), op, "input is an undefined tensor");
    GKD_CHECK(t->device().is_cuda() && t->device() == device, op,
              "all inputs must be on one CUDA device, got " << t->device().str() << " and " << device.str());
  }
  GKD_CHECK((std::is_same_v<T, float>), op,
            "the CUDA kernels take float32 tensors, got float64 on " << device.str()
                                                                      << " (use float32, or run this loss on the CPU)");
  return device;
}

/// Uninitialised device workspace of at least `bytes`.
Tensor<float> workspace(std::size_t bytes, Device device) {
  return Tensor<float>::empty({static_cast<std::int64_t>((bytes + sizeof(float) - 1) / sizeof(float))}, device);
}

/// Records a scalar loss whose gradient for a unit upstream gradient was computed in the forward pass:
/// backward scales it by the (device) upstream gradient with pairwise_kd_backward.
Tensor<float> record_prescaled(std::string_view op, const Tensor<float>& loss, const std::vector<Tensor<float>>& inputs,
                               const std::vector<Tensor<float>>& unit_grads) {
  return record(op, loss, std::span<const Tensor<float>>(inputs), [unit_grads](const Tensor<float>& g) {
    const Tensor<float> gc = g.contiguous_copy_if_needed();
    std::vector<Tensor<float>> grads;
    for (const Tensor<float>& u : unit_grads) {
      if (!u.defined()) {
        grads.emplace_back();
        continue;
      }
      Tensor<float> d = u.clone();
      pairwise_kd_backward(gc.data(), d.data(), d.numel());
      grads.push_back(d);
    }
    return grads;
  });
}

}  // namespace

template <Real T>
Tensor<T> graph_loss(const Tensor<T>& student, const Tensor<T>& teacher, const GraphKDOptions& o, bool infonce) {
  const std::string_view op = infonce ? "graph_infonce_loss" : "graph_kd_loss";
  const Device device = check_inputs<T>(op, {&student, &teacher});
  if constexpr (std::is_same_v<T, float>) {
    GKD_CHECK(student.dim() == 2 && teacher.dim() == 2 && student.shape()[0] == teacher.shape()[0], op,
              "needs student [N, C_s] and teacher [N, C_t] with the same N, got student "
                  << to_string(student.shape()) << " and teacher " << to_string(teacher.shape()));
    const std::int64_t n = student.shape()[0];
    detail::check_graph_kd_args(op, n, student.shape()[1], teacher.shape()[1], o, infonce);
    GraphKDConfig cfg;
    cfg.n = n;
    cfg.student_channels = student.shape()[1];
    cfg.teacher_channels = teacher.shape()[1];
    cfg.form = infonce ? GraphKDForm::InfoNCE : GraphKDForm::KL;
    cfg.mask = o.mask.kind == GraphMask::Kind::Full            ? GraphKDMask::Full
               : o.mask.kind == GraphMask::Kind::BlockDiagonal ? GraphKDMask::BlockDiagonal
                                                               : GraphKDMask::Star;
    cfg.group_size = o.mask.kind == GraphMask::Kind::Full ? 0 : o.mask.group_size;
    cfg.temperature = static_cast<float>(o.temperature);
    cfg.reduction = o.reduction == Reduction::None   ? GraphKDReduction::None
                    : o.reduction == Reduction::Mean ? GraphKDReduction::Mean
                                                     : GraphKDReduction::Sum;
    cfg.precision = o.fast_float_tiles ? GraphKDPrecision::TF32 : GraphKDPrecision::TF32x3;
    cfg.eps = static_cast<float>(o.eps);
    validate(cfg);
    const Tensor<float> sc = student.detach().contiguous_copy_if_needed(), tc = teacher.detach().contiguous_copy_if_needed();
    const GraphKDForward forward(cfg);
    Tensor<float> rows = Tensor<float>::empty({n}, device);
    const Tensor<float> lse = Tensor<float>::empty({static_cast<std::int64_t>(forward.row_lse_count())}, device);
    Tensor<float> loss = o.reduction == Reduction::None ? rows : Tensor<float>::empty({}, device);
    if (needs_grad(student) && o.reduction != Reduction::None) {  // the frozen teacher allows the gradient now
      const Tensor<float> ws = workspace(forward.gradient_workspace_bytes(), device);
      Tensor<float> grad = Tensor<float>::empty(sc.shape(), device);
      forward.run_with_gradient(sc.data(), tc.data(), rows.data(), lse.data(), loss.data(), grad.data(), ws.data(),
                                nullptr);
      return record_prescaled(op, loss, {student}, {grad});
    }
    const Tensor<float> ws = workspace(forward.workspace_bytes(), device);
    forward.run(sc.data(), tc.data(), rows.data(), lse.data(), o.reduction == Reduction::None ? nullptr : loss.data(),
                ws.data(), nullptr);
    if (!needs_grad(student)) return loss;
    return record(op, loss, {student, teacher}, [sc, tc, lse, cfg](const Tensor<float>& g) {
      const GraphKDBackward backward(cfg);
      const Tensor<float> ws = workspace(backward.workspace_bytes(), sc.device());
      Tensor<float> grad = Tensor<float>::empty(sc.shape(), sc.device());
      const Tensor<float> gc = g.contiguous_copy_if_needed();  // reduction None: the gradient of each row loss
      backward.run(sc.data(), tc.data(), lse.data(), gc.data(), 0.0f, grad.data(), ws.data(), nullptr);
      return std::vector<Tensor<float>>{grad, Tensor<float>()};
    });
  } else {
    return Tensor<T>();  // unreachable: check_inputs refused float64
  }
}

namespace {

/// similarity_mse (pixel_pair false) or pixel_pair_kl (true) on CUDA float32 tensors.
Tensor<float> pairwise_loss(std::string_view op, const Tensor<float>& student, const Tensor<float>& teacher,
                            double temperature, double eps, Reduction reduction, bool pixel_pair) {
  GKD_CHECK((student.dim() == 2 || student.dim() == 3) && teacher.dim() == student.dim(), op,
            "expects student [B, N, C_s] and teacher [B, N, C_t] (or [N, C]), got student "
                << to_string(student.shape()) << " teacher " << to_string(teacher.shape()));
  const bool batched = student.dim() == 3;
  const PairwiseShape shape{.batch = batched ? student.shape()[0] : 1,
                            .nodes = student.shape()[batched ? 1 : 0],
                            .cs = student.shape().back(),
                            .ct = teacher.shape().back()};
  GKD_CHECK((!batched || teacher.shape()[0] == shape.batch) && teacher.shape()[batched ? 1 : 0] == shape.nodes, op,
            "student " << to_string(student.shape()) << " and teacher " << to_string(teacher.shape())
                       << " must have the same batch and node counts");
  GKD_CHECK(reduction != Reduction::None, op, "reduction none is not supported (use mean or sum)");
  const PairwiseArgs args{.temperature = temperature, .eps = eps, .mean = reduction == Reduction::Mean, .precise = true};
  const Device device = student.device();
  const Tensor<float> sc = student.detach().contiguous_copy_if_needed(), tc = teacher.detach().contiguous_copy_if_needed();
  const std::size_t bytes =
      pixel_pair ? pixel_pair_kl_workspace(shape, args) : similarity_mse_workspace(shape, args);
  const Tensor<float> ws = workspace(bytes, device);
  Tensor<float> loss = Tensor<float>::empty({}, device);
  Tensor<float> grad = needs_grad(student) ? Tensor<float>::empty(student.shape(), device) : Tensor<float>();
  float* g = grad.defined() ? grad.data() : nullptr;
  if (pixel_pair)
    pixel_pair_kl_forward(sc.data(), tc.data(), shape, args, loss.data(), g, ws.data(), bytes);
  else
    similarity_mse_forward(sc.data(), tc.data(), shape, args, loss.data(), g, ws.data(), bytes);
  if (!grad.defined()) return loss;
  return record_prescaled(op, loss, {student}, {grad});
}

}  // namespace

template <Real T>
Tensor<T> similarity_mse(const Tensor<T>& student, const Tensor<T>& teacher, const SimilarityMseOptions& o) {
  check_inputs<T>("similarity_mse", {&student, &teacher});
  if constexpr (std::is_same_v<T, float>)
    return pairwise_loss("similarity_mse", student, teacher, 1.0, o.eps, o.reduction, false);
  else
    return Tensor<T>();  // unreachable: check_inputs refused float64
}

template <Real T>
Tensor<T> pixel_pair_kl(const Tensor<T>& student, const Tensor<T>& teacher, const PixelPairKlOptions& o) {
  check_inputs<T>("pixel_pair_kl", {&student, &teacher});
  GKD_CHECK(o.temperature > 0 && std::isfinite(o.temperature), "pixel_pair_kl",
            "temperature must be positive and finite, got " << o.temperature);
  if constexpr (std::is_same_v<T, float>)
    return pairwise_loss("pixel_pair_kl", student, teacher, o.temperature, o.eps, o.reduction, true);
  else
    return Tensor<T>();  // unreachable: check_inputs refused float64
}

template <Real T>
Tensor<T> cross_recon_kd(const Tensor<T>& teacher, const Tensor<T>& cross1, const Tensor<T>& cross2,
                         const CrossReconKdOptions& o) {
  constexpr std::string_view op = "cross_recon_kd";
  const Device device = check_inputs<T>(op, {&teacher, &cross1, &cross2});
  if constexpr (std::is_same_v<T, float>) {
    GKD_CHECK(teacher.dim() >= 2 && cross1.shape() == teacher.shape() && cross2.shape() == teacher.shape(), op,
              "expects teacher, cross1 and cross2 logits of one shape [B, K, ...], got "
                  << to_string(teacher.shape()) << ", " << to_string(cross1.shape()) << ", "
                  << to_string(cross2.shape()));
    GKD_CHECK(o.reduction != Reduction::None, op,
              "the CUDA kernel reduces (mean or sum); the per-pixel map (reduction none) is CPU-only");
    const std::int64_t b = teacher.shape()[0], k = teacher.shape()[1];
    const std::int64_t pixels = b > 0 && k > 0 ? teacher.numel() / (b * k) : 0;
    const Tensor<float> tc = teacher.detach().contiguous_copy_if_needed(),
                        c1 = cross1.detach().contiguous_copy_if_needed(),
                        c2 = cross2.detach().contiguous_copy_if_needed();
    const std::size_t bytes = cross_recon_kd_workspace(b, k, pixels);
    const Tensor<float> ws = workspace(bytes, device);
    Tensor<float> loss = Tensor<float>::empty({}, device);
    const bool g1 = needs_grad(cross1), g2 = needs_grad(cross2);
    Tensor<float> d1 = g1 ? Tensor<float>::empty(teacher.shape(), device) : Tensor<float>();
    Tensor<float> d2 = g2 ? Tensor<float>::empty(teacher.shape(), device) : Tensor<float>();
    cross_recon_kd_forward(tc.data(), c1.data(), c2.data(), b, k, pixels,
                           {.temperature = o.temperature, .mean = o.reduction == Reduction::Mean}, loss.data(),
                           g1 ? d1.data() : nullptr, g2 ? d2.data() : nullptr, ws.data(), bytes);
    if (!g1 && !g2) return loss;
    return record_prescaled(op, loss, {cross1, cross2}, {d1, d2});
  } else {
    return Tensor<T>();  // unreachable: check_inputs refused float64
  }
}

template Tensor<float> graph_loss<float>(const Tensor<float>&, const Tensor<float>&, const GraphKDOptions&, bool);
template Tensor<double> graph_loss<double>(const Tensor<double>&, const Tensor<double>&, const GraphKDOptions&, bool);
template Tensor<float> similarity_mse<float>(const Tensor<float>&, const Tensor<float>&, const SimilarityMseOptions&);
template Tensor<double> similarity_mse<double>(const Tensor<double>&, const Tensor<double>&, const SimilarityMseOptions&);
template Tensor<float> pixel_pair_kl<float>(const Tensor<float>&, const Tensor<float>&, const PixelPairKlOptions&);
template Tensor<double> pixel_pair_kl<double>(const Tensor<double>&, const Tensor<double>&, const PixelPairKlOptions&);
template Tensor<float> cross_recon_kd<float>(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&,
                                             const CrossReconKdOptions&);
template Tensor<double> cross_recon_kd<double>(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                                               const CrossReconKdOptions&);

}  // namespace gkd::cuda
