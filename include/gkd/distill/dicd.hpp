// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Domain-Invariant Cross Distillation (DICD, stage 3; method.md §7.3, [INFER] where the paper is silent).
/// The frozen MSAN headers are exchanged between the models:
///
///   z_T = E_T(c4(x)),  z_S = E_S(x5(x))
///   P_{S→T} = Dec_T(H_T(z_S); teacher skips c1..c3 of x)   — frozen teacher decoder; trains the student *encoder*
///   P_{T→S} = Dec_S(H_S(z_T); student skips x1..x4 of x)   — trains the student *decoder* (and, through the
///                                                            skips, the encoder's shallow layers)
///   L_DICD  = τ² [KL(softmax(P_T/τ) ‖ softmax(P_{S→T}/τ)) + KL(softmax(P_T/τ) ‖ softmax(P_{T→S}/τ))]
///
/// averaged over pixels (`cross_recon_kd`, the fused kernel). The teacher prediction P_T and z_T are
/// constants; TAN, SAN and the teacher are frozen by the caller.
/// @code
///   auto l = gkd::distill::dicd_loss(teacher, student, tan, san, teacher_features, teacher_logits,
///                                    student_skips, /*tau=*/4.0);
/// @endcode
#include "gkd/autograd/node.hpp"
#include "gkd/distill/networks.hpp"
#include "gkd/losses/cross_recon_kd.hpp"

namespace gkd::distill {

/// @param teacher_features  the teacher encoder's outputs on x (no gradient needed)
/// @param teacher_logits    the teacher's prediction on x (a constant)
/// @param student_skips     the student encoder's outputs on x, with their autograd history
template <Real T>
Tensor<T> dicd_loss(Teacher<T>& teacher, Student<T>& student, Tan<T>& tan, San<T>& san,
                    const models::SKEncoderFeatures<T>& teacher_features, const Tensor<T>& teacher_logits,
                    const typename Student<T>::Skips& student_skips, double tau) {
  Tensor<T> z_t;
  {
    NoGrad no_grad;
    z_t = tan.encode(teacher_features.c4);
  }
  const Tensor<T> s_to_t = teacher.decode(tan.header(san.encode(student_skips.x5)), teacher_features).logits;
  const Tensor<T> t_to_s = student.decode(san.header(z_t), student_skips).logits;
  return cross_recon_kd(teacher_logits.detach(), s_to_t, t_to_s, {.temperature = tau});
}

}  // namespace gkd::distill
