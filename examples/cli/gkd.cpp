// SPDX-License-Identifier: Apache-2.0
// `gkd`: the GKD distillation pipeline on the command line (installed with the library).
//
//   gkd all                               every stage on the default synthetic domains, then the report
//   gkd all --methods comparison          scratch, KD, AT, SKD, IFVD, CWD, EMKD, GKD and its ablations
//   gkd distill --method kd --run runs/x  one stage (teacher, scratch, psae, msan, distill), resumable
//   gkd all --data ../shared/data/chasedb1 --targets retina_a,retina_b   real source data
//
// Run `gkd --help` for every option. Ctrl-C saves a checkpoint and exits; running the same command
// again continues exactly where it stopped.
#define GKD_IMAGE_IO_IMPLEMENTATION
#define GKD_VOLUME_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>
#include <gkd/distill/pipeline.hpp>
#include <gkd/io/atomic_file.hpp>
#include <gkd/report/progress.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace gkd::distill;

namespace {

constexpr const char* kUsage = R"(usage: gkd <command> [options]

commands:
  all        train every stage not yet finished (teacher, scratch student, P-SAE, MSAN, one student per
             method), evaluate every model on every domain, write metrics and report.md
  teacher    train the teacher               scratch   train the student without distillation
  psae       pre-train the P-SAE             msan      train TAN + SAN with ACT (needs teacher, scratch, psae)
  distill    train a student with --method (needs teacher; GKD methods need msan)
  evaluate   evaluate the finished models of the run and write the report
  generate   write the configured synthetic domains as image folders (--out DIR)
  config     print the resolved configuration
  summarize RUN... [--out FILE.md]   mean ± std of F1, AUC and FSD over several run folders (seeds)

options:
  --preset cpu|paper     hyper-parameter preset (default cpu: reduced widths, minutes on 2 cores)
  --config FILE.json     configuration file (any subset of the keys `gkd config` prints)
  --set KEY=VALUE        override one key (repeatable), e.g. --set gkd.inter=0.5 --set epochs.student=20
  --run DIR              run folder (default runs/<preset>-seed<seed>)
  --data PATH            source domain: a synthetic domain name or a data folder (CHASE_DB1, DRIVE, ...)
  --targets A,B          evaluation domains besides the source's test split
  --method M             distill: scratch gkd intra inter cross intra+inter kd at fsp skd ifvd cwd emkd
  --methods M1,M2|comparison   all: students to train (default gkd); "comparison" = every method
  --seed N  --threads N  shorthands for --set seed=N / threads=N
  --device cpu|cuda|cuda:N   where the networks train and predict (shorthand for --set device=...;
                         cuda needs a build with the CUDA backend)
  --precision f32|bf16|f16   training's convolutions and matrix products (autocast; --set precision=...)
  --resume               continue the run in --run (the default behaviour; with --resume a missing run is an error)
  --fresh                retrain everything, ignoring the run folder's checkpoints and weights
  --out DIR              generate: output folder (default synthetic_data)
)";

struct Args {
  std::string command;
  std::string preset = "cpu";
  std::optional<fs::path> config, run;
  std::vector<std::string> overrides;
  std::vector<std::string> methods{"gkd"};
  fs::path out = "synthetic_data";
  bool fresh = false, resume = false;
  std::string command_line;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  a.command_line = "gkd";
  for (int i = 1; i < argc; ++i) a.command_line.append(" ").append(argv[i]);
  GKD_CHECK(argc >= 2, "gkd", "no command given\n" << kUsage);
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--fresh" || flag == "--resume") {
      (flag == "--fresh" ? a.fresh : a.resume) = true;
      continue;
    }
    GKD_CHECK(i + 1 < argc, "gkd", "option " << flag << " needs a value\n" << kUsage);
    const std::string v = argv[++i];
    if (flag == "--preset") a.preset = v;
    else if (flag == "--config") a.config = v;
    else if (flag == "--set") a.overrides.push_back(v);
    else if (flag == "--run") a.run = v;
    else if (flag == "--data") a.overrides.push_back("data.source=" + v);
    else if (flag == "--targets") a.overrides.push_back("data.targets=" + v);
    else if (flag == "--method") a.overrides.push_back("method=" + v);
    else if (flag == "--seed") a.overrides.push_back("seed=" + v);
    else if (flag == "--threads") a.overrides.push_back("threads=" + v);
    else if (flag == "--device") a.overrides.push_back("device=" + v);
    else if (flag == "--precision") a.overrides.push_back("precision=" + v);
    else if (flag == "--out") a.out = v;
    else if (flag == "--methods")
      a.methods = v == "comparison" ? std::vector<std::string>{"kd", "at", "fsp", "skd", "ifvd", "cwd", "emkd", "intra",
                                                               "inter", "cross", "intra+inter", "gkd"}
                                    : split_list(v);
    else GKD_CHECK(false, "gkd", "unknown option '" << flag << "'\n" << kUsage);
  }
  return a;
}

/// preset → the run folder's config.json (resuming) → --config → --set, validated; refuses to resume a
/// run folder with a configuration that would change what its finished stages were trained with.
PipelineConfig resolve(const Args& a, fs::path& run_dir) {
  PipelineConfig c = preset(a.preset);
  const auto apply_user = [&](PipelineConfig& cfg) {
    if (a.config) apply_json(cfg, gkd::io::read_text(*a.config), a.config->string());
    for (const auto& o : a.overrides) apply_override(cfg, o);
  };
  apply_user(c);
  run_dir = a.run ? *a.run : fs::path("runs") / (a.preset + "-seed" + std::to_string(c.seed));
  const fs::path saved = run_dir / "config.json";
  GKD_CHECK(!(a.fresh && a.resume), "gkd", "--fresh and --resume contradict each other");
  GKD_CHECK(!a.resume || fs::exists(saved), "gkd", "--resume: " << saved.string() << " does not exist, nothing to resume");
  if (!a.fresh && fs::exists(saved)) {
    PipelineConfig before = preset(a.preset);
    apply_json(before, gkd::io::read_text(saved), saved.string());
    PipelineConfig resumed = before;
    apply_user(resumed);
    const auto changed = config_differences(before, resumed, {"method", "threads", "data.workers", "data.targets", "overlays"});
    std::string keys;
    for (const auto& k : changed) keys.append(keys.empty() ? "" : ", ").append(k);
    GKD_CHECK(changed.empty(), "gkd",
              saved.string() << ": this run folder was trained with a different " << keys
                             << "; resume it without changing those, or start over with --fresh or another --run");
    c = resumed;
  }
  validate(c);
  return c;
}

/// A progress bar per epoch of each stage.
StageProgress progress_for(const std::string& stage, std::int64_t batch) {
  auto bar = std::make_shared<std::optional<gkd::report::ProgressBar>>();
  return {.epoch_begin =
              [=](std::int64_t e, std::int64_t epochs, std::int64_t steps) {
                gkd::report::ProgressOptions o;
                o.items_per_step = double(batch), o.unit = "patch";
                bar->emplace(stage + " epoch " + std::to_string(e + 1) + "/" + std::to_string(epochs), steps, std::cerr, o);
              },
          .step = [=](std::int64_t i, const std::vector<std::pair<std::string, double>>& v) { (*bar)->update(i + 1, v); },
          .epoch_end = [=] { (*bar)->finish(); }};
}

void generate(const PipelineConfig& c, const fs::path& out) {
  for (const auto& domain : evaluation_domains(c)) {
    GKD_CHECK(is_synthetic_domain(domain), "gkd generate", "'" << domain << "' is a folder, not a synthetic domain");
    for (Split split : {Split::train, Split::test}) {
      const fs::path root = out / domain / (split == Split::train ? "training" : "test");
      for (const char* sub : {"images", "masks", "fov"}) fs::create_directories(root / sub);
      const auto data = load_domain(c, domain, split);
      for (std::int64_t i = 0; i < data->size(); ++i) {
        const gkd::data::Sample s = data->get(i);
        gkd::data::write_png(root / "images" / (s.name + ".png"), s.image);
        gkd::data::write_png(root / "masks" / (s.name + ".png"), s.mask);
        if (s.fov.defined()) gkd::data::write_png(root / "fov" / (s.name + ".png"), s.fov);
      }
      std::cout << root.string() << ": " << data->size() << " samples\n";
    }
  }
}

int run_command(const Args& a) {
  fs::path run_dir;
  PipelineConfig cfg = resolve(a, run_dir);
  if (a.command == "config") {
    std::cout << to_json(cfg);
    return 0;
  }
  gkd::set_num_threads(int(cfg.threads));
  if (a.command == "generate") {
    generate(cfg, a.out);
    return 0;
  }
  fs::create_directories(run_dir);
  gkd::io::write_text_atomically(run_dir / "config.json", to_json(cfg));
  RunContext run{.cfg = cfg, .dir = run_dir, .resume = !a.fresh, .train = {}, .progress = {}};
  run.progress = [&](const std::string& stage) { return progress_for(stage, cfg.data.batch); };
  std::cerr << "gkd " << a.command << ": run folder " << run_dir.string() << ", source " << domain_label(cfg.data.source)
            << ", " << cfg.threads << " thread(s)\n";
  const auto need = [&](const std::string& stage) {
    GKD_CHECK(fs::exists(run_dir / stage / "model.safetensors"), "gkd",
              "stage '" << stage << "' has not finished in " << run_dir.string() << "; run `gkd " << stage
                        << " --run " << run_dir.string() << "` (or `gkd all`) first");
  };
  if (a.command == "all" || a.command == "evaluate") {
    if (a.command == "evaluate")
      for (const char* s : {"teacher", "student_scratch", "psae", "msan"}) need(s);
    std::vector<std::string> methods = a.methods;
    if (a.command == "evaluate") {
      methods.clear();
      for (const auto& m : known_methods())
        if (m != "scratch" && fs::exists(run_dir / ("student_" + m) / "model.safetensors")) methods.push_back(m);
    }
    run_pipeline(run, methods, a.command_line);
    std::cout << "report: " << (run_dir / "report.md").string() << "\nmetrics: " << (run_dir / "metrics.csv").string() << '\n';
    return 0;
  }
  run.train = load_domain(cfg, cfg.data.source, Split::train);
  const auto plot = [&](const std::string& stage) { save_loss_plot(run_dir / stage, stage); };
  if (a.command == "teacher") {
    (void)train_teacher(run), plot("teacher");
  } else if (a.command == "scratch") {
    (void)train_student(run, "scratch", {}), plot("student_scratch");
  } else if (a.command == "psae") {
    (void)pretrain_psae(run), plot("psae");
  } else if (a.command == "msan") {
    for (const char* s : {"teacher", "student_scratch", "psae"}) need(s);
    auto teacher = train_teacher(run);
    auto scratch = train_student(run, "scratch", {});
    auto psae = pretrain_psae(run);
    (void)train_msan(run, teacher, scratch, psae), plot("msan");
  } else if (a.command == "distill") {
    need("teacher");
    auto teacher = train_teacher(run);
    std::optional<Msan> msan;
    if (uses_msan(cfg.method)) {
      need("msan");
      msan.emplace(make_msan(cfg));
      (void)load_finished(run, "msan", *msan);
    }
    (void)train_student(run, cfg.method, {&teacher, msan ? &msan->tan : nullptr, msan ? &msan->san : nullptr});
    plot("student_" + cfg.method);
  } else {
    GKD_CHECK(false, "gkd", "unknown command '" << a.command << "'\n" << kUsage);
  }
  std::cout << "done: " << run_dir.string() << '\n';
  return 0;
}

extern "C" void on_interrupt(int) { request_interrupt(); }

}  // namespace

int summarize(int argc, char** argv) {
  std::vector<fs::path> runs;
  std::optional<fs::path> out;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--out" && i + 1 < argc) out = argv[++i];
    else runs.emplace_back(argv[i]);
  }
  const std::string table = summarize_runs(runs);
  if (out) gkd::io::write_text_atomically(*out, table);
  std::cout << table;
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help")) {
    std::cout << kUsage;
    return 0;
  }
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  try {
    if (argc >= 2 && std::string(argv[1]) == "summarize") return summarize(argc, argv);
    return run_command(parse(argc, argv));
  } catch (const Interrupted& e) {
    std::cerr << "\ninterrupted: " << e.what() << "\nrun the same command again to continue\n";
    return 130;
  } catch (const gkd::Error& e) {
    std::cerr << "gkd: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "gkd: " << e.what() << '\n';
    return 1;
  }
}
