// SPDX-License-Identifier: Apache-2.0
// Data-pipeline throughput: 128×128 patches per second delivered by BatchLoader (batch 16) with 1 and 2
// background workers, for three sources of the same synthetic fundus images:
//   generated  every sample generated on the fly at 128×128 (generation is the whole "loading")
//   cached     512×512 images generated once and held in memory; random 128×128 crop (foreground-aware)
//   decoded    512×512 PNGs decoded from disk on every access (stb_image), then cropped
// each followed by preprocessing (green channel + CLAHE 8×8, clip 2) and the default augmentation
// (flips, rot90, affine, elastic, gamma/contrast/brightness, blur, noise). The consumer does nothing, so
// the figure is the pipeline's capacity; it is compared with the student's training step
// (benchmarks/README.md: the small U-Net on 1×128×128, batch 4).
//
//   gkd_bench_data_pipeline [--batches 20] [--warmup 2]
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>
#include <gkd/core/parallel.hpp>
#include <gkd/data/augment.hpp>
#include <gkd/data/loader.hpp>
#include <gkd/data/preprocess.hpp>
#include <gkd/data/synthetic_retina.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace gkd::data;

namespace {

constexpr std::int64_t kBatch = 16, kPatch = 128;

class PngFolder : public Dataset {
 public:
  PngFolder(fs::path root, std::vector<std::string> names) : root_(std::move(root)), names_(std::move(names)) {}
  [[nodiscard]] std::int64_t size() const override { return std::int64_t(names_.size()); }
  [[nodiscard]] Sample get(std::int64_t i) const override {
    const std::string& n = names_[std::size_t(i)];
    Sample s{read_image_tensor<float>(root_ / "images" / (n + ".png")), plane(root_ / "masks" / (n + ".png")),
             plane(root_ / "fov" / (n + ".png")), n, "retina_a"};
    return s;
  }

 private:
  static gkd::Tensor<float> plane(const fs::path& p) {
    const gkd::Tensor<float> t = read_image_tensor<float>(p);
    gkd::Tensor<float> m = gkd::Tensor<float>::empty({t.size(1), t.size(2)});
    for (std::int64_t k = 0; k < m.numel(); ++k) m.data()[k] = t.data()[k] >= 0.5f ? 1.f : 0.f;
    return m;
  }
  fs::path root_;
  std::vector<std::string> names_;
};

Augmentation preprocessing(bool crop) {
  const Augmentation cropper = random_crop(kPatch, kPatch, 0.5);
  return {"crop_green_clahe", [crop, cropper](Sample& s, gkd::Generator& gen) {
            if (crop) cropper.apply(s, gen);
            s.image = clahe(green_channel(s.image), {.tiles_x = 8, .tiles_y = 8, .clip_limit = 2.0});
          }};
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Patches per wall-clock second; `per_cpu_second`: patches per second of CPU time the process used,
// a figure that other tenants of a shared machine disturb less.
double patches_per_second(const std::shared_ptr<const Dataset>& data, bool crop, int workers, int batches, int warmup,
                          double& per_cpu_second) {
  BatchLoader loader(data, {.batch_size = kBatch, .seed = 1, .epochs = 0, .samples_per_epoch = 1024, .workers = workers, .prefetch = 4},
                     default_augmentation(), preprocessing(crop));
  for (int i = 0; i < warmup; ++i) (void)loader.next();
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < batches; ++i) {
    const auto b = loader.next();
    if (!b || b->images.size(2) != kPatch) throw std::runtime_error("unexpected batch");
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  per_cpu_second = double(batches * kBatch) / (cpu_seconds() - cpu0);
  return double(batches * kBatch) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int batches = 20, warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--batches") batches = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--warmup") warmup = std::max(0, std::atoi(argv[i + 1]));
    else {
      std::cerr << "usage: gkd_bench_data_pipeline [--batches N] [--warmup N]\n";
      return 2;
    }
  }
  gkd::set_num_threads(1);  // the loader's workers are the only threads

  // Sources.
  auto generated = std::make_shared<SyntheticDataset>(retina_dataset(RetinaDomain::A, 100000, 7, {.size = int(kPatch)}));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Sample> big;
  for (int i = 0; i < 8; ++i) {
    RetinaImage r = generate_retina(RetinaDomain::A, 100 + std::uint64_t(i), {.size = 512});
    big.push_back({r.image, r.vessels, r.fov, "retina_a_" + std::to_string(i), "retina_a"});
  }
  const double gen512 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 8;
  auto cached = std::make_shared<MemoryDataset>(big);
  const fs::path dir = fs::temp_directory_path() / ("gkd_bench_data_pipeline_" + std::to_string(::getpid()));
  std::vector<std::string> names;
  for (const char* sub : {"images", "masks", "fov"}) fs::create_directories(dir / sub);
  for (const auto& s : big) {
    write_png(dir / "images" / (s.name + ".png"), s.image);
    write_png(dir / "masks" / (s.name + ".png"), s.mask);
    write_png(dir / "fov" / (s.name + ".png"), s.fov);
    names.push_back(s.name);
  }
  auto decoded = std::make_shared<PngFolder>(dir, names);

  std::cout << "gkd data pipeline: " << kPatch << "x" << kPatch << " patches, batch " << kBatch << ", " << batches
            << " batches after " << warmup << " warm-up; preprocessing green + CLAHE 8x8; default_augmentation()\n"
            << "one 512x512 retina_a image takes " << std::fixed << std::setprecision(0) << gen512 * 1000
            << " ms to generate (1 thread)\n\n"
            << "| source | workers | patches/s | patches per CPU-second |\n|---|---|---|---|\n";
  struct Source {
    const char* name;
    std::shared_ptr<const Dataset> data;
    bool crop;
  };
  for (const Source& src : {Source{"generated 128x128", generated, false}, Source{"cached 512x512 + crop", cached, true},
                            Source{"decoded PNG 512x512 + crop", decoded, true}})
    for (int workers : {1, 2}) {
      double per_cpu = 0;
      const double pps = patches_per_second(src.data, src.crop, workers, batches, warmup, per_cpu);
      std::cout << "| " << src.name << " | " << workers << " | " << std::setprecision(1) << pps << " | " << per_cpu << " |\n";
    }
  // The student's training step, from benchmarks/README.md (small U-Net, 1x128x128, batch 4, Zen 3):
  // 461 ms/step on 1 thread, 253 ms/step on 2 threads.
  std::cout << "\nstudent training step (benchmarks/README.md, U-Net batch 4): 461 ms (1 thread) = "
            << std::setprecision(1) << 4 / 0.461 << " patches/s, 253 ms (2 threads) = " << 4 / 0.253 << " patches/s\n";
  fs::remove_all(dir);
  return 0;
}
