// SPDX-License-Identifier: Apache-2.0
// A pipeline stage trained with `precision = bf16` runs its step under autocast: its loss falls, and its
// history differs from the float32 run's from the first step (the convolutions round to 16 bits).
#include <catch2/catch.hpp>

#define GKD_IMAGE_IO_IMPLEMENTATION
#define GKD_VOLUME_IO_IMPLEMENTATION
#include "gkd/data/image_io.hpp"
#include "gkd/distill/domains.hpp"
#include "gkd/distill/stages.hpp"
#include "distill/tiny_networks.hpp"
#include "support/scratch.hpp"

using namespace gkd;
using namespace gkd::distill;

namespace {
std::vector<HistoryRow> teacher_history(const std::string& precision, const std::filesystem::path& dir) {
  RunContext run{.cfg = test::tiny_pipeline(), .dir = dir};
  run.cfg.precision = precision;
  run.train = load_domain(run.cfg, run.cfg.data.source, Split::train);
  (void)train_teacher(run);
  StageResult r;
  distill::detail::read_history(dir / "teacher" / "history.csv", 1 << 30, r);
  return r.history;
}
}  // namespace

TEST_CASE("a stage trained in bf16 learns, and differs from float32", "[distill][precision]") {
  set_num_threads(1);
  test::ScratchDir f32_dir("precision_f32"), bf16_dir("precision_bf16");
  const auto f32 = teacher_history("f32", f32_dir.path), bf16 = teacher_history("bf16", bf16_dir.path);
  REQUIRE(f32.size() == 8);
  REQUIRE(bf16.size() == 8);
  const auto epoch_mean = [](const std::vector<HistoryRow>& h, std::int64_t epoch) {
    double sum = 0;
    for (const auto& row : h)
      if (row.epoch == epoch) sum += row.values.front() / 2;  // 2 batches per epoch
    return sum;
  };
  CHECK(epoch_mean(bf16, 3) < epoch_mean(bf16, 0));
  const double first_f32 = f32.front().values.front(), first_bf16 = bf16.front().values.front();
  CHECK(first_bf16 != first_f32);
  CHECK(std::abs(first_bf16 - first_f32) < 0.05 * first_f32);  // rounding, not a different computation
}
