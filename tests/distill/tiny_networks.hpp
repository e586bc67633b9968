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

}  // namespace gkd::test
