// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `run_stage`: the training loop every pipeline stage shares — batches from a resumable loader, one
/// optimiser step per batch, the learning rate set per epoch, a NaN/Inf guard naming the stage, step and
/// loss term, a loss history, progress reports, and atomic checkpoints that make a run resumable exactly.
///
/// Contract
/// - Files in `options.dir`: `checkpoint.safetensors` (the trainable state, the optimiser, the step, the
///   dropout generators; written at the end of every epoch and when an interrupt is requested) and
///   `history.csv` (step, epoch, lr, then every loss term; written just before each checkpoint, so it is
///   never behind it). Both writes are atomic: a kill at any instant leaves a consistent pair.
/// - With `options.resume` and a checkpoint present, training continues at the saved step: the loader
///   starts at that global batch, the history is cut to it, and — the data order being a function of the
///   seed and the batch number only — the run continues as if it had never stopped (bit for bit with
///   one thread).
/// - `request_interrupt()` (async-signal-safe; the CLI calls it from SIGINT) makes the loop save a
///   checkpoint after the current step and throw `Interrupted`. `options.stop_after_steps` does the same
///   after that many steps of this call (tests).
/// - A non-finite loss term throws gkd::Error ("stage 'distill', step 17: loss term 'inter' is nan").
/// @code
///   gkd::distill::StageOptions o{.name = "teacher", .dir = run / "teacher", .epochs = 10, .resume = true};
///   auto result = gkd::distill::run_stage<float>(o, gkd::nn::state_dict(teacher), opt, {}, lr_at, make_loader,
///       [&](const gkd::data::Batch& b) { LossTerms<float> t; t.add("ce", ...); return t; });
/// @endcode
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gkd/core/autocast.hpp"
#include "gkd/data/loader.hpp"
#include "gkd/distill/loss_terms.hpp"
#include "gkd/io/atomic_file.hpp"
#include "gkd/io/checkpoint.hpp"
#include "gkd/nn/dropout.hpp"
#include "gkd/optim/grad_scaler.hpp"

namespace gkd::distill {

/// Thrown by `run_stage` after it saved a checkpoint because an interrupt was requested.
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline std::atomic<bool>& interrupt_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}
}  // namespace detail

/// Asks the running stage to checkpoint and stop after its current step. Async-signal-safe.
inline void request_interrupt() noexcept { detail::interrupt_flag().store(true); }
inline bool interrupt_requested() noexcept { return detail::interrupt_flag().load(); }
inline void clear_interrupt() noexcept { detail::interrupt_flag().store(false); }

/// The dropout generators of a module, in visit order (their state belongs in a checkpoint).
template <nn::Module M>
std::vector<Generator*> dropout_generators(M& m) {
  std::vector<Generator*> out;
  nn::for_each_module(m, [&](auto& s) {
    if constexpr (nn::is_dropout<std::remove_cvref_t<decltype(s)>>) out.push_back(&s.gen);
  });
  return out;
}

/// One row of the loss history.
struct HistoryRow {
  std::int64_t step = 0, epoch = 0;
  double lr = 0;
  std::vector<double> values;  ///< in `StageResult::terms` order
};

struct StageResult {
  std::vector<std::string> terms;  ///< loss term names ("total" first)
  std::vector<HistoryRow> history;
  std::int64_t steps = 0;          ///< global steps done (all epochs)
  bool resumed = false;            ///< continued from a checkpoint
};

/// What a stage reports while it runs (all optional).
struct StageProgress {
  std::function<void(std::int64_t epoch, std::int64_t epochs, std::int64_t steps_per_epoch)> epoch_begin;
  std::function<void(std::int64_t step_in_epoch, const std::vector<std::pair<std::string, double>>& values)> step;
  std::function<void()> epoch_end;
};

struct StageOptions {
  std::string name;               ///< "teacher", "psae", "msan", "student/gkd", ... (messages)
  std::filesystem::path dir;      ///< where checkpoint.safetensors and history.csv live
  std::int64_t epochs = 1;
  bool resume = true;
  std::int64_t stop_after_steps = 0;  ///< > 0: behave as if interrupted after this many steps (tests)
  Device device = kCPU;               ///< where the batches go before `step` sees them (the modules' device)
  /// `step` runs inside a gkd::Autocast scope of this precision; f16 also scales the loss with a
  /// gkd::GradScaler (checkpointed), which skips the steps whose gradients overflow.
  Precision precision = Precision::f32;
};

namespace detail {

/// `b` with its tensors on `device` (b itself on the host).
inline data::Batch batch_on(const data::Batch& b, Device device) {
  data::Batch out = b;
  const auto move = [device](Tensor<float>& t) {
    if (t.defined()) t = t.to(device);
  };
  move(out.images), move(out.masks), move(out.fov);
  for (auto& t : out.view_images) move(t);
  for (auto& t : out.view_masks) move(t);
  return out;
}

inline std::string history_csv(const StageResult& r) {
  std::ostringstream out;
  out.precision(9);
  out << "step,epoch,lr";
  for (const auto& t : r.terms) out << ',' << t;
  out << '\n';
  for (const auto& row : r.history) {
    out << row.step << ',' << row.epoch << ',' << row.lr;
    for (double v : row.values) out << ',' << v;
    out << '\n';
  }
  return out.str();
}

/// Reads history.csv back (rows with step <= `up_to` only).
inline void read_history(const std::filesystem::path& path, std::int64_t up_to, StageResult& r) {
  std::ifstream in(path);
  GKD_CHECK(in.good(), "run_stage", path.string() << ": the checkpoint has no history file beside it");
  std::string line, cell;
  std::getline(in, line);
  std::istringstream header(line);
  for (int i = 0; std::getline(header, cell, ','); ++i)
    if (i >= 3) r.terms.push_back(cell);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream row(line);
    HistoryRow h;
    std::vector<double> cells;
    while (std::getline(row, cell, ',')) cells.push_back(std::stod(cell));
    GKD_CHECK(cells.size() == r.terms.size() + 3, "run_stage", path.string() << ": malformed row '" << line << "'");
    h.step = static_cast<std::int64_t>(cells[0]), h.epoch = static_cast<std::int64_t>(cells[1]), h.lr = cells[2];
    h.values.assign(cells.begin() + 3, cells.end());
    if (h.step <= up_to) r.history.push_back(std::move(h));
  }
}

}  // namespace detail

/// Runs (or resumes) a stage; see the file comment.
/// @param state       the trainable modules' state_dict (parameters and buffers), checkpointed
/// @param generators  dropout generators of the trainable modules (`dropout_generators`), checkpointed
/// @param lr_at       the learning rate of an epoch (0-based)
/// @param make_loader a loader for `options.epochs` epochs starting at the given global batch
/// @param step        the loss terms of one batch (autograd recorded); run_stage does backward and step
/// @throws Interrupted after checkpointing on request; gkd::Error on non-finite losses or bad checkpoints
template <Real T>
StageResult run_stage(const StageOptions& options, const NamedTensors<T>& state, Optimizer<T>& optimizer,
                      const std::vector<Generator*>& generators, const std::function<double(std::int64_t)>& lr_at,
                      const std::function<std::unique_ptr<data::BatchLoader>(std::int64_t)>& make_loader,
                      const std::function<LossTerms<T>(const data::Batch&)>& step, const StageProgress& progress = {}) {
  std::filesystem::create_directories(options.dir);
  const auto ckpt = options.dir / "checkpoint.safetensors", history = options.dir / "history.csv";
  StageResult result;
  GradScaler<T> scaler({.enabled = options.precision == Precision::f16});
  if (options.resume && std::filesystem::exists(ckpt)) {
    const io::LoadedCheckpoint loaded = io::load_checkpoint(ckpt, state, &optimizer);
    scaler.read_state(loaded.state.user);
    result.steps = loaded.state.step;
    for (std::size_t i = 0; i < generators.size(); ++i) {
      auto it = loaded.state.generators.find("dropout." + std::to_string(i));
      GKD_CHECK(it != loaded.state.generators.end(), "run_stage",
                ckpt.string() << ": no state for dropout generator " << i << " (saved by a different network?)");
      *generators[i] = it->second;
    }
    detail::read_history(history, result.steps, result);
    result.resumed = true;
  }
  const auto save = [&] {
    io::write_text_atomically(history, detail::history_csv(result));
    io::TrainingState s{.step = result.steps, .epoch = result.history.empty() ? 0 : result.history.back().epoch};
    for (std::size_t i = 0; i < generators.size(); ++i) s.generators.emplace("dropout." + std::to_string(i), *generators[i]);
    scaler.write_state(s.user);
    io::save_checkpoint(ckpt, state, &optimizer, s);
  };

  std::unique_ptr<data::BatchLoader> loader = make_loader(result.steps);
  const std::int64_t per_epoch = loader->batches_per_epoch();
  std::int64_t done_here = 0, current_epoch = -1;
  while (auto batch = loader->next()) {
    if (batch->epoch != current_epoch) {
      current_epoch = batch->epoch;
      for (std::size_t g = 0; g < optimizer.num_groups(); ++g) optimizer.set_lr(g, lr_at(current_epoch));
      if (progress.epoch_begin) progress.epoch_begin(current_epoch, options.epochs, per_epoch);
    }
    optimizer.zero_grad();
    const LossTerms<T> terms = [&] {
      Autocast scope(options.precision);
      return step(options.device.is_cpu() ? *batch : detail::batch_on(*batch, options.device));
    }();
    const Tensor<T> total = terms.total();
    auto values = terms.values();
    values.insert(values.begin(), {"total", static_cast<double>(total.item())});
    terms.check_finite(options.name, batch->step);
    GKD_CHECK(std::isfinite(values.front().second), "training",
              "stage '" << options.name << "', step " << batch->step << ": the total loss is " << values.front().second);
    scaler.scale(total).backward();
    scaler.step(optimizer);
    scaler.update();
    if (result.terms.empty())
      for (const auto& [name, v] : values) result.terms.push_back(name);
    HistoryRow row{.step = batch->step + 1, .epoch = batch->epoch, .lr = optimizer.lr(0), .values = {}};
    for (const auto& [name, v] : values) row.values.push_back(v);
    GKD_CHECK(row.values.size() == result.terms.size(), "run_stage",
              "stage '" << options.name << "': the loss terms changed between steps (" << row.values.size() << " vs "
                        << result.terms.size() << ")");
    result.history.push_back(std::move(row));
    result.steps = batch->step + 1, ++done_here;
    if (progress.step) progress.step(batch->batch, values);
    const bool epoch_done = batch->batch + 1 == per_epoch;
    if (epoch_done && progress.epoch_end) progress.epoch_end();
    const bool stop = interrupt_requested() || (options.stop_after_steps > 0 && done_here >= options.stop_after_steps);
    if (epoch_done || stop) save();
    if (stop)
      throw Interrupted("stage '" + options.name + "' stopped at step " + std::to_string(result.steps) + "; checkpoint " +
                        ckpt.string());
  }
  return result;
}

}  // namespace gkd::distill
