// SPDX-License-Identifier: Apache-2.0
// A pipeline stage trained with `precision = bf16` or `f16` runs its step under autocast: its loss falls,
// and its history differs from the float32 run's from the first step (the convolutions round to 16
// bits); f16 checkpoints its loss scaler.
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

TEST_CASE("a stage trained in bf16 or f16 learns, and differs from float32", "[distill][precision]") {
  set_num_threads(1);
  test::ScratchDir f32_dir("precision_f32");
  const auto f32 = teacher_history("f32", f32_dir.path);
  REQUIRE(f32.size() == 8);
  const auto epoch_mean = [](const std::vector<HistoryRow>& h, std::int64_t epoch) {
    double sum = 0;
    for (const auto& row : h)
      if (row.epoch == epoch) sum += row.values.front() / 2;  // 2 batches per epoch
    return sum;
  };
  for (const char* precision : {"bf16", "f16"}) {
    INFO(precision);
    test::ScratchDir dir(std::string("precision_") + precision);
    const auto h = teacher_history(precision, dir.path);
    REQUIRE(h.size() == 8);
    CHECK(epoch_mean(h, 3) < epoch_mean(h, 0));
    const double first_f32 = f32.front().values.front(), first = h.front().values.front();
    CHECK(first != first_f32);
    CHECK(std::abs(first - first_f32) < 0.05 * first_f32);  // rounding, not a different computation
    const auto scaler_state = [&] {
      Generator gen(0);
      Teacher<float> t = make_teacher<float>(test::tiny_pipeline(), gen);
      return io::load_checkpoint(dir.path / "teacher" / "checkpoint.safetensors", nn::state_dict(t),
                                 static_cast<Optimizer<float>*>(nullptr))
          .state.user;
    }();
    CHECK(scaler_state.count("grad_scaler.scale") == (precision == std::string("f16") ? 1u : 0u));
  }
}
