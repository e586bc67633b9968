// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The networks of a GKD run, built from a `PipelineConfig`: teacher UnetSKA2, student
/// MobileNetV2-UNet, P-SAE LatentNet (the teacher encoder's architecture at the teacher's width, so its
/// bottleneck has c4's shape), and the MSAN alignment networks TAN (on c4, [C_t, P/8, P/8]) and SAN
/// (on x5, [C_x5, P/32, P/32], latent length C_t so that teacher and student vectors can be exchanged).
/// P is the training patch side; all networks take 1-channel images and predict 2 classes.
/// @code
///   gkd::Generator gen(cfg.seed);
///   auto teacher = gkd::distill::make_teacher<float>(cfg, gen);
///   auto tan = gkd::distill::make_tan<float>(cfg, gen);
///   auto z = tan.encode(teacher.encode(x).c4);    // [B, C_t, 1]
/// @endcode
#include "gkd/distill/config.hpp"
#include "gkd/models/latent_net.hpp"
#include "gkd/models/mobilenet_v2_unet.hpp"
#include "gkd/models/msan.hpp"
#include "gkd/models/unet_ska2.hpp"

namespace gkd::distill {

template <Real T>
using Teacher = models::UnetSKA2<T>;
template <Real T>
using Student = models::MobileNetV2UNet<T>;
template <Real T>
using Psae = models::LatentNet<T>;
template <Real T>
using Tan = models::TeacherAlignment<T>;
template <Real T>
using San = models::StudentAlignment<T>;

/// Channels of the teacher bottleneck c4 (= the latent vector length).
inline std::int64_t teacher_bottleneck_channels(const PipelineConfig& c) { return nn::scaled(512, c.nets.teacher_width); }
/// Channels of the student bottleneck x5.
inline std::int64_t student_bottleneck_channels(const PipelineConfig& c) { return nn::scaled(1280, c.nets.student_width); }

template <Real T>
Teacher<T> make_teacher(const PipelineConfig& c, Generator& gen) {
  return Teacher<T>({.width = c.nets.teacher_width}, gen);
}
template <Real T>
Student<T> make_student(const PipelineConfig& c, Generator& gen) {
  return Student<T>({.width = c.nets.student_width}, gen);
}
template <Real T>
Psae<T> make_psae(const PipelineConfig& c, Generator& gen) {
  return Psae<T>({.width = c.nets.teacher_width}, gen);
}
template <Real T>
Tan<T> make_tan(const PipelineConfig& c, Generator& gen) {
  const std::int64_t side = c.data.patch / 8;
  return Tan<T>({.channels = teacher_bottleneck_channels(c), .height = side, .width = side, .hidden = c.nets.msan_hidden}, gen);
}
template <Real T>
San<T> make_san(const PipelineConfig& c, Generator& gen) {
  const std::int64_t side = c.data.patch / 32;
  return San<T>({.channels = student_bottleneck_channels(c), .height = side, .width = side,
                 .latent = teacher_bottleneck_channels(c), .hidden = c.nets.msan_hidden},
                gen);
}

/// Freezes a module for use as a fixed function: evaluation mode, no parameter gradients.
template <nn::Module M>
void freeze_for_inference(M& m) {
  nn::eval(m);
  nn::freeze(m);
}

}  // namespace gkd::distill
