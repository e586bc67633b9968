// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Training checkpoints: model state, optimizer state, step/epoch, random generators and user
/// strings in one safetensors file, written atomically.
///
/// Layout (a plain safetensors file that Python can open):
/// - tensors `model.<name>` (parameters and buffers) and `optimizer.<flat index>.<buffer>`
///   (e.g. `optimizer.3.exp_avg`);
/// - metadata `gkd.format` = `gkd.checkpoint.v1`, `step`, `epoch`, `optimizer` (its name),
///   `optimizer.num_params`, `optimizer.group_sizes` ("4,2"), per group `optimizer.group.<g>.lr`,
///   `.weight_decay` and optionally `.initial_lr` (shortest round-trip decimal, so doubles come
///   back bit for bit), per parameter `optimizer.param.<i>.step`, `rng.<name>` (the generator's
///   full Mersenne-Twister state) and `user.<key>`.
///
/// Loading restores everything or throws: the model through `load_into` (strict by default;
/// non-strict loads what matches and reports the rest), the optimizer only when its type and
/// group structure match and every state buffer has its parameter's shape (validated before
/// anything is written). With the same data order, a resumed run continues bit for bit.
///
/// Example:
/// @code
///   gkd::io::TrainingState state{.step = 100, .epoch = 2, .generators = {{"data", gen}}};
///   gkd::io::save_checkpoint("ckpt.safetensors", model_state, &opt, state);
///   auto resumed = gkd::io::load_checkpoint("ckpt.safetensors", model_state, &opt);
///   gen = resumed.state.generators.at("data");
/// @endcode
#include <charconv>
#include <cmath>
#include <functional>
#include <optional>
#include <cstdint>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "gkd/core/random.hpp"
#include "gkd/io/safetensors.hpp"
#include "gkd/optim/optimizer.hpp"

namespace gkd::io {

inline constexpr const char* kCheckpointFormat = "gkd.checkpoint.v1";

/// Scalars that travel with a checkpoint.
struct TrainingState {
  std::int64_t step = 0;
  std::int64_t epoch = 0;
  /// Named random generators (data order, augmentation, dropout), restored exactly.
  std::map<std::string, Generator> generators = {};
  /// Free-form strings (configuration, notes).
  std::map<std::string, std::string> user = {};
};

/// What `load_checkpoint` restored.
struct LoadedCheckpoint {
  TrainingState state;
  LoadReport model;  ///< how the model tensors matched
};

namespace detail {

inline constexpr const char* kCkptOp = "checkpoint";

inline std::string format_double(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

inline const std::string& meta_at(const Metadata& m, const std::string& key, const std::string& source) {
  auto it = m.find(key);
  GKD_CHECK(it != m.end(), kCkptOp, source << ": metadata has no '" << key << "'");
  return it->second;
}

inline double parse_double(const std::string& text, const std::string& key, const std::string& source) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  GKD_CHECK(ec == std::errc() && end == text.data() + text.size(), kCkptOp,
            source << ": metadata '" << key << "' = '" << text << "' is not a number");
  return v;
}

inline std::int64_t parse_int(const std::string& text, const std::string& key, const std::string& source) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  GKD_CHECK(ec == std::errc() && end == text.data() + text.size(), kCkptOp,
            source << ": metadata '" << key << "' = '" << text << "' is not an integer");
  return v;
}

template <Real T>
std::string group_sizes(const Optimizer<T>& opt) {
  std::string out;
  for (std::size_t g = 0; g < opt.num_groups(); ++g) {
    if (g) out += ',';  // (appending pieces: GCC 12 mis-warns -Wrestrict on "literal" + std::string)
    out += std::to_string(opt.group(g).params.size());
  }
  return out;
}

}  // namespace detail

/// The file bytes of a checkpoint (see the file comment for the layout).
/// @param optimizer may be null (model only)
template <Real T>
std::vector<std::byte> serialize_checkpoint(const NamedTensors<T>& model, const Optimizer<T>* optimizer,
                                            const TrainingState& state) {
  NamedTensors<T> tensors;
  Metadata meta{{"gkd.format", kCheckpointFormat},
                {"step", std::to_string(state.step)},
                {"epoch", std::to_string(state.epoch)}};
  for (const auto& [name, t] : model) tensors.push_back({"model." + name, t});
  if (optimizer) {
    const Optimizer<T>& opt = *optimizer;
    meta["optimizer"] = opt.name();
    meta["optimizer.num_params"] = std::to_string(opt.num_params());
    meta["optimizer.group_sizes"] = detail::group_sizes(opt);
    for (std::size_t g = 0; g < opt.num_groups(); ++g) {
      const std::string key = "optimizer.group." + std::to_string(g) + ".";
      meta[key + "lr"] = detail::format_double(opt.group(g).lr);
      meta[key + "weight_decay"] = detail::format_double(opt.group(g).weight_decay);
      if (opt.group(g).initial_lr) meta[key + "initial_lr"] = detail::format_double(*opt.group(g).initial_lr);
    }
    for (std::size_t i = 0; i < opt.num_params(); ++i)
      meta["optimizer.param." + std::to_string(i) + ".step"] = std::to_string(opt.state(i).step);
    for (const auto& [name, t] : opt.named_state()) tensors.push_back({"optimizer." + name, t});
  }
  for (const auto& [name, gen] : state.generators) {
    std::ostringstream out;
    Generator copy = gen;
    out << copy.engine();
    meta["rng." + name] = out.str();
  }
  for (const auto& [key, value] : state.user) meta["user." + key] = value;
  return serialize_safetensors(tensors, meta);
}

/// Writes a checkpoint to `path` atomically: a crash at any point leaves the previous file intact.
/// @param before_rename test hook, see write_file_atomically
template <Real T>
void save_checkpoint(const std::filesystem::path& path, const NamedTensors<T>& model, const Optimizer<T>* optimizer,
                     const TrainingState& state, const std::function<void()>& before_rename = {}) {
  write_file_atomically(path, serialize_checkpoint(model, optimizer, state), before_rename);
}

/// Restores `optimizer`'s hyperparameters and per-parameter state from a parsed checkpoint.
/// @throws gkd::Error (before changing anything) if the optimizer's type, groups or parameter
///         shapes differ from the saved ones, or a state tensor is malformed
template <Real T>
void restore_optimizer(const StView& view, Optimizer<T>& opt) {
  using detail::kCkptOp;
  const Metadata& m = view.metadata;
  const std::string& src = view.source;
  const std::string& saved_name = detail::meta_at(m, "optimizer", src);
  GKD_CHECK(saved_name == opt.name(), kCkptOp,
            src << ": the checkpoint holds " << saved_name << " state, the optimizer is " << opt.name());
  const std::string& sizes = detail::meta_at(m, "optimizer.group_sizes", src);
  GKD_CHECK(sizes == detail::group_sizes(opt), kCkptOp,
            src << ": saved parameter groups have sizes {" << sizes << "}, the optimizer has {"
                << detail::group_sizes(opt) << "}");
  struct GroupValues {
    double lr, weight_decay;
    std::optional<double> initial_lr;
  };
  std::vector<GroupValues> groups;
  for (std::size_t g = 0; g < opt.num_groups(); ++g) {
    const std::string key = "optimizer.group." + std::to_string(g) + ".";
    GroupValues v{detail::parse_double(detail::meta_at(m, key + "lr", src), key + "lr", src),
                  detail::parse_double(detail::meta_at(m, key + "weight_decay", src), key + "weight_decay", src),
                  std::nullopt};
    if (auto it = m.find(key + "initial_lr"); it != m.end())
      v.initial_lr = detail::parse_double(it->second, key + "initial_lr", src);
    auto valid = [](double x) { return std::isfinite(x) && x >= 0; };
    GKD_CHECK(valid(v.lr) && valid(v.weight_decay) && (!v.initial_lr || valid(*v.initial_lr)), kCkptOp,
              src << ": group " << g << " has a negative or non-finite lr, weight_decay or initial_lr");
    groups.push_back(v);
  }
  std::vector<ParamState<T>> states(opt.num_params());
  for (std::size_t i = 0; i < states.size(); ++i) {
    const std::string key = "optimizer.param." + std::to_string(i) + ".step";
    states[i].step = detail::parse_int(detail::meta_at(m, key, src), key, src);
    GKD_CHECK(states[i].step >= 0, kCkptOp, src << ": metadata '" << key << "' is negative");
  }
  const std::string prefix = "optimizer.";
  for (const auto& e : view.entries) {
    if (e.name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = e.name.substr(prefix.size());
    const auto dot = rest.find('.');
    std::size_t index = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + (dot == std::string::npos ? 0 : dot), index);
    GKD_CHECK(dot != std::string::npos && dot > 0 && ec == std::errc() && end == rest.data() + dot &&
                  dot + 1 < rest.size(),
              kCkptOp, src << ": tensor '" << e.name << "' is not named optimizer.<index>.<buffer>");
    GKD_CHECK(index < states.size(), kCkptOp,
              src << ": tensor '" << e.name << "' refers to parameter " << index << " of " << states.size());
    const Tensor<T>& param = opt.param(index);
    GKD_CHECK(e.shape == param.shape(), kCkptOp,
              src << ": tensor '" << e.name << "' has shape " << to_string(e.shape) << ", parameter " << index
                  << " has shape " << to_string(param.shape()));
    states[index].buffers.emplace(rest.substr(dot + 1), read_tensor<T>(view, e));
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    opt.set_lr(g, groups[g].lr);
    opt.set_weight_decay(g, groups[g].weight_decay);
    if (groups[g].initial_lr) opt.set_initial_lr(g, *groups[g].initial_lr);
  }
  for (std::size_t i = 0; i < states.size(); ++i) opt.state(i) = std::move(states[i]);
}

/// Restores a checkpoint written by `save_checkpoint` into `model` (in place) and `optimizer`
/// (when not null), and returns the step, epoch, generators and user strings.
/// @param model_options strict by default; `{.strict = false}` loads the matching model tensors
///        and reports the rest (the "model." prefix is applied for you)
/// @throws gkd::Error naming the file and what is wrong; the optimizer is validated in full
///         before the model or the optimizer is changed
template <Real T>
LoadedCheckpoint load_checkpoint(const std::filesystem::path& path, const NamedTensors<T>& model,
                                 Optimizer<T>* optimizer, LoadOptions model_options = {}) {
  using detail::kCkptOp;
  const std::vector<std::byte> bytes = read_file(path);
  const StView view = parse_safetensors(bytes, path.string());
  const std::string& src = view.source;
  auto format = view.metadata.find("gkd.format");
  GKD_CHECK(format != view.metadata.end() && format->second == kCheckpointFormat, kCkptOp,
            src << ": not a gkd checkpoint (metadata 'gkd.format' is "
                << (format == view.metadata.end() ? std::string("absent") : "'" + format->second + "'") << ", expected '"
                << kCheckpointFormat << "')");
  LoadedCheckpoint out;
  out.state.step = detail::parse_int(detail::meta_at(view.metadata, "step", src), "step", src);
  out.state.epoch = detail::parse_int(detail::meta_at(view.metadata, "epoch", src), "epoch", src);
  for (const auto& [key, value] : view.metadata) {
    if (key.rfind("rng.", 0) == 0) {
      Generator gen;
      std::istringstream in(value);
      in >> gen.engine();
      GKD_CHECK(!in.fail(), kCkptOp, src << ": metadata '" << key << "' is not a generator state");
      out.state.generators.emplace(key.substr(4), gen);
    } else if (key.rfind("user.", 0) == 0) {
      out.state.user.emplace(key.substr(5), value);
    }
  }
  model_options.prefix = "model.";
  if (optimizer) {
    // Check the model's keys first, then restore the optimizer (which validates in full before
    // writing), so that a failing strict load changes nothing.
    if (model_options.strict) {
      const LoadReport probe = match_keys(view, model, model_options.prefix);
      GKD_CHECK(probe.ok(), kCkptOp, src << ": strict load failed (nothing was loaded): " << probe.str());
    }
    restore_optimizer(view, *optimizer);
  }
  out.model = load_into(view, model, model_options);
  return out;
}

}  // namespace gkd::io
