// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Alignment Consistency Training (ACT, stage 2; method.md §5, our formulation [INFER]): trains the
/// teacher alignment network TAN (E_T, H_T) and the student one SAN (E_S, H_S) on the bottlenecks of a
/// frozen teacher (c4 = f_T) and a frozen scratch-trained student (x5 = f_S), regularised by the frozen
/// P-SAE (encoder P_E, decoder P_D, trained on masks). For images x with masks y:
///
///   z_T = E_T(f_T),  z_S = E_S(f_S),  z_P = E_T(P_E(y))           (latent vectors [B, C_t, 1])
///   rec      = mse(H_T(z_T), f_T) + mse(H_S(z_S), f_S)                              (self-reconstruction)
///   sem_rec  = bce(P_D(up_T(z_P)), y)    up_T = TAN's vector up-path, reshaped to c4's shape
///              (the official `Mlp` regularisation: P-SAE features through the shared bottleneck and back
///              through the frozen P-SAE decoder)
///   sem_pull = mse(z_T, z_P) + mse(z_S, z_P)            (image vectors and the mask's semantic vector
///              pulled together; z_P is not a stopped target, see below)
///   align    = mse(z_T, z_S)                                                        (teacher/student agreement)
///   cross    = KL_τ(Dec_T(f_T) ‖ Dec_T(H_T(z_S))) + KL_τ(Dec_S(f_S) ‖ Dec_S(H_S(z_T)))
///              (cross-consistency through the frozen decoders, with the real skips; the header exchange
///              of DICD is trained here to be meaningful)
///
/// sem_rec and sem_pull share the weight `sem`. KL_τ is `distillation_kl` (pixel mean, τ²-scaled).
/// sem_pull's gradient also reaches z_P = E_T(P_E(y)). With z_P a stopped target, E_T chased a target
/// that its own updates move (a semi-gradient through shared weights): on a briefly trained teacher
/// (4 epochs, `cpu` preset), sem_pull's epoch mean went from 0.96 to 45 over 12 MSAN epochs at lr 3e-4,
/// and from 9.5 to 1.3e5 at the preset's 3e-3; pulled both ways (3e-3), it fell from 0.05 to 0.006.
/// rec (E_T must keep what H_T needs to rebuild c4) and sem_rec (what the P-SAE decoder needs to rebuild
/// the mask) keep the vectors from collapsing. Gradients reach TAN and SAN only (everything else is
/// frozen by the caller: `freeze_for_inference`). A term with weight 0 is not computed.
/// @code
///   auto terms = gkd::distill::act_losses(teacher, student, psae, tan, san, images, masks, cfg.act);
///   terms.total().backward();   // gradients in tan's and san's parameters
/// @endcode
#include "gkd/autograd/node.hpp"
#include "gkd/distill/loss_terms.hpp"
#include "gkd/distill/networks.hpp"
#include "gkd/losses/bce.hpp"
#include "gkd/losses/kl_div.hpp"
#include "gkd/losses/regression.hpp"

namespace gkd::distill {

/// ACT terms for one batch: images [B, 1, P, P], masks [B, P, P] (0/1).
/// @throws gkd::Error when the images are not [B, 1, P, P] with masks [B, P, P] (P = the networks' patch)
template <Real T>
LossTerms<T> act_losses(Teacher<T>& teacher, Student<T>& student, Psae<T>& psae, Tan<T>& tan, San<T>& san,
                        const Tensor<T>& images, const Tensor<T>& masks, const ActConfig& w) {
  GKD_CHECK(images.dim() == 4 && images.shape()[1] == 1 && masks.dim() == 3 && masks.shape()[0] == images.shape()[0] &&
                masks.shape()[1] == images.shape()[2] && masks.shape()[2] == images.shape()[3],
            "act_losses", "expected images [B, 1, H, W] and masks [B, H, W], got " << to_string(images.shape()) << " and "
                                                                                  << to_string(masks.shape()));
  const Tensor<T> y = masks.unsqueeze(1);
  models::SKEncoderFeatures<T> ft;
  typename Student<T>::Skips fs;
  Tensor<T> teacher_logits, student_logits, psae_middle;
  {
    NoGrad no_grad;
    ft = teacher.encode(images);
    fs = student.encode(images);
    if (wants(w.cross)) {
      teacher_logits = teacher.decode(ft.c4, ft).logits;
      student_logits = student.decode(fs.x5, fs).logits;
    }
    if (wants(w.sem)) psae_middle = psae.encode(y);
  }
  const Tensor<T> z_t = tan.encode(ft.c4), z_s = san.encode(fs.x5);
  LossTerms<T> terms;
  if (wants(w.rec)) terms.add("rec", add(mse_loss(tan.header(z_t), ft.c4), mse_loss(san.header(z_s), fs.x5)), w.rec);
  if (wants(w.sem)) {
    const Tensor<T> z_p = tan.MLPheader.encode(psae_middle.flatten(2));
    const Tensor<T> recon = psae.decode(tan.MLPheader.decode(z_p).reshape(psae_middle.shape()));
    terms.add("sem_rec", binary_cross_entropy_with_logits(recon, y), w.sem);
    terms.add("sem_pull", add(mse_loss(z_t, z_p), mse_loss(z_s, z_p)), w.sem);
  }
  if (wants(w.align)) terms.add("align", mse_loss(z_t, z_s), w.align);
  if (wants(w.cross)) {
    const T tau = static_cast<T>(w.cross_tau);
    const Tensor<T> s_to_t = teacher.decode(tan.header(z_s), ft).logits;
    const Tensor<T> t_to_s = student.decode(san.header(z_t), fs).logits;
    terms.add("cross", add(distillation_kl(s_to_t, teacher_logits, tau), distillation_kl(t_to_s, student_logits, tau)), w.cross);
  }
  return terms;
}

}  // namespace gkd::distill
