// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The stages of a GKD run (method.md §2.2), each resumable and each leaving its trained weights in
/// `<run>/<stage>/model.safetensors` (stages whose weights exist are loaded, not retrained):
///
/// | stage | trains | loss |
/// |---|---|---|
/// | `teacher` | UnetSKA2 on the source domain | CE (+ `seg.dice_weight` · Dice) |
/// | `student_scratch` | MobileNetV2-UNet alone | CE (+ Dice) |
/// | `psae` | LatentNet on ground-truth masks (mask → mask) | BCE on the reconstruction |
/// | `msan` | TAN + SAN on the frozen teacher and scratch student | ACT (act.hpp) |
/// | `student_<method>` | MobileNetV2-UNet from scratch, teacher/TAN/SAN frozen | CE + the method's terms |
///
/// Methods: `gkd` (intra + inter + cross), the ablations `intra`, `inter`, `cross`, `intra+inter`, and the
/// baselines of baselines.hpp. With graph terms, each sample contributes an un-augmented anchor patch and
/// `gkd.views` augmented views (CE on all of them); otherwise one augmented patch, as for the scratch student.
/// Every stage uses Adam (`optim.lr`, `optim.weight_decay`) with the `optim.schedule` per epoch, random
/// patches of `data.patch` (foreground-centred with `data.foreground_probability`) and the default
/// augmentation (flips, rot90, affine, elastic, photometric). Seeds: the networks' initialisation and the
/// data order derive from `seed` and the stage's name.
/// @code
///   gkd::distill::RunContext run{.cfg = cfg, .dir = "runs/demo"};
///   run.train = gkd::distill::load_domain(cfg, cfg.data.source, gkd::distill::Split::train);
///   auto teacher = gkd::distill::train_teacher(run);
///   auto student = gkd::distill::train_student(run, "scratch", nullptr);
/// @endcode
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>
#include <optional>

#include "gkd/distill/act.hpp"
#include "gkd/distill/baselines.hpp"
#include "gkd/distill/dcgd.hpp"
#include "gkd/distill/dicd.hpp"
#include "gkd/distill/stage_runner.hpp"
#include "gkd/io/safetensors.hpp"
#include "gkd/losses/cross_entropy.hpp"
#include "gkd/losses/dice.hpp"
#include "gkd/optim/adam.hpp"

namespace gkd::distill {

/// Where a run lives and what it trains on.
struct RunContext {
  PipelineConfig cfg;
  std::filesystem::path dir;
  bool resume = true;                               ///< continue stages from their checkpoints / reuse finished ones
  std::shared_ptr<const data::Dataset> train = {};  ///< the source domain's prepared training samples
  std::function<StageProgress(const std::string& stage)> progress = {};  ///< optional progress reporting
  std::int64_t stop_after_steps = 0;                ///< tests: stop (as if interrupted) after this many steps of a stage
};

/// The frozen networks a distilling student learns from.
struct Frozen {
  Teacher<float>* teacher = nullptr;
  Tan<float>* tan = nullptr;
  San<float>* san = nullptr;
};

/// The learning rate of `epoch` (0-based) of `epochs` under `optim.schedule`.
inline double scheduled_lr(const OptimConfig& o, std::int64_t epoch, std::int64_t epochs) {
  const double f = static_cast<double>(epoch) / static_cast<double>(epochs);
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "cosine") return o.lr * 0.5 * (1 + std::cos(std::numbers::pi * f));
  // the official step decay 3e-3 / 3e-4 / 3e-5 / 5e-6 at epochs 50, 100, 200 of 300
  return f < 1.0 / 6 ? o.lr : f < 1.0 / 3 ? o.lr * 0.1 : f < 2.0 / 3 ? o.lr * 0.01 : o.lr * (5e-6 / 3e-3);
}

/// Whether `method` uses the DCGD graphs (and therefore anchor + views batches).
inline bool uses_graphs(const std::string& method) {
  return method == "gkd" || method == "intra" || method == "inter" || method == "intra+inter";
}
/// Whether `method` needs the frozen teacher (everything but the scratch student).
inline bool uses_teacher(const std::string& method) { return method != "scratch"; }
/// Whether `method` needs the frozen MSAN (GKD and its ablations).
inline bool uses_msan(const std::string& method) { return uses_graphs(method) || method == "cross"; }

/// The GKD weights of a method: the ablations switch terms off.
inline GkdConfig gkd_terms_of(const std::string& method, GkdConfig g) {
  if (method != "gkd") {
    if (method != "intra" && method != "intra+inter") g.intra = 0;
    if (method != "inter" && method != "intra+inter") g.inter = 0;
    if (method != "cross") g.cross = 0;
  }
  return g;
}

namespace detail {

inline std::uint64_t stage_seed(const PipelineConfig& c, const std::string& stage) {
  return data::detail::mix_seed(c.seed, std::hash<std::string>{}(stage));
}

template <nn::Module M>
void save_finished(const RunContext& run, const std::string& stage, M& model) {
  io::save_safetensors(run.dir / stage / "model.safetensors", nn::state_dict(model), {{"gkd.stage", stage}});
}

/// Trains the modules whose state is `state` with Adam over `run.train`, `epochs` epochs.
template <class Step>
StageResult train(const RunContext& run, const std::string& stage, std::int64_t epochs, const NamedTensors<float>& state,
                  std::vector<Tensor<float>> params, std::vector<Generator*> generators, int views, Step&& step) {
  const PipelineConfig& c = run.cfg;
  Adam<float> opt(std::move(params), {.lr = c.optim.lr, .weight_decay = c.optim.weight_decay});
  const StageOptions options{.name = stage, .dir = run.dir / stage, .epochs = epochs, .resume = run.resume,
                             .stop_after_steps = run.stop_after_steps, .device = run_device(c),
                             .precision = run_precision(c)};
  const data::LoaderOptions loader{.batch_size = c.data.batch, .shuffle = true, .drop_last = true,
                                   .seed = stage_seed(c, stage + "/data"), .epochs = epochs,
                                   .samples_per_epoch = c.data.samples_per_epoch, .workers = int(c.data.workers),
                                   .prefetch = 2, .views = views, .augment_anchor = views == 0, .start_batch = 0};
  const auto make_loader = [&](std::int64_t start) {
    data::LoaderOptions o = loader;
    o.start_batch = start;
    return std::make_unique<data::BatchLoader>(run.train, o, data::default_augmentation(),
                                               data::random_crop(c.data.patch, c.data.patch, c.data.foreground_probability));
  };
  return run_stage<float>(options, state, opt, generators, [&](std::int64_t e) { return scheduled_lr(c.optim, e, epochs); },
                          make_loader, std::function<LossTerms<float>(const data::Batch&)>(step),
                          run.progress ? run.progress(stage) : StageProgress{});
}

inline void add_segmentation_terms(LossTerms<float>& terms, const Tensor<float>& logits, const Tensor<float>& masks,
                                   const PipelineConfig& c) {
  terms.add("ce", cross_entropy(logits, masks));
  if (wants(c.seg.dice_weight)) terms.add("dice", dice_loss(logits, masks, 1.0f, DiceActivation::Softmax), c.seg.dice_weight);
}

}  // namespace detail

/// Loads a stage's finished weights into the host `model` when they exist (and the run resumes), then
/// moves `model` to the configured device: true when the stage can be skipped.
/// @throws gkd::Error when the file does not fit the model
template <nn::Module M>
bool load_finished(const RunContext& run, const std::string& stage, M& model) {
  const auto path = run.dir / stage / "model.safetensors";
  const bool finished = run.resume && std::filesystem::exists(path);
  if (finished) {
    const io::LoadReport report = io::load_into(path, nn::state_dict(model));
    GKD_CHECK(report.ok(), "pipeline", path.string() << ": " << report.str());
  }
  nn::to(model, run_device(run.cfg));
  return finished;
}

/// Stage 0: the teacher on the source domain.
inline Teacher<float> train_teacher(const RunContext& run) {
  Generator gen(detail::stage_seed(run.cfg, "teacher"));
  Teacher<float> teacher = make_teacher<float>(run.cfg, gen);
  if (load_finished(run, "teacher", teacher)) return teacher;
  nn::train(teacher);
  detail::train(run, "teacher", run.cfg.epochs.teacher, nn::state_dict(teacher), nn::parameters(teacher),
                dropout_generators(teacher), 0, [&](const data::Batch& b) {
                  LossTerms<float> terms;
                  detail::add_segmentation_terms(terms, teacher.forward(b.images).logits, b.masks, run.cfg);
                  return terms;
                });
  detail::save_finished(run, "teacher", teacher);
  return teacher;
}

/// Stage 1: the P-SAE on ground-truth masks.
inline Psae<float> pretrain_psae(const RunContext& run) {
  Generator gen(detail::stage_seed(run.cfg, "psae"));
  Psae<float> psae = make_psae<float>(run.cfg, gen);
  if (load_finished(run, "psae", psae)) return psae;
  nn::train(psae);
  detail::train(run, "psae", run.cfg.epochs.psae, nn::state_dict(psae), nn::parameters(psae), dropout_generators(psae), 0,
                [&](const data::Batch& b) {
                  const Tensor<float> y = b.masks.unsqueeze(1);
                  LossTerms<float> terms;
                  terms.add("bce", binary_cross_entropy_with_logits(psae.decode(psae.encode(y)), y));
                  return terms;
                });
  detail::save_finished(run, "psae", psae);
  return psae;
}

/// The trained MSAN alignment networks (one module, so one state_dict: "tan.*", "san.*").
struct Msan {
  using value_type = float;
  Tan<float> tan;
  San<float> san;
  template <class V>
  void visit(V& v) {
    v.child("tan", tan);
    v.child("san", san);
  }
};

/// TAN and SAN as initialised for stage 2 (load trained weights with `load_finished(run, "msan", m)`).
inline Msan make_msan(const PipelineConfig& c) {
  Generator gen(detail::stage_seed(c, "msan"));
  return Msan{make_tan<float>(c, gen), make_san<float>(c, gen)};
}

/// Stage 2: TAN and SAN with ACT, on the frozen teacher, scratch student and P-SAE.
inline Msan train_msan(const RunContext& run, Teacher<float>& teacher, Student<float>& scratch, Psae<float>& psae) {
  Msan m = make_msan(run.cfg);
  if (load_finished(run, "msan", m)) return m;
  freeze_for_inference(teacher), freeze_for_inference(scratch), freeze_for_inference(psae);
  nn::train(m);
  detail::train(run, "msan", run.cfg.epochs.msan, nn::state_dict(m), nn::parameters(m), {}, 0, [&](const data::Batch& b) {
    return act_losses(teacher, scratch, psae, m.tan, m.san, b.images, b.masks, run.cfg.act);
  });
  detail::save_finished(run, "msan", m);
  return m;
}

/// Stage 3 (and the scratch baseline): a student trained with `method` (see the file comment).
/// @param frozen the teacher (all methods but scratch) and the MSAN (GKD and its ablations), frozen here
inline Student<float> train_student(const RunContext& run, const std::string& method, const Frozen& frozen) {
  const PipelineConfig& c = run.cfg;
  const std::string stage = "student_" + method;
  GKD_CHECK(!uses_teacher(method) || frozen.teacher, "train_student", "method '" << method << "' needs the teacher");
  GKD_CHECK(!uses_msan(method) || (frozen.tan && frozen.san), "train_student", "method '" << method << "' needs the MSAN");
  Generator gen(detail::stage_seed(c, "student"));  // every method starts from the same initial student
  Student<float> student = make_student<float>(c, gen);
  if (load_finished(run, stage, student)) return student;
  if (frozen.teacher) freeze_for_inference(*frozen.teacher);
  if (frozen.tan) freeze_for_inference(*frozen.tan), freeze_for_inference(*frozen.san);
  nn::train(student);
  const GkdConfig g = gkd_terms_of(method, c.gkd);
  const int views = uses_graphs(method) ? int(c.gkd.views) : 0;
  // FSP trains its connectors with the student: they join the stage's state (checkpoint) and parameters
  std::optional<FspConnectors<float>> connectors;
  NamedTensors<float> state = nn::state_dict(student);
  std::vector<Tensor<float>> params = nn::parameters(student);
  if (method == "fsp") {  // channel counts from a probe in evaluation mode (no batch statistics touched)
    NoGrad no_grad;
    nn::eval(student);
    const Tensor<float> probe = Tensor<float>::zeros({1, 1, c.data.patch, c.data.patch}).to(run_device(c));
    const auto sk = student.encode(probe);
    const auto tk = frozen.teacher->encode(probe);
    Generator connector_gen(detail::stage_seed(c, "fsp_connectors"));
    connectors.emplace(KdFeatures<float>{{}, sk.x3, sk.x5}, KdFeatures<float>{{}, tk.c3, tk.c4}, connector_gen);
    nn::to(*connectors, run_device(c));
    for (auto& [name, t] : nn::state_dict(*connectors)) state.push_back({"fsp_connectors." + name, t});
    for (auto& p : nn::parameters(*connectors)) params.push_back(p);
    nn::train(student);
  }
  detail::train(run, stage, c.epochs.student, state, params, dropout_generators(student), views,
                [&](const data::Batch& b) {
                  std::vector<Tensor<float>> images{b.images}, masks{b.masks};
                  images.insert(images.end(), b.view_images.begin(), b.view_images.end());
                  masks.insert(masks.end(), b.view_masks.begin(), b.view_masks.end());
                  const Tensor<float> x = concat(images, 0), y = concat(masks, 0);
                  const auto skips = student.encode(x);
                  const auto out = student.decode(skips.x5, skips);
                  LossTerms<float> terms;
                  detail::add_segmentation_terms(terms, out.logits, y, c);
                  if (!uses_teacher(method)) return terms;
                  models::SKEncoderFeatures<float> tf;
                  typename Teacher<float>::Output tout;
                  {
                    NoGrad no_grad;
                    tf = frozen.teacher->encode(x);
                    // the teacher's prediction feeds the baselines and DICD; the graphs need c4 only
                    if (!uses_msan(method) || wants(g.cross)) tout = frozen.teacher->decode(tf.c4, tf);
                  }
                  if (!uses_msan(method)) {
                    add_baseline_terms(terms, method, KdFeatures<float>{out.logits, skips.x3, skips.x5},
                                       KdFeatures<float>{tout.logits, tf.c3, tf.c4}, y, c.baseline,
                                       connectors ? &*connectors : nullptr);
                    return terms;
                  }
                  if (wants(g.intra) || wants(g.inter)) {
                    const std::int64_t n = b.images.shape()[0], v = std::int64_t(images.size());
                    Tensor<float> zs = frozen.san->encode(skips.x5), zt;
                    {
                      NoGrad no_grad;
                      zt = frozen.tan->encode(tf.c4);
                    }
                    std::vector<Tensor<float>> per_view_s, per_view_t;
                    for (std::int64_t k = 0; k < v; ++k) {
                      per_view_s.push_back(zs.narrow(0, k * n, n).flatten(1));
                      per_view_t.push_back(zt.narrow(0, k * n, n).flatten(1));
                    }
                    add_dcgd_terms(terms, per_view_s, per_view_t, g);
                  }
                  if (wants(g.cross))
                    terms.add("cross", dicd_loss(*frozen.teacher, student, *frozen.tan, *frozen.san, tf, tout.logits, skips, g.cross_tau),
                              g.cross);
                  return terms;
                });
  detail::save_finished(run, stage, student);
  return student;
}

}  // namespace gkd::distill
