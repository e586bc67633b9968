// SPDX-License-Identifier: Apache-2.0
// Writes a generated data set to disk in the generic layout, so that people can look at it:
//   <out>/<domain>/images/<name>.png   RGB fundus or windowed CT slice
//   <out>/<domain>/masks/<name>.png    vessels or liver, 0/255
//   <out>/<domain>/fov/<name>.png      field of view or body, 0/255
// and optionally a contact sheet: the first images (top row) and the same with the mask overlaid.
//
//   gkd_example_generate_data --domain retina_a --count 20 --size 512 --seed 1 --out data/synth
//       --contact-sheet retina_a.png   (one command line)
// --domain takes retina_a, retina_b, retina_c, ct_venous, ct_plain or all (every domain; the contact
// sheet name then gets the domain appended before ".png").
#define GKD_IMAGE_IO_IMPLEMENTATION
#include <gkd/data/image_io.hpp>
#include <gkd/data/synthetic_ct.hpp>
#include <gkd/data/synthetic_retina.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace gkd::data;

namespace {

struct Args {
  std::vector<std::string> domains;
  std::int64_t count = 8;
  int size = 0;  // 0: the domain's default (retina 512, CT 256)
  std::uint64_t seed = 0;
  fs::path out = "synthetic_data";
  fs::path sheet;
  int sheet_count = 4;
  int sheet_tile = 128;
  int sheet_levels = 0;  // 0: 256 grey levels per channel; fewer keep committed sheets small
};

const std::vector<std::string> kDomains{"retina_a", "retina_b", "retina_c", "ct_venous", "ct_plain"};

void usage() {
  std::cerr << "usage: gkd_example_generate_data [--domain retina_a|retina_b|retina_c|ct_venous|ct_plain|all] [--count N]\n"
               "         [--size PIXELS] [--seed S] [--out DIR] [--contact-sheet FILE.png] [--sheet-count N] [--sheet-tile PIXELS]\n"
               "         [--sheet-levels 2..256]\n";
}

std::int64_t number(const std::string& flag, const std::string& value, std::int64_t lo, std::int64_t hi) {
  char* end = nullptr;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  GKD_CHECK(end && *end == '\0' && !value.empty() && v >= lo && v <= hi, "generate_data",
            flag << " expects an integer in [" << lo << ", " << hi << "], got '" << value << "'");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  std::string domain = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    GKD_CHECK(i + 1 < argc, "generate_data", flag << " needs a value");
    const std::string value = argv[++i];
    if (flag == "--domain") domain = value;
    else if (flag == "--count") a.count = number(flag, value, 1, 100000);
    else if (flag == "--size") a.size = int(number(flag, value, 32, 4096));
    else if (flag == "--seed") a.seed = std::uint64_t(number(flag, value, 0, std::int64_t(1) << 62));
    else if (flag == "--out") a.out = value;
    else if (flag == "--contact-sheet") a.sheet = value;
    else if (flag == "--sheet-count") a.sheet_count = int(number(flag, value, 1, 16));
    else if (flag == "--sheet-tile") a.sheet_tile = int(number(flag, value, 16, 1024));
    else if (flag == "--sheet-levels") a.sheet_levels = int(number(flag, value, 2, 256));
    else GKD_FAIL("generate_data", "unknown option " << flag);
  }
  if (domain == "all") a.domains = kDomains;
  else {
    GKD_CHECK(std::find(kDomains.begin(), kDomains.end(), domain) != kDomains.end(), "generate_data",
              "unknown domain '" << domain << "' (expected retina_a, retina_b, retina_c, ct_venous, ct_plain or all)");
    a.domains = {domain};
  }
  return a;
}

SyntheticDataset dataset(const std::string& domain, const Args& a) {
  if (domain.rfind("retina", 0) == 0)
    return retina_dataset(parse_retina_domain(domain), a.count, a.seed, {.size = a.size ? a.size : 512});
  return ct_dataset(parse_ct_domain(domain), a.count, a.seed, {.size = a.size ? a.size : 256});
}

// Box-filtered resize of a C×H×W tensor to C×t×t.
gkd::Tensor<float> shrink(const gkd::Tensor<float>& x, int t) {
  const std::int64_t c = x.size(0), h = x.size(1), w = x.size(2);
  gkd::Tensor<float> out = gkd::Tensor<float>::zeros({c, t, t});
  for (std::int64_t k = 0; k < c; ++k)
    for (int y = 0; y < t; ++y)
      for (int xo = 0; xo < t; ++xo) {
        const std::int64_t y0 = y * h / t, y1 = std::max(y0 + 1, (y + 1) * h / t);
        const std::int64_t x0 = xo * w / t, x1 = std::max(x0 + 1, (xo + 1) * w / t);
        double s = 0;
        for (std::int64_t yy = y0; yy < y1; ++yy)
          for (std::int64_t xx = x0; xx < x1; ++xx) s += x.data()[(k * h + yy) * w + xx];
        out.data()[(k * t + y) * t + xo] = float(s / double((y1 - y0) * (x1 - x0)));
      }
  return out;
}

// Top row: images; bottom row: images with the mask blended in green (retina) or red (CT).
gkd::Tensor<float> contact_sheet(const std::vector<Sample>& samples, int tile, bool ct, int levels) {
  const std::int64_t n = std::int64_t(samples.size());
  gkd::Tensor<float> sheet = gkd::Tensor<float>::zeros({3, 2 * tile, n * tile});
  const std::int64_t W = n * tile;
  const float tint[3] = {ct ? 1.f : 0.1f, ct ? 0.15f : 1.f, ct ? 0.1f : 0.25f};
  for (std::int64_t i = 0; i < n; ++i) {
    const gkd::Tensor<float> img = shrink(samples[std::size_t(i)].image.contiguous(), tile);
    const gkd::Tensor<float> mask = shrink(samples[std::size_t(i)].mask.contiguous().unsqueeze(0), tile);
    for (int y = 0; y < tile; ++y)
      for (int x = 0; x < tile; ++x)
        for (int c = 0; c < 3; ++c) {
          const float v = img.data()[(std::min<std::int64_t>(c, img.size(0) - 1) * tile + y) * tile + x];
          const float m = std::clamp(mask.data()[y * tile + x], 0.f, 1.f) * 0.6f;
          const auto quantise = [levels](float u) {
            return levels ? std::round(std::clamp(u, 0.f, 1.f) * float(levels - 1)) / float(levels - 1) : u;
          };
          sheet.data()[(c * 2 * tile + y) * W + i * tile + x] = quantise(v);
          sheet.data()[(c * 2 * tile + tile + y) * W + i * tile + x] = quantise((1 - m) * v + m * tint[c]);
        }
  }
  return sheet;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    for (const auto& domain : a.domains) {
      const auto t0 = std::chrono::steady_clock::now();
      const SyntheticDataset data = dataset(domain, a);
      const fs::path root = a.out / domain;
      for (const char* sub : {"images", "masks", "fov"}) fs::create_directories(root / sub);
      std::vector<std::exception_ptr> errors(std::size_t(data.size()));
      std::vector<Sample> first(std::size_t(std::min<std::int64_t>(a.sheet_count, data.size())));
#pragma omp parallel for schedule(dynamic)
      for (std::int64_t i = 0; i < data.size(); ++i) {
        try {
          const Sample s = data.get(i);
          write_png(root / "images" / (s.name + ".png"), s.image);
          write_png(root / "masks" / (s.name + ".png"), s.mask);
          write_png(root / "fov" / (s.name + ".png"), s.fov);
          if (i < std::int64_t(first.size())) first[std::size_t(i)] = s;
        } catch (...) {
          errors[std::size_t(i)] = std::current_exception();
        }
      }
      for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << domain << ": " << data.size() << " samples written to " << root.string() << " in " << seconds << " s\n";
      if (!a.sheet.empty()) {
        fs::path file = a.sheet;
        if (a.domains.size() > 1) file.replace_filename(file.stem().string() + "_" + domain + ".png");
        if (file.has_parent_path()) fs::create_directories(file.parent_path());
        write_png(file, contact_sheet(first, a.sheet_tile, domain.rfind("ct", 0) == 0, a.sheet_levels));
        std::cout << "  contact sheet: " << file.string() << "\n";
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    usage();
    return 2;
  }
}
