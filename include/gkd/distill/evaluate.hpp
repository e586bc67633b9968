// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Evaluation of a segmentation network on a domain's test set (method.md §9.4) and the latent codes
/// for the Fréchet Semantic Distance (method.md §8).
///
/// - `evaluate_segmentation`: full-image inference by sliding windows of the training patch size
///   (stride P/2, Gaussian blending), foreground probability = softmax class 1; a confusion matrix and the
///   ROC-AUC accumulated over all pixels of all images inside the FOV (the official protocol). The first
///   `keep` probability maps are returned for overlays.
/// - `latent_codes`: up to `fsd_patches` patch-size tiles per test image (a fixed, evenly spread subset of
///   the non-overlapping grid), through a network's bottleneck and its frozen MSAN encoder, one row per
///   tile: [N, C_t]. `frechet_distance` of two such sets is the FSD.
/// @code
///   auto ev = gkd::distill::evaluate_segmentation(*test, predict, cfg, /*keep=*/3);
///   std::cout << ev.seg.f1 << ' ' << ev.auc << '\n';
///   double fsd = gkd::metrics::frechet_distance(latent_codes(*src, enc, cfg), latent_codes(*tgt, enc, cfg));
/// @endcode
#include <functional>
#include <vector>

#include "gkd/autograd/node.hpp"
#include "gkd/data/preprocess.hpp"
#include "gkd/data/sample.hpp"
#include "gkd/distill/config.hpp"
#include "gkd/metrics/frechet.hpp"
#include "gkd/metrics/roc_auc.hpp"
#include "gkd/metrics/segmentation.hpp"
#include "gkd/ops/join.hpp"
#include "gkd/ops/reduce.hpp"

namespace gkd::distill {

struct SegmentationEvaluation {
  metrics::SegmentationMetrics seg{};
  double auc = 0;
  std::int64_t images = 0;
  std::vector<Tensor<float>> probabilities;  ///< foreground probability [H, W] of the first `keep` images
};

/// @param predict logits [B, 2, P, P] of a batch of windows [B, 1, P, P] (called under NoGrad)
inline SegmentationEvaluation evaluate_segmentation(const data::Dataset& test,
                                                    const std::function<Tensor<float>(const Tensor<float>&)>& predict,
                                                    const PipelineConfig& c, std::int64_t keep = 0) {
  NoGrad no_grad;
  metrics::ConfusionAccumulator confusion;
  metrics::RocAucAccumulator auc;
  SegmentationEvaluation out;
  const data::SlidingWindowOptions windows{.size = c.data.patch, .stride = c.data.patch / 2, .batch = 8, .gaussian = true};
  for (std::int64_t i = 0; i < test.size(); ++i) {
    const data::Sample s = test.get(i);
    const Tensor<float> prob =
        data::sliding_window<float>(s.image, [&](const Tensor<float>& x) { return softmax(predict(x), 1); }, windows)
            .select(0, 1)
            .contiguous();
    confusion.add(prob, s.mask, s.fov);
    auc.add(prob, s.mask, s.fov);
    if (std::int64_t(out.probabilities.size()) < keep) out.probabilities.push_back(prob);
  }
  out.seg = confusion.metrics();
  out.auc = auc.value();
  out.images = test.size();
  return out;
}

/// Tile origins used for the latent codes of an H×W image (see the file comment).
inline std::vector<std::pair<std::int64_t, std::int64_t>> latent_tiles(std::int64_t h, std::int64_t w, const PipelineConfig& c) {
  std::vector<std::pair<std::int64_t, std::int64_t>> grid;
  for (std::int64_t y : data::window_starts(h, c.data.patch, c.data.patch))
    for (std::int64_t x : data::window_starts(w, c.data.patch, c.data.patch)) grid.emplace_back(y, x);
  const auto n = std::min<std::int64_t>(c.fsd_patches, std::int64_t(grid.size()));
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t k = 0; k < n; ++k) out.push_back(grid[std::size_t(k * std::int64_t(grid.size()) / n)]);
  return out;
}

/// @param encode the latent vectors [B, C, 1] of a batch of tiles [B, 1, P, P] (called under NoGrad)
/// @returns [N, C], one row per tile
inline Tensor<float> latent_codes(const data::Dataset& test, const std::function<Tensor<float>(const Tensor<float>&)>& encode,
                                  const PipelineConfig& c) {
  NoGrad no_grad;
  std::vector<Tensor<float>> rows;
  for (std::int64_t i = 0; i < test.size(); ++i) {
    const data::Sample s = test.get(i);
    std::vector<Tensor<float>> tiles;
    for (auto [y, x] : latent_tiles(s.height(), s.width(), c))
      tiles.push_back(s.image.narrow(1, y, c.data.patch).narrow(2, x, c.data.patch).contiguous());
    const Tensor<float> z = encode(stack(tiles, 0));
    rows.push_back(z.reshape({z.shape()[0], z.numel() / z.shape()[0]}));
  }
  return concat(rows, 0);
}

}  // namespace gkd::distill
