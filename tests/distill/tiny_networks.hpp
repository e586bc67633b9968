// SPDX-License-Identifier: Apache-2.0
#pragma once
// The smallest configuration of the GKD networks that the distill tests build: 32x32 patches, teacher
// width 1/32 (c4: 16 channels at 4x4), student width 0.05 (x5: 64 channels at 1x1), MSAN hidden width 4.
// tools/golden/distill.py builds the same sizes.
#include "gkd/distill/config.hpp"

namespace gkd::test {

inline distill::PipelineConfig tiny_networks() {
  distill::PipelineConfig c = distill::preset("cpu");
  c.data.patch = 32, c.nets.teacher_width = 1.0 / 32, c.nets.student_width = 0.05, c.nets.msan_hidden = 4;
  return c;
}

/// The whole pipeline on tiny networks and data (seconds per stage): 4 training images of 64x64, 32x32
/// patches, 4 epochs of 2 batches per stage, CE only (the loss-falls checks are calibrated on it).
inline distill::PipelineConfig tiny_pipeline() {
  distill::PipelineConfig c = distill::preset("cpu");
  c.threads = 1;
  c.data.image_size = 64, c.data.patch = 32, c.data.train_count = 4, c.data.test_count = 2;
  c.data.samples_per_epoch = 8, c.data.batch = 4, c.data.workers = 0;
  c.nets.teacher_width = 1.0 / 32, c.nets.student_width = 0.05, c.nets.msan_hidden = 8;
  c.epochs = {.teacher = 4, .student = 4, .psae = 4, .msan = 4};
  c.optim.schedule = "constant";
  c.seg.dice_weight = 0;  // pinned here, not inherited from the preset
  c.gkd.views = 2;
  return c;
}

}  // namespace gkd::test
