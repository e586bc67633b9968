// SPDX-License-Identifier: Apache-2.0
// Every stage of the GKD pipeline through the library API, on tiny networks and data (seconds): each
// stage's loss falls, an interrupted stage resumes bit for bit, evaluation gives sane figures; stages
// trained in bf16 and f16.
#include <catch2/catch.hpp>

#define GKD_IMAGE_IO_IMPLEMENTATION  // folder domains decode images and volumes
#define GKD_VOLUME_IO_IMPLEMENTATION
#include "gkd/data/image_io.hpp"
#include "gkd/distill/domains.hpp"
#include "gkd/distill/evaluate.hpp"
#include "gkd/distill/stages.hpp"
#include "distill/psae_progress.hpp"
#include "distill/tiny_networks.hpp"
#include "support/scratch.hpp"

using namespace gkd;
using namespace gkd::distill;

namespace {

PipelineConfig tiny() { return test::tiny_pipeline(); }

double epoch_mean(const StageResult& r, std::int64_t epoch) {
  double sum = 0;
  int n = 0;
  for (const auto& row : r.history)
    if (row.epoch == epoch) sum += row.values.front(), ++n;
  REQUIRE(n > 0);
  return sum / n;
}

/// The history of a finished stage, read back from its folder.
StageResult history_of(const RunContext& run, const std::string& stage) {
  StageResult r;
  distill::detail::read_history(run.dir / stage / "history.csv", 1 << 30, r);
  return r;
}

template <nn::Module M>
void require_same_state(M& a, M& b) {
  const auto sa = nn::state_dict(a), sb = nn::state_dict(b);
  REQUIRE(sa.size() == sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].name);
    const auto& x = sa[i].tensor;
    const auto& y = sb[i].tensor;
    REQUIRE(x.shape() == y.shape());
    REQUIRE(std::equal(x.data(), x.data() + x.numel(), y.data()));
  }
}

}  // namespace

TEST_CASE("every stage's loss falls, and evaluation reports the cross-domain figures", "[distill][pipeline]") {
  set_num_threads(1);
  test::ScratchDir dir("pipeline");
  RunContext run{.cfg = tiny(), .dir = dir.path};
  run.train = load_domain(run.cfg, run.cfg.data.source, Split::train);
  CHECK(run.train->size() == 4);
  CHECK(run.train->get(0).image.shape() == Shape{1, 64, 64});

  auto teacher = train_teacher(run);
  auto scratch = train_student(run, "scratch", {});
  auto psae = pretrain_psae(run);
  auto msan = train_msan(run, teacher, scratch, psae);
  auto student = train_student(run, "gkd", {&teacher, &msan.tan, &msan.san});
  auto emkd = train_student(run, "emkd", {&teacher, nullptr, nullptr});
  auto fsp = train_student(run, "fsp", {&teacher, nullptr, nullptr});
  for (const char* stage : {"teacher", "student_scratch", "psae", "msan", "student_gkd", "student_emkd", "student_fsp"}) {
    INFO("stage " << stage);
    const StageResult r = history_of(run, stage);
    CHECK(r.history.size() == 8);  // 4 epochs of 2 batches
    if (stage != std::string("psae")) CHECK(epoch_mean(r, 3) < epoch_mean(r, 0));
    CHECK(std::filesystem::exists(run.dir / stage / "model.safetensors"));
  }
  auto untrained_psae = test::initial_psae(run);
  CHECK(test::psae_eval_loss(psae, *run.train) < test::psae_eval_loss(untrained_psae, *run.train));
  const StageResult g = history_of(run, "student_gkd");
  CHECK(g.terms == std::vector<std::string>{"total", "ce", "intra", "inter", "cross"});
  CHECK(history_of(run, "msan").terms == std::vector<std::string>{"total", "rec", "sem_rec", "sem_pull", "align", "cross"});

  nn::eval(student);
  const auto test = load_domain(run.cfg, "retina_a", Split::test);
  const auto ev = evaluate_segmentation(*test, [&](const Tensor<float>& x) { return student.forward(x).logits; }, run.cfg, 1);
  CHECK(ev.images == 2);
  CHECK(ev.probabilities.size() == 1);
  CHECK(ev.probabilities[0].shape() == Shape{64, 64});
  CHECK(ev.seg.pixels > 0);
  CHECK(ev.seg.accuracy >= 0);
  CHECK(ev.seg.accuracy <= 1);
  CHECK(ev.auc >= 0);
  CHECK(ev.auc <= 1);
  nn::eval(msan.san);
  const Tensor<float> codes = latent_codes(*test, [&](const Tensor<float>& x) { return msan.san.encode(student.encode(x).x5); }, run.cfg);
  CHECK(codes.shape() == Shape{2 * run.cfg.fsd_patches, teacher_bottleneck_channels(run.cfg)});

  // a finished stage is loaded, not retrained
  auto again = train_teacher(run);
  require_same_state(again, teacher);
}

TEST_CASE("a stage stopped mid-epoch resumes exactly where it stopped", "[distill][pipeline]") {
  set_num_threads(1);
  test::ScratchDir a("resume_a"), b("resume_b");
  PipelineConfig cfg = tiny();
  cfg.epochs.student = 2;
  RunContext straight{.cfg = cfg, .dir = a.path};
  straight.train = load_domain(cfg, cfg.data.source, Split::train);
  RunContext stopped = straight;
  stopped.dir = b.path;
  auto teacher = train_teacher(straight);

  auto reference = train_student(straight, "kd", {&teacher, nullptr, nullptr});
  stopped.stop_after_steps = 3;  // mid-epoch 1 of 2 batches per epoch
  CHECK_THROWS_AS(train_student(stopped, "kd", {&teacher, nullptr, nullptr}), Interrupted);
  CHECK_FALSE(std::filesystem::exists(b.path / "student_kd" / "model.safetensors"));
  CHECK(history_of(stopped, "student_kd").history.size() == 3);
  stopped.stop_after_steps = 0;
  auto resumed = train_student(stopped, "kd", {&teacher, nullptr, nullptr});
  require_same_state(resumed, reference);
  CHECK(distill::detail::history_csv(history_of(stopped, "student_kd")) ==
        distill::detail::history_csv(history_of(straight, "student_kd")));
}

TEST_CASE("a NaN loss stops the stage naming it, and an unknown domain is named", "[distill][pipeline]") {
  set_num_threads(1);
  test::ScratchDir dir("nan");
  RunContext run{.cfg = tiny(), .dir = dir.path};
  run.cfg.optim.lr = 1e30;  // the first update blows the weights up; the second step's loss is not finite
  run.train = load_domain(run.cfg, run.cfg.data.source, Split::train);
  CHECK_THAT(test::error_of([&] { (void)train_teacher(run); }), Catch::Contains("stage 'teacher', step 1: loss term 'ce' is"));
  CHECK_THAT(test::error_of([&] { (void)load_domain(run.cfg, "retina_z", Split::test); }),
             Catch::Contains("'retina_z' is neither a synthetic domain"));
}

// A stage trained with `precision = bf16` or `f16` runs its step under autocast: its loss falls, and its
// history differs from the float32 run's from the first step (the convolutions round to 16 bits); f16
// checkpoints its loss scaler.
namespace {
/// The teacher stage's history when trained at `precision` into `dir`.
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
