// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Preprocessing of fundus and CT images (method.md §9.3): green channel, CLAHE, intensity normalisation,
/// Hounsfield windowing, resizing, 128×128 patch sampling with foreground-aware centres, and
/// sliding-window full-image inference with overlap blending.
///
/// Layouts: images are C×H×W tensors (H×W accepted where a single plane makes sense), masks and FOVs H×W
/// with 0/1 values. Nothing here records autograd history: these are data transforms.
///
/// CLAHE follows the standard algorithm (Zuiderveld 1994) with OpenCV's `cv::createCLAHE` conventions so
/// that results can be checked against it: the image is quantised to 256 levels; when H or W is not a
/// multiple of the tile grid it is extended by reflection (`gfedcb|abcdefgh|gfedcba`) to the next
/// multiple; each tile's histogram is clipped at `max(1, int(clip_limit · tile_area / 256))`, the excess is
/// spread evenly over all bins with the remainder added one per `256 / remainder` bins from bin 0; the
/// mapping is the scaled cumulative histogram `round(cdf · 255 / tile_area)`; each pixel is bilinearly
/// interpolated between the mappings of its four nearest tile centres (clamped at the borders).
/// tests/data/test_preprocess.cpp compares with OpenCV 4.14 on a crop of a real CHASE_DB1 image.
///
/// @code
/// gkd::Generator gen(0);
/// auto rgb = gkd::data::read_image_tensor<float>("Image_01L.jpg");          // [3, 960, 999]
/// auto x = gkd::data::clahe(gkd::data::green_channel(rgb), {.tiles_x = 8, .tiles_y = 8, .clip_limit = 2.0});
/// auto batch = gkd::data::sample_patches(x, mask, 16, gen, {.size = 128, .foreground_fraction = 0.5});
/// auto prob = gkd::data::sliding_window(x, [&](const gkd::Tensor<float>& patches) {
///   return gkd::softmax(net(patches), 1);                                     // [B, K, 128, 128]
/// }, {.size = 128, .stride = 64});                                            // [K, 960, 999]
/// @endcode
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/data/image.hpp"

namespace gkd::data {

// ---------------------------------------------------------------- channels and intensities ----------

/// The green channel ([1, H, W]) of a C×H×W image with C >= 2 (RGB fundus: the best vessel contrast); a
/// 1-channel image is returned as is.
template <Real T>
Tensor<T> green_channel(const Tensor<T>& image) {
  GKD_CHECK(image.dim() == 3 && image.size(0) >= 1, "green_channel",
            "expects a C×H×W image, got " << to_string(image.shape()));
  if (image.size(0) == 1) return image;
  return image.narrow(0, 1, 1).contiguous();
}

/// Zero mean, unit variance over the pixels where `fov != 0` (all pixels without a FOV), per channel;
/// a constant channel becomes 0. Pixels outside the FOV are set to 0 as well.
template <Real T>
Tensor<T> standardize(const Tensor<T>& image, const Tensor<T>& fov = {}) {
  GKD_CHECK(image.dim() == 3, "standardize", "expects a C×H×W image, got " << to_string(image.shape()));
  const std::int64_t c = image.size(0), n = image.size(1) * image.size(2);
  GKD_CHECK(!fov.defined() || (fov.dim() == 2 && fov.size(0) == image.size(1) && fov.size(1) == image.size(2)),
            "standardize", "fov " << to_string(fov.shape()) << " does not match image " << to_string(image.shape()));
  Tensor<T> out = image.contiguous().clone();
  const Tensor<T> f = fov.defined() ? fov.contiguous() : Tensor<T>();
  for (std::int64_t k = 0; k < c; ++k) {
    T* p = out.data() + k * n;
    double sum = 0, sq = 0;
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < n; ++i)
      if (!f.defined() || f.data()[i] != T(0)) sum += p[i], ++count;
    GKD_CHECK(count > 0, "standardize", "the FOV mask is empty");
    const double mean = sum / double(count);
    for (std::int64_t i = 0; i < n; ++i)
      if (!f.defined() || f.data()[i] != T(0)) sq += (p[i] - mean) * (p[i] - mean);
    const double sd = std::sqrt(sq / double(count));
    for (std::int64_t i = 0; i < n; ++i) {
      const bool inside = !f.defined() || f.data()[i] != T(0);
      p[i] = inside && sd > 0 ? T((p[i] - mean) / sd) : T(0);
    }
  }
  return out;
}

/// Linear rescale of the whole tensor from [min, max] to [lo, hi] (a constant tensor becomes lo).
template <Real T>
Tensor<T> rescale_intensity(const Tensor<T>& x, T lo = T(0), T hi = T(1)) {
  GKD_CHECK(x.numel() > 0, "rescale_intensity", "empty tensor");
  Tensor<T> out = x.contiguous().clone();
  const auto [mn, mx] = std::minmax_element(out.data(), out.data() + out.numel());
  const T a = *mn, b = *mx;
  for (std::int64_t i = 0; i < out.numel(); ++i) out.data()[i] = b > a ? lo + (out.data()[i] - a) / (b - a) * (hi - lo) : lo;
  return out;
}

/// Hounsfield windowing: clip to [lo, hi] HU (default the liver window [-60, 140] of EMKD) and map linearly
/// to [-1, 1].
template <Real T>
Tensor<T> hu_window(const Tensor<T>& hu, double lo = -60.0, double hi = 140.0) {
  GKD_CHECK(hi > lo, "hu_window", "window [" << lo << ", " << hi << "] is empty");
  Tensor<T> out = hu.contiguous().clone();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    const double v = std::clamp(double(out.data()[i]), lo, hi);
    out.data()[i] = T(2.0 * (v - lo) / (hi - lo) - 1.0);
  }
  return out;
}

// ---------------------------------------------------------------- CLAHE ------------------------------

struct ClaheOptions {
  int tiles_x = 8;          ///< tile columns
  int tiles_y = 8;          ///< tile rows
  double clip_limit = 2.0;  ///< in multiples of the mean bin height (OpenCV's clipLimit); <= 0: no clipping
};

/// CLAHE of one 8-bit plane (width × height, row-major).
inline std::vector<std::uint8_t> clahe_u8(const std::vector<std::uint8_t>& src, int width, int height,
                                          const ClaheOptions& o = {}) {
  GKD_CHECK(o.tiles_x >= 1 && o.tiles_y >= 1, "clahe", "tile grid " << o.tiles_x << "x" << o.tiles_y << " is empty");
  GKD_CHECK(width >= 2 && height >= 2 && src.size() == std::size_t(width) * height, "clahe",
            "plane " << width << "x" << height << " with " << src.size() << " samples");
  constexpr int bins = 256;
  // extend by reflection (without repeating the edge) to a multiple of the grid
  const int pw = width % o.tiles_x ? width + o.tiles_x - width % o.tiles_x : width;
  const int ph = height % o.tiles_y ? height + o.tiles_y - height % o.tiles_y : height;
  GKD_CHECK(pw - width < width && ph - height < height, "clahe",
            "image " << width << "x" << height << " is too small for a " << o.tiles_x << "x" << o.tiles_y << " grid");
  auto reflect = [](int i, int n) { return i < n ? i : 2 * (n - 1) - i; };
  const int tw = pw / o.tiles_x, th = ph / o.tiles_y, area = tw * th;
  const int clip = o.clip_limit > 0 ? std::max(1, static_cast<int>(o.clip_limit * area / bins)) : 0;
  std::vector<std::uint8_t> lut(std::size_t(o.tiles_x) * o.tiles_y * bins);
  const float lut_scale = float(bins - 1) / float(area);
  for (int ty = 0; ty < o.tiles_y; ++ty)
    for (int tx = 0; tx < o.tiles_x; ++tx) {
      std::array<int, bins> hist{};
      for (int y = ty * th; y < (ty + 1) * th; ++y)
        for (int x = tx * tw; x < (tx + 1) * tw; ++x)
          ++hist[src[std::size_t(reflect(y, height)) * width + reflect(x, width)]];
      if (clip > 0) {
        int excess = 0;
        for (int& h : hist)
          if (h > clip) excess += h - clip, h = clip;
        const int batch = excess / bins;
        int residual = excess - batch * bins;
        for (int& h : hist) h += batch;
        if (residual > 0) {
          const int step = std::max(bins / residual, 1);
          for (int i = 0; i < bins && residual > 0; i += step, --residual) ++hist[i];
        }
      }
      std::uint8_t* l = &lut[(std::size_t(ty) * o.tiles_x + tx) * bins];
      int cdf = 0;
      for (int i = 0; i < bins; ++i) {
        cdf += hist[i];
        l[i] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(float(cdf) * lut_scale), 0.f, 255.f));
      }
    }
  std::vector<std::uint8_t> dst(src.size());
  const float inv_tw = 1.f / float(tw), inv_th = 1.f / float(th);
  for (int y = 0; y < height; ++y) {
    const float tyf = float(y) * inv_th - 0.5f;
    int ty1 = static_cast<int>(std::floor(tyf));
    const float ya = tyf - float(ty1), ya1 = 1.f - ya;
    const int ty2 = std::min(ty1 + 1, o.tiles_y - 1);
    ty1 = std::max(ty1, 0);
    for (int x = 0; x < width; ++x) {
      const float txf = float(x) * inv_tw - 0.5f;
      int tx1 = static_cast<int>(std::floor(txf));
      const float xa = txf - float(tx1), xa1 = 1.f - xa;
      const int tx2 = std::min(tx1 + 1, o.tiles_x - 1);
      tx1 = std::max(tx1, 0);
      const int v = src[std::size_t(y) * width + x];
      auto at = [&](int ty, int tx) { return float(lut[(std::size_t(ty) * o.tiles_x + tx) * bins + v]); };
      const float r = (at(ty1, tx1) * xa1 + at(ty1, tx2) * xa) * ya1 + (at(ty2, tx1) * xa1 + at(ty2, tx2) * xa) * ya;
      dst[std::size_t(y) * width + x] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(r), 0.f, 255.f));
    }
  }
  return dst;
}

/// CLAHE of every channel of a C×H×W (or H×W) image with values in [0, 1]; values are quantised to 256
/// levels (`round(v · 255)`) and returned in [0, 1].
template <Real T>
Tensor<T> clahe(const Tensor<T>& image, const ClaheOptions& o = {}) {
  GKD_CHECK(image.dim() == 2 || image.dim() == 3, "clahe", "expects H×W or C×H×W, got " << to_string(image.shape()));
  const Tensor<T> src = image.contiguous();
  Tensor<T> out = Tensor<T>::empty(image.shape());
  const int h = static_cast<int>(image.size(-2)), w = static_cast<int>(image.size(-1));
  const std::int64_t planes = image.dim() == 3 ? image.size(0) : 1, n = std::int64_t(h) * w;
  std::vector<std::uint8_t> plane(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < planes; ++k) {
    for (std::int64_t i = 0; i < n; ++i)
      plane[i] = static_cast<std::uint8_t>(std::lround(std::clamp(double(src.data()[k * n + i]), 0.0, 1.0) * 255.0));
    const auto eq = clahe_u8(plane, w, h, o);
    for (std::int64_t i = 0; i < n; ++i) out.data()[k * n + i] = T(eq[i]) / T(255);
  }
  return out;
}

/// CLAHE of every channel of an 8-bit image.
inline Image clahe(const Image& image, const ClaheOptions& o = {}) {
  Image out = image;
  std::vector<std::uint8_t> plane(std::size_t(image.width) * image.height);
  for (int c = 0; c < image.channels; ++c) {
    for (std::size_t i = 0; i < plane.size(); ++i) plane[i] = image.pixels[i * image.channels + c];
    const auto eq = clahe_u8(plane, image.width, image.height, o);
    for (std::size_t i = 0; i < plane.size(); ++i) out.pixels[i * image.channels + c] = eq[i];
  }
  return out;
}

// ---------------------------------------------------------------- resizing ---------------------------

enum class Interpolation { bilinear, nearest };

/// Resizes the last two dims of an H×W or C×H×W tensor. Bilinear uses half-pixel centres
/// (`align_corners = false`, as PyTorch/OpenCV) for images; nearest takes source index
/// `floor(dst · in / out)` (PyTorch's `nearest`) and keeps mask values exact.
template <Real T>
Tensor<T> resize(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w, Interpolation mode = Interpolation::bilinear) {
  GKD_CHECK(x.dim() == 2 || x.dim() == 3, "resize", "expects H×W or C×H×W, got " << to_string(x.shape()));
  GKD_CHECK(out_h > 0 && out_w > 0, "resize", "output size " << out_h << "x" << out_w << " is empty");
  const Tensor<T> src = x.contiguous();
  const std::int64_t c = x.dim() == 3 ? x.size(0) : 1, h = x.size(-2), w = x.size(-1);
  Shape shape = x.dim() == 3 ? Shape{c, out_h, out_w} : Shape{out_h, out_w};
  Tensor<T> out = Tensor<T>::empty(shape);
  const double sy = double(h) / double(out_h), sx = double(w) / double(out_w);
  for (std::int64_t k = 0; k < c; ++k) {
    const T* s = src.data() + k * h * w;
    T* o = out.data() + k * out_h * out_w;
    for (std::int64_t y = 0; y < out_h; ++y)
      for (std::int64_t xo = 0; xo < out_w; ++xo) {
        if (mode == Interpolation::nearest) {
          const std::int64_t iy = std::min(h - 1, static_cast<std::int64_t>(std::floor(double(y) * sy)));
          const std::int64_t ix = std::min(w - 1, static_cast<std::int64_t>(std::floor(double(xo) * sx)));
          o[y * out_w + xo] = s[iy * w + ix];
          continue;
        }
        const double fy = std::max(0.0, (double(y) + 0.5) * sy - 0.5), fx = std::max(0.0, (double(xo) + 0.5) * sx - 0.5);
        const std::int64_t y0 = std::min(h - 1, static_cast<std::int64_t>(fy)), x0 = std::min(w - 1, static_cast<std::int64_t>(fx));
        const std::int64_t y1 = std::min(h - 1, y0 + 1), x1 = std::min(w - 1, x0 + 1);
        const double ay = fy - double(y0), ax = fx - double(x0);
        o[y * out_w + xo] = T((1 - ay) * ((1 - ax) * s[y0 * w + x0] + ax * s[y0 * w + x1]) +
                              ay * ((1 - ax) * s[y1 * w + x0] + ax * s[y1 * w + x1]));
      }
  }
  return out;
}

// ---------------------------------------------------------------- patches ----------------------------

struct PatchOptions {
  std::int64_t size = 128;           ///< square patch side
  double foreground_fraction = 0.5;  ///< share of patches centred on a random foreground (mask != 0) pixel
};

/// A batch of patches: images [N, C, P, P], masks [N, P, P] (and FOVs [N, P, P] when one was given).
template <Real T>
struct PatchBatch {
  Tensor<T> images, masks, fovs;
  std::vector<std::array<std::int64_t, 2>> origins;  ///< top-left (row, column) of each patch
};

/// Samples `count` P×P patches from a C×H×W image and its H×W mask. A fraction `foreground_fraction`
/// of them (in expectation: each patch draws from `gen`) is centred on a uniformly drawn foreground pixel
/// (then clamped into the image); the rest have a uniform top-left corner, restricted to corners whose
/// patch centre lies inside the FOV when a FOV is given. Masks without foreground fall back to uniform.
template <Real T>
PatchBatch<T> sample_patches(const Tensor<T>& image, const Tensor<T>& mask, std::int64_t count, Generator& gen,
                             const PatchOptions& o = {}, const Tensor<T>& fov = {}) {
  GKD_CHECK(image.dim() == 3 && mask.dim() == 2 && mask.size(0) == image.size(1) && mask.size(1) == image.size(2),
            "sample_patches", "image " << to_string(image.shape()) << " and mask " << to_string(mask.shape())
                                       << " must be C×H×W and H×W of one size");
  GKD_CHECK(!fov.defined() || fov.shape() == mask.shape(), "sample_patches",
            "fov " << to_string(fov.shape()) << " does not match mask " << to_string(mask.shape()));
  const std::int64_t c = image.size(0), h = image.size(1), w = image.size(2), p = o.size;
  GKD_CHECK(p >= 1 && p <= h && p <= w, "sample_patches",
            "patch " << p << " does not fit image " << h << "x" << w << " (resize or pad first)");
  GKD_CHECK(count >= 1 && o.foreground_fraction >= 0 && o.foreground_fraction <= 1, "sample_patches",
            "count " << count << ", foreground_fraction " << o.foreground_fraction);
  const Tensor<T> img = image.contiguous(), m = mask.contiguous();
  const Tensor<T> f = fov.defined() ? fov.contiguous() : Tensor<T>();
  std::vector<std::int64_t> fg, inside;
  for (std::int64_t i = 0; i < h * w; ++i)
    if (m.data()[i] != T(0)) fg.push_back(i);
  if (f.defined()) {
    for (std::int64_t y = 0; y + p <= h; ++y)
      for (std::int64_t x = 0; x + p <= w; ++x)
        if (f.data()[(y + p / 2) * w + x + p / 2] != T(0)) inside.push_back(y * w + x);
  }
  auto draw = [&](std::int64_t n) { return static_cast<std::int64_t>(gen.next() % static_cast<std::uint64_t>(n)); };
  PatchBatch<T> b;
  b.images = Tensor<T>::empty({count, c, p, p});
  b.masks = Tensor<T>::empty({count, p, p});
  if (f.defined()) b.fovs = Tensor<T>::empty({count, p, p});
  for (std::int64_t n = 0; n < count; ++n) {
    std::int64_t y0, x0;
    if (!fg.empty() && gen.uniform() < o.foreground_fraction) {
      const std::int64_t i = fg[draw(std::int64_t(fg.size()))];
      y0 = std::clamp<std::int64_t>(i / w - p / 2, 0, h - p);
      x0 = std::clamp<std::int64_t>(i % w - p / 2, 0, w - p);
    } else if (!inside.empty()) {
      const std::int64_t i = inside[draw(std::int64_t(inside.size()))];
      y0 = i / w, x0 = i % w;
    } else {
      y0 = draw(h - p + 1), x0 = draw(w - p + 1);
    }
    b.origins.push_back({y0, x0});
    for (std::int64_t y = 0; y < p; ++y) {
      for (std::int64_t k = 0; k < c; ++k)
        std::copy_n(img.data() + (k * h + y0 + y) * w + x0, p, b.images.data() + ((n * c + k) * p + y) * p);
      std::copy_n(m.data() + (y0 + y) * w + x0, p, b.masks.data() + (n * p + y) * p);
      if (f.defined()) std::copy_n(f.data() + (y0 + y) * w + x0, p, b.fovs.data() + (n * p + y) * p);
    }
  }
  return b;
}

// ---------------------------------------------------------------- sliding window ---------------------

struct SlidingWindowOptions {
  std::int64_t size = 128;    ///< window side
  std::int64_t stride = 64;   ///< step between windows (size/2: 50% overlap)
  std::int64_t batch = 8;     ///< windows per call of the predictor
  bool gaussian = true;       ///< weight each window by a Gaussian (σ = size/8, nnU-Net) instead of uniformly
};

/// Window start positions along one axis of length n: 0, stride, ... and a last one flush with the end.
inline std::vector<std::int64_t> window_starts(std::int64_t n, std::int64_t size, std::int64_t stride) {
  std::vector<std::int64_t> s;
  if (n <= size) return {0};
  for (std::int64_t v = 0; v + size < n; v += stride) s.push_back(v);
  s.push_back(n - size);
  return s;
}

/// Full-image inference: `predict` maps a batch [B, C, P, P] to probabilities [B, K, P, P]; the windows
/// (zero-padded where the image is smaller than P) are blended with per-pixel normalised weights and the
/// result is K×H×W. The predictor runs under whatever grad mode the caller set (use gkd::NoGrad).
template <Real T>
Tensor<T> sliding_window(const Tensor<T>& image, const std::function<Tensor<T>(const Tensor<T>&)>& predict,
                         const SlidingWindowOptions& o = {}) {
  GKD_CHECK(image.dim() == 3, "sliding_window", "expects a C×H×W image, got " << to_string(image.shape()));
  GKD_CHECK(o.size >= 1 && o.stride >= 1 && o.stride <= o.size && o.batch >= 1, "sliding_window",
            "size " << o.size << ", stride " << o.stride << " (must be in [1, size]), batch " << o.batch);
  const std::int64_t c = image.size(0), h = image.size(1), w = image.size(2), p = o.size;
  const std::int64_t hp = std::max(h, p), wp = std::max(w, p);
  Tensor<T> padded = Tensor<T>::zeros({c, hp, wp});
  const Tensor<T> src = image.contiguous();
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t y = 0; y < h; ++y) std::copy_n(src.data() + (k * h + y) * w, w, padded.data() + (k * hp + y) * wp);
  std::vector<double> weight(std::size_t(p * p), 1.0);
  if (o.gaussian) {
    const double sigma = double(p) / 8.0, mid = double(p - 1) / 2.0;
    double mx = 0;
    for (std::int64_t y = 0; y < p; ++y)
      for (std::int64_t x = 0; x < p; ++x)
        mx = std::max(mx, weight[y * p + x] = std::exp(-((y - mid) * (y - mid) + (x - mid) * (x - mid)) / (2 * sigma * sigma)));
    for (double& v : weight) v = std::max(v / mx, 1e-3);  // never exactly 0: every pixel stays covered
  }
  std::vector<std::array<std::int64_t, 2>> origins;
  for (std::int64_t y : window_starts(hp, p, o.stride))
    for (std::int64_t x : window_starts(wp, p, o.stride)) origins.push_back({y, x});
  std::int64_t k_out = -1;
  std::vector<double> acc, norm(std::size_t(hp * wp), 0.0);
  for (std::size_t first = 0; first < origins.size(); first += std::size_t(o.batch)) {
    const std::int64_t nb = std::min<std::int64_t>(o.batch, std::int64_t(origins.size() - first));
    Tensor<T> batch = Tensor<T>::empty({nb, c, p, p});
    for (std::int64_t n = 0; n < nb; ++n) {
      const auto [y0, x0] = origins[first + n];
      for (std::int64_t k = 0; k < c; ++k)
        for (std::int64_t y = 0; y < p; ++y)
          std::copy_n(padded.data() + (k * hp + y0 + y) * wp + x0, p, batch.data() + ((n * c + k) * p + y) * p);
    }
    const Tensor<T> out = predict(batch).contiguous();
    GKD_CHECK(out.dim() == 4 && out.size(0) == nb && out.size(2) == p && out.size(3) == p &&
                  (k_out < 0 || out.size(1) == k_out),
              "sliding_window", "predictor returned " << to_string(out.shape()) << " for a batch of " << nb
                                                      << " windows of " << p << "x" << p << " (expected [B, K, P, P])");
    if (k_out < 0) k_out = out.size(1), acc.assign(std::size_t(k_out * hp * wp), 0.0);
    for (std::int64_t n = 0; n < nb; ++n) {
      const auto [y0, x0] = origins[first + n];
      for (std::int64_t y = 0; y < p; ++y)
        for (std::int64_t x = 0; x < p; ++x) {
          const double wt = weight[y * p + x];
          for (std::int64_t k = 0; k < k_out; ++k)
            acc[(k * hp + y0 + y) * wp + x0 + x] += wt * out.data()[((n * k_out + k) * p + y) * p + x];
          norm[(y0 + y) * wp + x0 + x] += wt;
        }
    }
  }
  Tensor<T> result = Tensor<T>::empty({k_out, h, w});
  for (std::int64_t k = 0; k < k_out; ++k)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        result.data()[(k * h + y) * w + x] = T(acc[(k * hp + y) * wp + x] / norm[y * wp + x]);
  return result;
}

}  // namespace gkd::data
