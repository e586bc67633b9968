// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The whole GKD pipeline on one run folder, and its outputs:
///
///   <run>/config.json                       the resolved configuration
///   <run>/<stage>/model.safetensors         trained weights (teacher, student_scratch, psae, msan, student_<method>)
///   <run>/<stage>/checkpoint.safetensors    resumable training state; history.csv; loss.png (every loss term per step)
///   <run>/metrics.json, metrics.csv         per model and domain: Acc, Se, Sp, F1 (= Dice), mIoU, AUC, FSD
///   <run>/overlays/<model>/<domain>/*.png   [image | ground truth | prediction | TP/FP/FN overlay]
///   <run>/report.md                         the cross-domain table of every model side by side, curves, overlays
///
/// Evaluation domains are the source's test split and every `data.targets` entry (their test split). FSD
/// (method.md §8, [INFER] choice of what is compared) is reported twice per model and domain:
/// `fsd_source` = FSD between the model's latent codes on the source test split and on this domain
/// (domain shift of the representation; 0 on the source itself), and `fsd_teacher` = FSD between the
/// model's and the teacher's codes on this domain. Codes are the frozen MSAN encoders' vectors (TAN for the
/// teacher, SAN for students), so they are comparable across models.
/// @code
///   gkd::distill::RunContext run{.cfg = cfg, .dir = "runs/demo"};
///   auto results = gkd::distill::run_pipeline(run, {"gkd", "kd"}, "my_experiment");  // trains what is missing
///   std::cout << "report: " << (run.dir / "report.md") << '\n';
/// @endcode
#include <deque>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <tuple>

#include "gkd/distill/domains.hpp"
#include "gkd/distill/evaluate.hpp"
#include "gkd/distill/stages.hpp"
#include "gkd/report/overlay.hpp"
#include "gkd/report/plot.hpp"

namespace gkd::distill {

/// One model on one domain.
struct ResultRow {
  std::string model, domain;
  bool source = false;
  metrics::SegmentationMetrics seg{};
  double auc = 0;
  double fsd_source = std::numeric_limits<double>::quiet_NaN();
  double fsd_teacher = std::numeric_limits<double>::quiet_NaN();
};

/// A model to evaluate: its prediction and its latent codes (both on [B, 1, P, P] batches).
struct EvaluatedModel {
  std::string name;
  std::function<Tensor<float>(const Tensor<float>&)> logits;
  std::function<Tensor<float>(const Tensor<float>&)> codes;
};

/// The domains evaluated: the source first, then the targets (duplicates of the source dropped).
inline std::vector<std::string> evaluation_domains(const PipelineConfig& c) {
  std::vector<std::string> out{c.data.source};
  for (const auto& t : c.data.targets)
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  return out;
}

namespace detail {

inline std::string metric(double v, int precision = 4) {
  if (!std::isfinite(v)) return "nan";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

inline std::string json_number(double v) { return std::isfinite(v) ? metric(v, 6) : "null"; }

inline std::string results_json(const std::vector<ResultRow>& rows) {
  std::ostringstream o;
  o << "[\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    o << "  {\"model\": " << json::quote(r.model) << ", \"domain\": " << json::quote(r.domain)
      << ", \"source\": " << (r.source ? "true" : "false") << ", \"accuracy\": " << json_number(r.seg.accuracy)
      << ", \"sensitivity\": " << json_number(r.seg.sensitivity) << ", \"specificity\": " << json_number(r.seg.specificity)
      << ", \"f1\": " << json_number(r.seg.f1) << ", \"mean_iou\": " << json_number(r.seg.mean_iou)
      << ", \"auc\": " << json_number(r.auc) << ", \"fsd_source\": " << json_number(r.fsd_source)
      << ", \"fsd_teacher\": " << json_number(r.fsd_teacher) << ", \"pixels\": " << r.seg.pixels << "}"
      << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  return o.str() + "]\n";
}

inline std::string results_csv(const std::vector<ResultRow>& rows) {
  std::ostringstream o;
  o << "model,domain,source,accuracy,sensitivity,specificity,f1,mean_iou,auc,fsd_source,fsd_teacher,pixels\n";
  for (const auto& r : rows)
    o << r.model << ',' << r.domain << ',' << (r.source ? 1 : 0) << ',' << metric(r.seg.accuracy, 6) << ','
      << metric(r.seg.sensitivity, 6) << ',' << metric(r.seg.specificity, 6) << ',' << metric(r.seg.f1, 6) << ','
      << metric(r.seg.mean_iou, 6) << ',' << metric(r.auc, 6) << ',' << metric(r.fsd_source, 6) << ','
      << metric(r.fsd_teacher, 6) << ',' << r.seg.pixels << '\n';
  return o.str();
}

inline std::string file_safe(std::string s) {
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') ch = '_';
  return s;
}

}  // namespace detail

/// Renders `<run>/<stage>/loss.png` from the stage's history (every term against the step, log y).
inline void save_loss_plot(const std::filesystem::path& stage_dir, const std::string& title) {
  StageResult r;
  detail::read_history(stage_dir / "history.csv", std::numeric_limits<std::int64_t>::max(), r);
  report::LinePlot plot;
  plot.title(title).x_label("step").y_label("loss").log_y(true);
  for (const auto& row : r.history)
    for (std::size_t k = 0; k < r.terms.size(); ++k) plot.append(r.terms[k], static_cast<double>(row.step), row.values[k]);
  plot.save_png(stage_dir / "loss.png", 800, 450);
}

/// Evaluates every model on every domain, saves overlays, and writes metrics.json / metrics.csv.
/// `models.front()` must be the teacher (the reference of `fsd_teacher`).
inline std::vector<ResultRow> evaluate_models(const RunContext& run, const std::vector<EvaluatedModel>& models) {
  const PipelineConfig& c = run.cfg;
  const std::vector<std::string> domains = evaluation_domains(c);
  std::vector<ResultRow> rows;
  std::map<std::string, Tensor<float>> source_codes, teacher_codes;
  for (const auto& domain : domains) {
    const auto test = load_domain(c, domain, Split::test);
    const std::string label = domain_label(domain);
    for (const auto& m : models) {
      const SegmentationEvaluation ev = evaluate_segmentation(*test, m.logits, c, c.overlays);
      ResultRow r{.model = m.name, .domain = label, .source = domain == c.data.source, .seg = ev.seg, .auc = ev.auc};
      const Tensor<float> codes = latent_codes(*test, m.codes, c);
      if (r.source) source_codes[m.name] = codes;
      if (&m == &models.front()) teacher_codes[label] = codes;
      r.fsd_source = metrics::frechet_distance(source_codes.at(m.name), codes);
      r.fsd_teacher = metrics::frechet_distance(teacher_codes.at(label), codes);
      const auto dir = run.dir / "overlays" / m.name / detail::file_safe(label);
      std::filesystem::create_directories(dir);
      for (std::size_t i = 0; i < ev.probabilities.size(); ++i) {
        const data::Sample s = test->get(std::int64_t(i));
        report::side_by_side(s.image, ev.probabilities[i], s.mask, s.fov,
                             m.name + " on " + label + ": " + s.name + ", Dice " +
                                 detail::metric(metrics::dice(ev.probabilities[i], s.mask, s.fov), 3))
            .save_png(dir / (detail::file_safe(s.name) + ".png"));
      }
      rows.push_back(r);
    }
  }
  io::write_text_atomically(run.dir / "metrics.json", detail::results_json(rows));
  io::write_text_atomically(run.dir / "metrics.csv", detail::results_csv(rows));
  return rows;
}

/// Writes `<run>/report.md`: the cross-domain F1 table, every metric, the training curves and overlays.
inline void write_report(const RunContext& run, const std::vector<ResultRow>& rows, const std::string& command) {
  const PipelineConfig& c = run.cfg;
  std::vector<std::string> models, domains;
  for (const auto& r : rows) {
    if (std::find(models.begin(), models.end(), r.model) == models.end()) models.push_back(r.model);
    if (std::find(domains.begin(), domains.end(), r.domain) == domains.end()) domains.push_back(r.domain);
  }
  const auto find = [&](const std::string& m, const std::string& d) -> const ResultRow& {
    return *std::find_if(rows.begin(), rows.end(), [&](const ResultRow& r) { return r.model == m && r.domain == d; });
  };
  std::ostringstream o;
  o << "# GKD run report\n\n"
    << "Command: `" << command << "`  \nPreset `" << c.preset << "`, seed " << c.seed << ", source `"
    << domain_label(c.data.source) << "`, patches " << c.data.patch << "x" << c.data.patch << ", teacher width "
    << c.nets.teacher_width << ", student width " << c.nets.student_width << ". Resolved configuration: `config.json`.\n\n"
    << "## Cross-domain segmentation (F1 = Dice of the vessels/liver, global over each test set)\n\n| model |";
  for (const auto& d : domains) o << ' ' << d << (find(models.front(), d).source ? " (source)" : "") << " |";
  o << "\n|---|";
  for (std::size_t i = 0; i < domains.size(); ++i) o << "---|";
  o << '\n';
  for (const auto& m : models) {
    o << "| " << m << " |";
    for (const auto& d : domains) o << ' ' << detail::metric(find(m, d).seg.f1) << " |";
    o << '\n';
  }
  o << "\n## Every metric\n\nFSD: Fréchet distance of MSAN latent codes; `fsd_source` against the same model on the source "
       "test set, `fsd_teacher` against the teacher on the same domain.\n\n"
       "| model | domain | Acc | Se | Sp | F1 | mIoU | AUC | FSD source | FSD teacher |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows)
    o << "| " << r.model << " | " << r.domain << " | " << detail::metric(r.seg.accuracy) << " | " << detail::metric(r.seg.sensitivity)
      << " | " << detail::metric(r.seg.specificity) << " | " << detail::metric(r.seg.f1) << " | " << detail::metric(r.seg.mean_iou)
      << " | " << detail::metric(r.auc) << " | " << detail::metric(r.fsd_source, 3) << " | " << detail::metric(r.fsd_teacher, 3)
      << " |\n";
  o << "\n## Training curves\n\n";
  for (const auto& entry : std::filesystem::directory_iterator(run.dir))
    if (std::filesystem::exists(entry.path() / "loss.png"))
      o << "![" << entry.path().filename().string() << "](" << entry.path().filename().string() << "/loss.png)\n";
  o << "\n## Predictions (image | ground truth | prediction | green TP, red FP, blue FN)\n\n";
  for (const auto& m : models)
    for (const auto& d : domains) {
      const auto dir = std::filesystem::path("overlays") / m / detail::file_safe(d);
      if (!std::filesystem::is_directory(run.dir / dir)) continue;
      std::vector<std::string> files;
      for (const auto& f : std::filesystem::directory_iterator(run.dir / dir)) files.push_back(f.path().filename().string());
      std::sort(files.begin(), files.end());
      if (!files.empty()) o << "![" << m << " on " << d << "](" << (dir / files.front()).string() << ")\n";
    }
  io::write_text_atomically(run.dir / "report.md", o.str());
}

/// Trains every stage that is not finished (teacher, scratch student, P-SAE, MSAN, then one student per
/// method), renders the loss curves, evaluates all models on every domain and writes the report.
inline std::vector<ResultRow> run_pipeline(RunContext& run, const std::vector<std::string>& methods, const std::string& command) {
  if (!run.train) run.train = load_domain(run.cfg, run.cfg.data.source, Split::train);
  const auto staged = [&](const std::string& stage, auto&& train) {
    auto model = train();
    if (std::filesystem::exists(run.dir / stage / "history.csv")) save_loss_plot(run.dir / stage, stage);
    return model;
  };
  auto teacher = staged("teacher", [&] { return train_teacher(run); });
  auto scratch = staged("student_scratch", [&] { return train_student(run, "scratch", {}); });
  auto psae = staged("psae", [&] { return pretrain_psae(run); });
  auto msan = staged("msan", [&] { return train_msan(run, teacher, scratch, psae); });
  std::deque<std::pair<std::string, Student<float>>> students;
  students.emplace_back("student_scratch", std::move(scratch));
  for (const auto& m : methods) {
    if (m == "scratch") continue;
    const Frozen frozen{&teacher, uses_msan(m) ? &msan.tan : nullptr, uses_msan(m) ? &msan.san : nullptr};
    students.emplace_back("student_" + m, staged("student_" + m, [&] { return train_student(run, m, frozen); }));
  }
  freeze_for_inference(teacher), freeze_for_inference(msan);
  const Device device = run_device(run.cfg);  // the networks' device; evaluation gets host tensors back
  std::vector<EvaluatedModel> models{
      {"teacher", [&, device](const Tensor<float>& x) { return teacher.forward(x.to(device)).logits.cpu(); },
       [&, device](const Tensor<float>& x) { return msan.tan.encode(teacher.encode(x.to(device)).c4).cpu(); }}};
  for (auto& [name, s] : students) {
    freeze_for_inference(s);
    auto* student = &s;
    models.push_back(
        {name, [student, device](const Tensor<float>& x) { return student->forward(x.to(device)).logits.cpu(); },
         [student, &msan, device](const Tensor<float>& x) { return msan.san.encode(student->encode(x.to(device)).x5).cpu(); }});
  }
  auto rows = evaluate_models(run, models);
  write_report(run, rows, command);
  return rows;
}

/// Mean ± sample standard deviation over several runs (e.g. seeds) of F1, AUC and FSD-to-source, per
/// model and domain, as Markdown tables; reads each run folder's metrics.csv.
/// @throws gkd::Error naming a run folder without metrics.csv or with a malformed one
inline std::string summarize_runs(const std::vector<std::filesystem::path>& runs) {
  GKD_CHECK(!runs.empty(), "summarize_runs", "no run folders given");
  struct Cell {
    std::vector<double> f1, auc, fsd;
  };
  std::vector<std::string> models, domains;
  std::map<std::pair<std::string, std::string>, Cell> cells;
  for (const auto& run : runs) {
    const auto path = run / "metrics.csv";
    std::istringstream in(io::read_text(path));
    std::string line;
    std::getline(in, line);
    GKD_CHECK(line.rfind("model,domain,source,accuracy", 0) == 0, "summarize_runs", path.string() << ": not a gkd metrics.csv");
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::istringstream row(line);
      for (std::string cell; std::getline(row, cell, ',');) f.push_back(cell);
      GKD_CHECK(f.size() == 12, "summarize_runs", path.string() << ": malformed row '" << line << "'");
      const std::string domain = f[1] + (f[2] == "1" ? " (source)" : "");
      if (std::find(models.begin(), models.end(), f[0]) == models.end()) models.push_back(f[0]);
      if (std::find(domains.begin(), domains.end(), domain) == domains.end()) domains.push_back(domain);
      Cell& c = cells[{f[0], domain}];
      c.f1.push_back(std::stod(f[6])), c.auc.push_back(std::stod(f[8])), c.fsd.push_back(std::stod(f[9]));
    }
  }
  const auto mean_std = [](const std::vector<double>& v, int precision) {
    if (v.empty()) return std::string("—");
    double m = 0, q = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    for (double x : v) q += (x - m) * (x - m);
    const double sd = v.size() > 1 ? std::sqrt(q / double(v.size() - 1)) : 0.0;
    return detail::metric(m, precision) + " ± " + detail::metric(sd, precision);
  };
  std::ostringstream o;
  o << "Mean ± sample standard deviation over " << runs.size() << " run(s).\n";
  for (const auto& [title, pick, precision] :
       {std::tuple{"F1 (Dice)", &Cell::f1, 3}, std::tuple{"ROC-AUC", &Cell::auc, 3}, std::tuple{"FSD to the source domain", &Cell::fsd, 2}}) {
    o << "\n**" << title << "**\n\n| model |";
    for (const auto& d : domains) o << ' ' << d << " |";
    o << "\n|---|";
    for (std::size_t i = 0; i < domains.size(); ++i) o << "---|";
    o << '\n';
    for (const auto& m : models) {
      o << "| " << m << " |";
      for (const auto& d : domains) {
        auto it = cells.find({m, d});
        o << ' ' << (it == cells.end() ? std::string("—") : mean_std(it->second.*pick, precision)) << " |";
      }
      o << '\n';
    }
  }
  return o.str();
}

}  // namespace gkd::distill
