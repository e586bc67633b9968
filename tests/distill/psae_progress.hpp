// SPDX-License-Identifier: Apache-2.0
#pragma once
// How the pipeline tests see that the P-SAE stage learned. Its per-batch history cannot show it in 8
// steps: dropout 0.5 before the last conv and random patches make the epoch means noise (CPU, tiny
// pipeline, seeds 0-5: the last epoch's mean was above the first's for seed 3). Its reconstruction loss in
// evaluation mode on fixed masks, the training masks' centre 32x32 crops, fell for every seed tried (0-7).
#include "gkd/distill/stages.hpp"

namespace gkd::test {

/// P-SAE's BCE in evaluation mode on the centre 32x32 crops of the training masks, on psae's device.
inline double psae_eval_loss(distill::Psae<float>& psae, const data::Dataset& train) {
  std::vector<Tensor<float>> crops;
  for (std::int64_t i = 0; i < train.size(); ++i) {
    const Tensor<float> m = train.get(i).mask;
    crops.push_back(m.narrow(0, (m.size(0) - 32) / 2, 32).narrow(1, (m.size(1) - 32) / 2, 32).unsqueeze(0));
  }
  const Tensor<float> y = concat(crops, 0).unsqueeze(1).to(nn::parameters(psae).front().device());
  nn::eval(psae);
  return binary_cross_entropy_with_logits(psae.decode(psae.encode(y)), y).item();
}

/// The P-SAE that the run's psae stage starts from, on the run's device.
inline distill::Psae<float> initial_psae(const distill::RunContext& run) {
  Generator gen(distill::detail::stage_seed(run.cfg, "psae"));
  distill::Psae<float> psae = distill::make_psae<float>(run.cfg, gen);
  nn::to(psae, distill::run_device(run.cfg));
  return psae;
}

}  // namespace gkd::test
