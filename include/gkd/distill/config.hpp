// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The configuration of a GKD pipeline run: every hyper-parameter of every stage, two presets, JSON
/// reading and writing, and `key=value` overrides.
///
/// Contract
/// - `PipelineConfig` holds plain values; `config_fields(cfg, f)` names every one of them as a dotted key
///   ("teacher.epochs", "gkd.graph_tau", ...). JSON output, JSON input and overrides all go through that
///   one list, so they always agree. `to_json` writes every field (the resolved configuration saved beside
///   the results); `apply_json` sets only the keys present and rejects unknown keys and wrong types, naming
///   the key and the file; `apply_override("gkd.inter=0.5")` parses the value by the field's type.
/// - Presets: `paper` (networks at width 1, 128x128 patches, Adam 3e-3 with the official step decay,
///   weight decay 2e-4, 300 epochs, CE only, for a GPU) and `cpu` (teacher width 1/8, student width 0.35,
///   64x64 patches of 128x128 images, cosine decay, CE + Dice, 30/20/10/10 epochs for teacher / students /
///   P-SAE / MSAN: the default `gkd all` finishes in about 7 minutes on 2 cores).
/// - `validate(cfg)` checks ranges and cross-field constraints (patch divisible by 32, known method,
///   ...) and throws gkd::Error naming the field.
///
/// The loss formulations behind the knobs are documented where they are computed: ACT in act.hpp,
/// DCGD in dcgd.hpp, DICD in dicd.hpp, the baselines in baselines.hpp.
///
/// @code
/// gkd::distill::PipelineConfig cfg = gkd::distill::preset("cpu");
/// gkd::distill::apply_json(cfg, R"({"gkd": {"inter": 0.5}, "epochs": {"student": 20}})", "inline");
/// gkd::distill::apply_override(cfg, "distill.method=gkd");
/// gkd::distill::validate(cfg);
/// std::string resolved = gkd::distill::to_json(cfg);
/// @endcode
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "gkd/core/autocast.hpp"
#include "gkd/core/device.hpp"
#include "gkd/core/error.hpp"
#include "gkd/io/json.hpp"

namespace gkd::distill {

/// Where the images come from and how they are cut.
struct DataConfig {
  std::string source = "retina_c";  ///< a synthetic domain (retina_a/b/c, ct_venous, ct_plain) or a data folder
  std::vector<std::string> targets = {"retina_a", "retina_b"};  ///< evaluation domains or folders (source's test split is always added)
  std::int64_t image_size = 128;    ///< side of the generated synthetic images (folders: images are resized so the short side is this)
  std::int64_t patch = 64;          ///< training patch side (a multiple of 32)
  std::int64_t train_count = 48;    ///< synthetic training images
  std::int64_t test_count = 12;     ///< synthetic test images per domain
  std::int64_t samples_per_epoch = 96;  ///< patches per epoch
  std::int64_t batch = 8;
  double foreground_probability = 0.5;  ///< chance that a patch is centred on a foreground pixel
  bool clahe = true;                ///< fundus: green channel + CLAHE (method.md §9.3)
  std::int64_t workers = 1;         ///< loader threads (0: synchronous)
};

/// Network widths (channel multipliers of the exact architectures).
struct NetworkConfig {
  double teacher_width = 1.0;  ///< UnetSKA2; the P-SAE encoder copies it, so it has the same width
  double student_width = 1.0;  ///< MobileNetV2-UNet
  std::int64_t msan_hidden = 64;
};

/// The optimiser shared by every stage (method.md §2.3).
struct OptimConfig {
  double lr = 3e-3;
  double weight_decay = 2e-4;
  std::string schedule = "step";  ///< "step" (official 3e-3/3e-4/3e-5/5e-6 at 1/6, 1/3, 2/3 of the epochs), "cosine", "constant"
};

struct StageEpochs {
  std::int64_t teacher = 300, student = 300, psae = 15, msan = 50;
};

/// Stage 0 / scratch student: cross-entropy plus optional soft Dice.
struct SegmentationConfig {
  double dice_weight = 0.0;
};

/// Stage 2, Alignment Consistency Training (act.hpp). A weight of 0 switches the term off.
struct ActConfig {
  double rec = 1.0, sem = 1.0, align = 1.0, cross = 1.0;
  double cross_tau = 1.0;
};

/// Stage 3 GKD terms (dcgd.hpp, dicd.hpp). A weight of 0 switches the term off.
struct GkdConfig {
  double intra = 1.0, inter = 1.0, cross = 1.0;
  double graph_tau = 0.5;
  std::string graph_loss = "kl";  ///< "kl" (relation KL between the graphs) or "infonce" (teacher-student contrastive)
  std::int64_t views = 2;         ///< K augmented views per sample (the anchor is the un-augmented patch)
  double cross_tau = 4.0;
};

/// The baselines' weights and temperatures (baselines.hpp).
struct BaselineConfig {
  double kd_tau = 4.0, kd_weight = 1.0;
  double at_weight = 1.0e3, at_p = 2.0;
  double fsp_weight = 1.0;
  double skd_pixel_weight = 1.0, skd_pair_weight = 1.0;
  double ifvd_weight = 1.0;
  double cwd_tau = 4.0, cwd_weight = 1.0;
  double emkd_pmd = 0.1, emkd_imd = 0.9, emkd_rad = 0.9;
};

struct PipelineConfig {
  std::string preset = "cpu";
  std::uint64_t seed = 1;
  std::int64_t threads = 2;
  std::string device = "cpu";  ///< where the networks train and predict: "cpu", "cuda" or "cuda:N" (needs gkd::cuda)
  std::string precision = "f32";  ///< training's convolutions and matrix products: "f32", "bf16" or "f16" (autocast)
  std::string method = "gkd";  ///< distil: scratch, gkd, intra, inter, cross, intra+inter, kd, at, fsp, skd, ifvd, cwd, emkd
  DataConfig data;
  NetworkConfig nets;
  OptimConfig optim;
  StageEpochs epochs;
  SegmentationConfig seg;
  ActConfig act;
  GkdConfig gkd;
  BaselineConfig baseline;
  std::int64_t fsd_patches = 4;  ///< latent vectors per evaluation image for FSD (patch-size tiles)
  std::int64_t overlays = 3;     ///< prediction overlays saved per domain
};

/// The distillation methods `method` accepts.
inline const std::vector<std::string>& known_methods() {
  static const std::vector<std::string> m = {"scratch", "gkd", "intra", "inter", "cross", "intra+inter",
                                             "kd",      "at",  "fsp",   "skd",   "ifvd",  "cwd", "emkd"};
  return m;
}

/// Calls `f(key, field)` for every field, in a fixed order (the JSON order).
template <class F>
void config_fields(PipelineConfig& c, F&& f) {
  f("preset", c.preset), f("seed", c.seed), f("threads", c.threads), f("device", c.device);
  f("precision", c.precision);
  f("method", c.method);
  f("data.source", c.data.source), f("data.targets", c.data.targets), f("data.image_size", c.data.image_size);
  f("data.patch", c.data.patch), f("data.train_count", c.data.train_count), f("data.test_count", c.data.test_count);
  f("data.samples_per_epoch", c.data.samples_per_epoch), f("data.batch", c.data.batch);
  f("data.foreground_probability", c.data.foreground_probability), f("data.clahe", c.data.clahe);
  f("data.workers", c.data.workers);
  f("nets.teacher_width", c.nets.teacher_width), f("nets.student_width", c.nets.student_width);
  f("nets.msan_hidden", c.nets.msan_hidden);
  f("optim.lr", c.optim.lr), f("optim.weight_decay", c.optim.weight_decay), f("optim.schedule", c.optim.schedule);
  f("epochs.teacher", c.epochs.teacher), f("epochs.student", c.epochs.student), f("epochs.psae", c.epochs.psae);
  f("epochs.msan", c.epochs.msan);
  f("seg.dice_weight", c.seg.dice_weight);
  f("act.rec", c.act.rec), f("act.sem", c.act.sem), f("act.align", c.act.align), f("act.cross", c.act.cross);
  f("act.cross_tau", c.act.cross_tau);
  f("gkd.intra", c.gkd.intra), f("gkd.inter", c.gkd.inter), f("gkd.cross", c.gkd.cross);
  f("gkd.graph_tau", c.gkd.graph_tau), f("gkd.graph_loss", c.gkd.graph_loss), f("gkd.views", c.gkd.views);
  f("gkd.cross_tau", c.gkd.cross_tau);
  f("baseline.kd_tau", c.baseline.kd_tau), f("baseline.kd_weight", c.baseline.kd_weight);
  f("baseline.at_weight", c.baseline.at_weight), f("baseline.at_p", c.baseline.at_p);
  f("baseline.fsp_weight", c.baseline.fsp_weight);
  f("baseline.skd_pixel_weight", c.baseline.skd_pixel_weight), f("baseline.skd_pair_weight", c.baseline.skd_pair_weight);
  f("baseline.ifvd_weight", c.baseline.ifvd_weight);
  f("baseline.cwd_tau", c.baseline.cwd_tau), f("baseline.cwd_weight", c.baseline.cwd_weight);
  f("baseline.emkd_pmd", c.baseline.emkd_pmd), f("baseline.emkd_imd", c.baseline.emkd_imd);
  f("baseline.emkd_rad", c.baseline.emkd_rad);
  f("fsd_patches", c.fsd_patches), f("overlays", c.overlays);
}

/// `paper` or `cpu` (see the file comment).
/// @throws gkd::Error for another name
inline PipelineConfig preset(const std::string& name) {
  PipelineConfig c;
  c.preset = name;
  if (name == "paper") {
    c.data.image_size = 512, c.data.patch = 128, c.data.train_count = 200, c.data.test_count = 40;
    c.data.samples_per_epoch = 2000, c.data.batch = 16, c.data.workers = 4;
    c.threads = 16;
    return c;
  }
  GKD_CHECK(name == "cpu", "config", "unknown preset '" << name << "' (known: paper, cpu)");
  c.nets.teacher_width = 0.125, c.nets.student_width = 0.35;
  c.epochs = {.teacher = 30, .student = 20, .psae = 10, .msan = 10};
  c.optim.schedule = "cosine";
  c.seg.dice_weight = 1.0;  // with 8-16% foreground and few steps, CE alone leaves the teacher predicting background
  return c;
}

namespace detail {

inline std::string json_value(const std::string& v) { return json::quote(v); }
inline std::string json_value(bool v) { return v ? "true" : "false"; }
inline std::string json_value(std::int64_t v) { return std::to_string(v); }
inline std::string json_value(std::uint64_t v) { return std::to_string(v); }
inline std::string json_value(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}
inline std::string json_value(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out.append(i ? ", " : "").append(json::quote(v[i]));
  return out + "]";
}

/// Parses `text` into `field` by the field's type; `where` names the key and its origin in errors.
inline void parse_value(std::string_view text, std::string& field, const std::string&) { field = text; }
inline void parse_value(std::string_view text, bool& field, const std::string& where) {
  GKD_CHECK(text == "true" || text == "false", "config", where << ": expected true or false, got '" << text << "'");
  field = text == "true";
}
template <class Int>
  requires std::is_integral_v<Int>
void parse_value(std::string_view text, Int& field, const std::string& where) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(std::string(text), &used);
  } catch (...) {
    used = 0;
  }
  GKD_CHECK(used == text.size() && !text.empty() && (std::is_signed_v<Int> || v >= 0), "config",
            where << ": expected " << (std::is_signed_v<Int> ? "an integer" : "a non-negative integer") << ", got '"
                  << text << "'");
  field = static_cast<Int>(v);
}
inline void parse_value(std::string_view text, double& field, const std::string& where) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(std::string(text), &used);
  } catch (...) {
    used = 0;
  }
  GKD_CHECK(used == text.size() && !text.empty() && std::isfinite(v), "config",
            where << ": expected a finite number, got '" << text << "'");
  field = v;
}
inline void parse_value(std::string_view text, std::vector<std::string>& field, const std::string&) {
  field.clear();
  std::string item;
  std::istringstream in{std::string(text)};
  while (std::getline(in, item, ','))
    if (!item.empty()) field.push_back(item);
}

inline void set_from_json(const json::Value& v, std::string& field, const std::string& where) {
  GKD_CHECK(v.is_string(), "config", where << ": expected a string, got " << json::kind_name(v.kind));
  field = v.text;
}
inline void set_from_json(const json::Value& v, std::vector<std::string>& field, const std::string& where) {
  GKD_CHECK(v.is_array(), "config", where << ": expected an array of strings, got " << json::kind_name(v.kind));
  field.clear();
  for (const auto& item : v.items) {
    GKD_CHECK(item.is_string(), "config", where << ": expected an array of strings, found " << json::kind_name(item.kind));
    field.push_back(item.text);
  }
}
inline void set_from_json(const json::Value& v, bool& field, const std::string& where) {
  GKD_CHECK(v.kind == json::Value::Kind::boolean, "config", where << ": expected true or false, got " << json::kind_name(v.kind));
  field = v.boolean;
}
template <class Number>
  requires std::is_arithmetic_v<Number>
void set_from_json(const json::Value& v, Number& field, const std::string& where) {
  GKD_CHECK(v.kind == json::Value::Kind::number, "config", where << ": expected a number, got " << json::kind_name(v.kind));
  parse_value(v.text, field, where);
}

}  // namespace detail

/// Every field as a pretty JSON object with nested sections ("data": {...}).
inline std::string to_json(PipelineConfig c) {
  std::ostringstream out;
  std::string section;
  bool first = true;
  out << "{";
  config_fields(c, [&](const std::string& key, const auto& field) {
    const auto dot = key.find('.');
    const std::string sec = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
    if (sec != section) {
      if (!section.empty()) out << "\n  }";
      if (!sec.empty()) out << (first ? "" : ",") << "\n  " << json::quote(sec) << ": {", first = true;
      else first = false;
      section = sec;
    }
    out << (first ? "" : ",") << (sec.empty() ? "\n  " : "\n    ") << json::quote(name) << ": " << detail::json_value(field);
    first = false;
  });
  if (!section.empty()) out << "\n  }";
  out << "\n}\n";
  return out.str();
}

/// Sets the fields present in the JSON text (nested sections or dotted keys).
/// @throws gkd::Error naming `source` and the key for unknown keys, wrong types or malformed JSON
inline void apply_json(PipelineConfig& c, std::string_view text, const std::string& source) {
  const json::Value root = json::parse(text, source);
  GKD_CHECK(root.is_object(), "config", source << ": expected a JSON object at the top level");
  std::vector<std::pair<std::string, const json::Value*>> flat;
  for (std::size_t i = 0; i < root.keys.size(); ++i) {
    const json::Value& v = root.items[i];
    if (v.is_object())
      for (std::size_t j = 0; j < v.keys.size(); ++j) flat.emplace_back(root.keys[i] + "." + v.keys[j], &v.items[j]);
    else
      flat.emplace_back(root.keys[i], &v);
  }
  for (const auto& entry : flat) {
    const std::string& key = entry.first;
    const json::Value* value = entry.second;
    bool found = false;
    config_fields(c, [&](const std::string& k, auto& field) {
      if (k != key) return;
      found = true;
      detail::set_from_json(*value, field, source + ": '" + key + "'");
    });
    GKD_CHECK(found, "config", source << ": unknown key '" << key << "'");
  }
}

/// Applies one `key=value` override (lists: comma-separated).
/// @throws gkd::Error for a malformed override, an unknown key or a value of the wrong type
inline void apply_override(PipelineConfig& c, std::string_view assignment) {
  const auto eq = assignment.find('=');
  GKD_CHECK(eq != std::string_view::npos && eq > 0, "config", "override '" << assignment << "' is not key=value");
  const std::string key(assignment.substr(0, eq));
  const std::string_view value = assignment.substr(eq + 1);
  bool found = false;
  config_fields(c, [&](const std::string& k, auto& field) {
    if (k != key) return;
    found = true;
    detail::parse_value(value, field, "override '" + key + "'");
  });
  GKD_CHECK(found, "config", "unknown key '" << key << "' in override '" << assignment << "'");
}

/// The keys whose values differ between two configurations, except `ignored` ones.
inline std::vector<std::string> config_differences(PipelineConfig a, PipelineConfig b, const std::vector<std::string>& ignored = {}) {
  std::vector<std::pair<std::string, std::string>> left;
  config_fields(a, [&](const std::string& key, const auto& field) { left.emplace_back(key, detail::json_value(field)); });
  std::vector<std::string> out;
  std::size_t i = 0;
  config_fields(b, [&](const std::string& key, const auto& field) {
    if (left[i++].second != detail::json_value(field) && std::find(ignored.begin(), ignored.end(), key) == ignored.end())
      out.push_back(key);
  });
  return out;
}

/// The Device that `device` names ("cpu", "cuda", "cuda:N"). @throws gkd::Error for anything else
inline Device run_device(const PipelineConfig& c) {
  if (c.device == "cpu") return kCPU;
  if (c.device == "cuda") return cuda_device(0);
  int index = -1;
  if (c.device.rfind("cuda:", 0) == 0) {
    const char* first = c.device.data() + 5;
    const char* last = c.device.data() + c.device.size();
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || end != last) index = -1;
  }
  GKD_CHECK(index >= 0, "config", "device must be cpu, cuda or cuda:N, got '" << c.device << "'");
  return cuda_device(index);
}

/// The Precision that `precision` names ("f32", "bf16", "f16"). @throws gkd::Error for anything else
inline Precision run_precision(const PipelineConfig& c) {
  for (const Precision p : {Precision::f32, Precision::bf16, Precision::f16})
    if (c.precision == to_string(p)) return p;
  GKD_FAIL("config", "precision must be f32, bf16 or f16, got '" << c.precision << "'");
  return Precision::f32;  // not reached
}

/// Checks ranges and cross-field constraints.
/// @throws gkd::Error naming the first invalid field
inline void validate(const PipelineConfig& c) {
  run_device(c);
  run_precision(c);
  auto positive = [](const char* key, double v) { GKD_CHECK(v > 0 && std::isfinite(v), "config", key << " must be > 0, got " << v); };
  auto non_negative = [](const char* key, double v) {
    GKD_CHECK(v >= 0 && std::isfinite(v), "config", key << " must be >= 0, got " << v);
  };
  GKD_CHECK(c.data.patch >= 32 && c.data.patch % 32 == 0, "config",
            "data.patch must be a positive multiple of 32 (the student's stride), got " << c.data.patch);
  GKD_CHECK(c.data.image_size >= c.data.patch, "config",
            "data.image_size (" << c.data.image_size << ") must be at least data.patch (" << c.data.patch << ")");
  GKD_CHECK(c.data.batch >= 1 && c.data.samples_per_epoch >= c.data.batch, "config",
            "data.batch must be >= 1 and data.samples_per_epoch >= data.batch, got " << c.data.batch << " and "
                                                                                   << c.data.samples_per_epoch);
  GKD_CHECK(c.data.train_count >= 1 && c.data.test_count >= 1, "config", "data.train_count and data.test_count must be >= 1");
  GKD_CHECK(c.data.foreground_probability >= 0 && c.data.foreground_probability <= 1, "config",
            "data.foreground_probability must be in [0, 1], got " << c.data.foreground_probability);
  GKD_CHECK(c.data.workers >= 0 && c.threads >= 1, "config", "data.workers must be >= 0 and threads >= 1");
  positive("nets.teacher_width", c.nets.teacher_width), positive("nets.student_width", c.nets.student_width);
  GKD_CHECK(c.nets.msan_hidden >= 1, "config", "nets.msan_hidden must be >= 1");
  positive("optim.lr", c.optim.lr), non_negative("optim.weight_decay", c.optim.weight_decay);
  GKD_CHECK(c.optim.schedule == "step" || c.optim.schedule == "cosine" || c.optim.schedule == "constant", "config",
            "optim.schedule must be step, cosine or constant, got '" << c.optim.schedule << "'");
  for (auto [key, v] : {std::pair{"epochs.teacher", c.epochs.teacher}, {"epochs.student", c.epochs.student},
                        {"epochs.psae", c.epochs.psae}, {"epochs.msan", c.epochs.msan}})
    GKD_CHECK(v >= 1, "config", key << " must be >= 1, got " << v);
  non_negative("seg.dice_weight", c.seg.dice_weight);
  non_negative("act.rec", c.act.rec), non_negative("act.sem", c.act.sem), non_negative("act.align", c.act.align);
  non_negative("act.cross", c.act.cross), positive("act.cross_tau", c.act.cross_tau);
  non_negative("gkd.intra", c.gkd.intra), non_negative("gkd.inter", c.gkd.inter), non_negative("gkd.cross", c.gkd.cross);
  positive("gkd.graph_tau", c.gkd.graph_tau), positive("gkd.cross_tau", c.gkd.cross_tau);
  GKD_CHECK(c.gkd.graph_loss == "kl" || c.gkd.graph_loss == "infonce", "config",
            "gkd.graph_loss must be kl or infonce, got '" << c.gkd.graph_loss << "'");
  GKD_CHECK(c.gkd.views >= 1, "config", "gkd.views must be >= 1 (the graphs need augmented views), got " << c.gkd.views);
  positive("baseline.kd_tau", c.baseline.kd_tau), positive("baseline.cwd_tau", c.baseline.cwd_tau);
  GKD_CHECK(c.fsd_patches >= 1 && c.overlays >= 0, "config", "fsd_patches must be >= 1 and overlays >= 0");
  bool known = false;
  for (const auto& m : known_methods()) known = known || m == c.method;
  GKD_CHECK(known, "config", "method '" << c.method << "' is not one of scratch, gkd, intra, inter, cross, intra+inter, "
                                                     "kd, at, fsp, skd, ifvd, cwd, emkd");
}

}  // namespace gkd::distill
