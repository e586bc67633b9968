// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// 2-D convolution and transposed convolution over NCHW tensors, with PyTorch's semantics
/// (cross-correlation; stride, zero padding, dilation, groups; output_padding for the transpose).
///
/// Example:
/// @code
///   // x [4, 16, 128, 128], w [32, 16, 3, 3], b [32]  ->  y [4, 32, 128, 128]
///   auto y = gkd::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
///   auto z = gkd::conv2d(x, w, b, gkd::Conv2dOptions{.stride = 2, .padding = {1, 1}});
///   // upsampling by 2: x [4, 32, 64, 64], w [32, 16, 2, 2] -> [4, 16, 128, 128]
///   auto u = gkd::conv_transpose2d(x, w, {}, /*stride=*/2);
/// @endcode
///
/// Implementation: the general case packs a band of output rows of one image at a time (im2col,
/// sized to stay near L2) and multiplies it with the weight by GEMM; 1x1 stride-1 convolutions
/// multiply the input directly. The input gradient (and the transposed convolution's forward pass)
/// multiplies by the transposed weight and scatters back with col2im; the weight gradient multiplies
/// the output gradient by the packed input, in fixed per-slot partial sums so that results do not
/// depend on the thread count. Depthwise convolutions (one input channel per group) use direct
/// loops. Images of a batch run in parallel with OpenMP. The GEMMs are Eigen's, except for float
/// on AVX2/FMA builds without AVX-512, where gkd's own packed 6x16 kernel runs them 1.3-1.5x faster
/// (gkd/ops/gemm.hpp); double always uses Eigen.
#include <algorithm>
#include <array>
#include <concepts>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <ostream>
#include <type_traits>
#include <utility>
#include <vector>

#include "gkd/core/parallel.hpp"
#include "gkd/ops/autocast.hpp"
#include "gkd/ops/gemm.hpp"
#include "gkd/ops/linalg.hpp"


#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/conv.hpp"
#endif

namespace gkd {

/// A (height, width) pair of integers: kernel sizes, strides, paddings, dilations, output sizes.
/// Converts from one integer (the same for both dims) or from two: `Size2 s = 2;`, `Size2 s = {3, 1};`.
struct Size2 {
  std::int64_t h = 0;
  std::int64_t w = 0;
  constexpr Size2() = default;
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  constexpr Size2(I both) : h(static_cast<std::int64_t>(both)), w(static_cast<std::int64_t>(both)) {}
  template <std::integral A, std::integral B>
    requires(!std::same_as<A, bool> && !std::same_as<B, bool>)
  constexpr Size2(A height, B width) : h(static_cast<std::int64_t>(height)), w(static_cast<std::int64_t>(width)) {}
  friend constexpr bool operator==(const Size2&, const Size2&) = default;
};

/// Prints `(h, w)`.
inline std::ostream& operator<<(std::ostream& out, const Size2& s) { return out << '(' << s.h << ", " << s.w << ')'; }

/// Named parameters of conv2d, for designated initializers:
/// `gkd::conv2d(x, w, b, gkd::Conv2dOptions{.stride = 2, .padding = 1})`.
struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  std::int64_t groups = 1;
};

/// Named parameters of conv_transpose2d:
/// `gkd::conv_transpose2d(x, w, b, gkd::ConvTranspose2dOptions{.stride = 2, .output_padding = 1})`.
struct ConvTranspose2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 output_padding = 0;
  std::int64_t groups = 1;
  Size2 dilation = 1;
};

namespace detail {

/// Sizing of the packed im2col bands: about `band_bytes` (sized for L2), but at least
/// `min_band_cols` output positions so that each GEMM stays efficient. Tests shrink both to
/// exercise the banding.
struct ConvTuning {
  std::size_t band_bytes = 256u << 10;
  std::int64_t min_band_cols = 512;
};
inline ConvTuning& conv_tuning() {
  static ConvTuning tuning;
  return tuning;
}

/// Per-thread scratch memory that grows and is kept: im2col bands and partial sums reuse it across
/// calls instead of fresh allocations, whose page faults cost ~10% of a U-Net step otherwise.
/// `slot` (0, 1 or 2) separates buffers that are alive at the same time.
template <Real T>
T* scratch(std::size_t count, int slot) {
  struct Buffers {
    std::unique_ptr<T[]> data[3];
    std::size_t size[3] = {0, 0, 0};
  };
  thread_local Buffers buffers;
  const auto k = static_cast<std::size_t>(slot);
  if (buffers.size[k] < count) {
    buffers.data[k].reset();
    buffers.data[k] = std::make_unique_for_overwrite<T[]>(count);
    buffers.size[k] = count;
  }
  return buffers.data[k].get();
}

/// Whether the float weight gradient uses gkd's kernel (a switch for benchmarks).
inline bool& use_gkd_weight_kernel() {
  static bool on = true;
  return on;
}

/// The GEMM of conv's weight gradient, dW [m x n] += dy [m x k] · colsᵀ, where dy rows (stride
/// dy_stride) and cols rows (n rows, stride cols_stride) are both contiguous along k. For float:
/// - few output channels (2 to 16 on AVX-512 builds, 2 to 32 on AVX2): the dot-product kernel, which
///   packs nothing (Xeon, 1 thread: 1.0-2x Eigen, the most at 2-8 channels);
/// - AVX2, 64+ output channels and a depth of 64+: gkd's packed kernel computing dWᵀ = cols · dyᵀ (so
///   that the big operand is packed along its contiguous rows), 10-25% faster than Eigen on a Zen 3
///   core (at depth 16 writing the transposed tiles made it 2.5x slower); the dot-product kernel also
///   for few packed rows (a 1-channel first layer: 1.7x Eigen);
/// - Eigen otherwise: on AVX-512 builds it ran the larger shapes 7-30% faster than gkd's 8x32 kernel
///   did either way round (Xeon, 1 thread).
template <Real T>
void weight_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* dy, std::int64_t dy_stride, const T* cols,
                 std::int64_t cols_stride, T* dw, std::int64_t dw_stride) {
  if (m <= 0 || n <= 0 || k <= 0) return;
#ifdef GKD_SGEMM
  if constexpr (std::is_same_v<T, float>) {
#ifdef __AVX512F__
    constexpr std::int64_t few_channels = 16;
#else
    constexpr std::int64_t few_channels = 32;
    if (use_gkd_weight_kernel() && m >= 4 * sgemm::kNR && n >= 2 * sgemm::kMR && k >= 64)
      return sgemm::gemm(n, m, k, cols, cols_stride, std::int64_t{1}, dy, std::int64_t{1}, dy_stride, dw,
                         std::int64_t{1}, dw_stride, true);
    if (use_gkd_weight_kernel() && m >= 4 && n >= 3 && n < 2 * sgemm::kMR)
      return sgemm::gemm_nt(m, n, k, dy, dy_stride, cols, cols_stride, dw, dw_stride);
#endif
    if (use_gkd_weight_kernel() && m >= 2 && m <= few_channels)
      return sgemm::gemm_nt(m, n, k, dy, dy_stride, cols, cols_stride, dw, dw_stride);
  }
#endif
  eigen_gemm(m, n, k, dy, dy_stride, std::int64_t{1}, cols, std::int64_t{1}, cols_stride, dw, dw_stride, true);
}

/// Shape of one convolution in its forward direction: "in" is the convolution's input (the output
/// of a transposed convolution), "out" its output. The weight is [out_c, in_c / groups, kh, kw].
struct ConvGeometry {
  std::int64_t batch = 0, in_c = 0, in_h = 0, in_w = 0;
  std::int64_t out_c = 0, out_h = 0, out_w = 0;
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;

  [[nodiscard]] std::int64_t in_cg() const { return in_c / groups; }
  [[nodiscard]] std::int64_t out_cg() const { return out_c / groups; }
  /// Rows of the packed input (= columns of one group's weight matrix).
  [[nodiscard]] std::int64_t k() const { return in_cg() * kh * kw; }
  [[nodiscard]] std::int64_t in_plane() const { return in_h * in_w; }
  [[nodiscard]] std::int64_t out_plane() const { return out_h * out_w; }
  /// 1x1, stride 1, no padding: the input already is the packed matrix.
  [[nodiscard]] bool pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && out_h == in_h && out_w == in_w;
  }
  /// One input channel per group (depthwise, with any channel multiplier): direct loops.
  [[nodiscard]] bool depthwise() const { return groups > 1 && in_cg() == 1; }
  /// Output columns [lo, hi) whose input column ow * sw - pw + kj * dw lies inside the input.
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> valid_cols(std::int64_t kj) const {
    const std::int64_t off = kj * dw - pw;
    const std::int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    const std::int64_t last = in_w - 1 - off;
    const std::int64_t hi = last < 0 ? 0 : std::min(out_w, last / sw + 1);
    return {std::min(lo, hi), hi};
  }
  /// Output rows per im2col band (see ConvTuning).
  [[nodiscard]] std::int64_t band_rows(std::size_t elem_size) const {
    if (pointwise()) return std::max<std::int64_t>(out_h, 1);
    const ConvTuning& tuning = conv_tuning();
    const std::int64_t budget = static_cast<std::int64_t>(tuning.band_bytes / elem_size);
    const std::int64_t row = std::max<std::int64_t>(out_w, 1);
    const std::int64_t rows = std::max(budget / std::max<std::int64_t>(k() * row, 1), (tuning.min_band_cols + row - 1) / row);
    return std::clamp<std::int64_t>(rows, 1, std::max<std::int64_t>(out_h, 1));
  }
  /// Multiply-adds of the whole batch.
  [[nodiscard]] std::int64_t macs() const { return batch * out_c * out_plane() * k(); }
  /// Whether to run images in parallel (otherwise Eigen's GEMM may parallelise inside); small
  /// problems stay serial, since waking threads costs more than they would save.
  [[nodiscard]] bool parallel_batch() const { return batch > 1 && batch >= num_threads() && macs() > (1 << 18); }
};

/// Packs output rows [oh0, oh1) of one group of one image: cols[(c*kh + ki)*kw + kj][(oh-oh0)*out_w + ow]
/// = x[c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw], zero outside the input.
template <Real T>
void im2col(const T* x, const ConvGeometry& g, std::int64_t oh0, std::int64_t oh1, T* cols) {
  const std::int64_t n = (oh1 - oh0) * g.out_w;
  const bool same_width = g.sh == 1 && g.sw == 1 && g.in_w == g.out_w;  // input rows map to output rows 1:1
  T* row = cols;
  for (std::int64_t c = 0; c < g.in_cg(); ++c) {
    const T* plane = x + c * g.in_plane();
    for (std::int64_t ki = 0; ki < g.kh; ++ki) {
      for (std::int64_t kj = 0; kj < g.kw; ++kj, row += n) {
        const std::pair<std::int64_t, std::int64_t> valid = g.valid_cols(kj);
        const std::int64_t lo = valid.first, hi = valid.second;  // clang < 16: no structured bindings in omp loops
        const std::int64_t off = kj * g.dw - g.pw;
        if (same_width && lo < hi) {
          // Rows whose input row exists are one shifted copy of the input plane: copy them at once, then
          // zero the columns outside [lo, hi), which picked up the neighbouring rows' ends.
          const std::int64_t first = std::clamp(g.ph - ki * g.dh, oh0, oh1);
          const std::int64_t last = std::clamp(g.in_h + g.ph - ki * g.dh, first, oh1);
          std::fill(row, row + (first - oh0) * g.out_w, T(0));
          if (first < last) {
            T* dst = row + (first - oh0) * g.out_w;
            const T* src = plane + (first - g.ph + ki * g.dh) * g.in_w + off;
            const std::int64_t count = (last - first) * g.out_w;
            std::copy(src + lo, src + count - (g.out_w - hi), dst + lo);
            for (std::int64_t r = 0; r < last - first; ++r) {
              std::fill(dst + r * g.out_w, dst + r * g.out_w + lo, T(0));
              std::fill(dst + r * g.out_w + hi, dst + (r + 1) * g.out_w, T(0));
            }
          }
          std::fill(row + (last - oh0) * g.out_w, row + n, T(0));
          continue;
        }
        for (std::int64_t oh = oh0; oh < oh1; ++oh) {
          T* dst = row + (oh - oh0) * g.out_w;
          const std::int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          if (ih < 0 || ih >= g.in_h) {
            std::fill_n(dst, g.out_w, T(0));
            continue;
          }
          const std::int64_t base = ih * g.in_w + off;
          std::fill(dst, dst + lo, T(0));
          if (g.sw == 1) {
            std::copy(plane + base + lo, plane + base + hi, dst + lo);
          } else {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = plane[base + ow * g.sw];
          }
          std::fill(dst + hi, dst + g.out_w, T(0));
        }
      }
    }
  }
}

/// The adjoint of im2col: adds the packed band back into the input image group `x`. The band is
/// scratch and is overwritten (its entries for padding positions are zeroed).
template <Real T>
void col2im(T* cols, const ConvGeometry& g, std::int64_t oh0, std::int64_t oh1, T* x) {
  const std::int64_t n = (oh1 - oh0) * g.out_w;
  const bool same_width = g.sh == 1 && g.sw == 1 && g.in_w == g.out_w;  // input rows map to output rows 1:1
  T* row = cols;
  for (std::int64_t c = 0; c < g.in_cg(); ++c) {
    T* plane = x + c * g.in_plane();
    for (std::int64_t ki = 0; ki < g.kh; ++ki) {
      for (std::int64_t kj = 0; kj < g.kw; ++kj, row += n) {
        const std::pair<std::int64_t, std::int64_t> valid = g.valid_cols(kj);
        const std::int64_t lo = valid.first, hi = valid.second;  // clang < 16: no structured bindings in omp loops
        const std::int64_t off = kj * g.dw - g.pw;
        if (same_width && lo < hi) {
          // As in im2col: the rows whose input row exists add to one shifted block of the plane, once
          // their padding columns (which would land in the neighbouring rows) are zeroed.
          const std::int64_t first = std::clamp(g.ph - ki * g.dh, oh0, oh1);
          const std::int64_t last = std::clamp(g.in_h + g.ph - ki * g.dh, first, oh1);
          if (first == last) continue;
          T* src = row + (first - oh0) * g.out_w;
          for (std::int64_t r = 0; r < last - first; ++r) {
            std::fill(src + r * g.out_w, src + r * g.out_w + lo, T(0));
            std::fill(src + r * g.out_w + hi, src + (r + 1) * g.out_w, T(0));
          }
          T* dst = plane + (first - g.ph + ki * g.dh) * g.in_w + off;
          const std::int64_t end = (last - first) * g.out_w - (g.out_w - hi);
#pragma omp simd
          for (std::int64_t t = lo; t < end; ++t) dst[t] += src[t];
          continue;
        }
        for (std::int64_t oh = oh0; oh < oh1; ++oh) {
          const std::int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          if (ih < 0 || ih >= g.in_h) continue;
          const T* src = row + (oh - oh0) * g.out_w;
          T* dst = plane + ih * g.in_w + off;  // only indexed at ow >= lo, which is inside the row
          if (g.sw == 1) {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
          }
        }
      }
    }
  }
}

// ---- depthwise (one input channel per group): direct loops -----------------------------------------
// At column stride s > 1 the input plane (or the input gradient's) is split into s phase planes, so
// that every inner loop runs at unit stride and vectorises.

/// A plane split by column phase modulo `stride`: row(r, q)[j] holds column stride * j + q of row r.
/// Each phase row has a left margin of pad / stride + 1 columns, so that row(r, q) + shift with a
/// negative shift (a padded tap) still points inside the buffer.
template <Real T>
class PhasePlanes {
 public:
  PhasePlanes(std::int64_t h, std::int64_t w, std::int64_t stride, std::int64_t pad)
      : h_(h), w_(w), stride_(stride), margin_(pad / stride + 1), width_(margin_ + (w + stride - 1) / stride),
        buf_(static_cast<std::size_t>(stride * h * width_), T(0)) {}
  [[nodiscard]] T* row(std::int64_t r, std::int64_t q) { return buf_.data() + (q * h_ + r) * width_ + margin_; }
  /// Copies a row-major h x w plane in. Stride 2 (MobileNetV2's) deinterleaves both phases in one
  /// loop with a constant stride, which GCC vectorises.
  void split(const T* plane) {
    const std::int64_t w = w_;
    for (std::int64_t r = 0; r < h_; ++r) {
      const T* src = plane + r * w;
      if (stride_ == 2) {
        T* even = row(r, 0);
        T* odd = row(r, 1);
        for (std::int64_t j = 0; j < w / 2; ++j) {
          even[j] = src[2 * j];
          odd[j] = src[2 * j + 1];
        }
        if (w % 2) even[w / 2] = src[w - 1];
        continue;
      }
      for (std::int64_t c = 0; c < w; ++c) row(r, c % stride_)[c / stride_] = src[c];
    }
  }
  /// Copies the phases back out into a row-major h x w plane.
  void merge_into(T* plane) {
    const std::int64_t w = w_;
    for (std::int64_t r = 0; r < h_; ++r) {
      T* dst = plane + r * w;
      if (stride_ == 2) {
        const T* even = row(r, 0);
        const T* odd = row(r, 1);
        for (std::int64_t j = 0; j < w / 2; ++j) {
          dst[2 * j] = even[j];
          dst[2 * j + 1] = odd[j];
        }
        if (w % 2) dst[w - 1] = even[w / 2];
        continue;
      }
      for (std::int64_t c = 0; c < w; ++c) dst[c] = row(r, c % stride_)[c / stride_];
    }
  }
  void zero() { std::fill(buf_.begin(), buf_.end(), T(0)); }

 private:
  std::int64_t h_, w_, stride_, margin_, width_;
  std::vector<T> buf_;
};

/// Phase planes for the input of g when its column stride is above 1; none at stride 1.
template <Real T>
std::optional<PhasePlanes<T>> phase_planes(const ConvGeometry& g) {
  if (g.sw == 1) return std::nullopt;
  return PhasePlanes<T>(g.in_h, g.in_w, g.sw, g.pw);
}

/// Per kernel column kj (computed once per call, since these divide): the output columns [lo, hi)
/// whose input column ow * sw + kj * dw - pw lies inside the row, and where that column is: in the
/// phase planes at PhasePlanes::row(r, phase)[ow + shift]; at stride 1 (phase 0) in the row itself at
/// [ow + shift]. Loops read it through plain variables: clang before 16 rejects structured bindings
/// inside OpenMP regions.
struct TapColumns {
  std::int64_t lo, hi, phase, shift;
};
inline std::vector<TapColumns> tap_columns(const ConvGeometry& g) {
  std::vector<TapColumns> cols;
  for (std::int64_t kj = 0; kj < g.kw; ++kj) {
    const auto [lo, hi] = g.valid_cols(kj);
    const std::int64_t off = kj * g.dw - g.pw, phase = (off % g.sw + g.sw) % g.sw;
    cols.push_back({lo, hi, phase, (off - phase) / g.sw});
  }
  return cols;
}

template <Real T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const std::int64_t mult = g.out_cg(), taps = g.kh * g.kw, total = g.batch * g.out_c;
  const std::vector<TapColumns> cols = tap_columns(g);
#pragma omp parallel if (g.macs() > (1 << 17))
  {
    std::optional<PhasePlanes<T>> phases = phase_planes<T>(g);
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < total; ++i) {
      const std::int64_t n = i / g.out_c, oc = i % g.out_c;
      const T* xp = x + (n * g.in_c + oc / mult) * g.in_plane();
      if (phases) phases->split(xp);
      const T* wp = w + oc * taps;
      T* yp = y + i * g.out_plane();
      std::fill_n(yp, g.out_plane(), bias ? bias[oc] : T(0));
      for (std::int64_t ki = 0; ki < g.kh; ++ki)
        for (std::int64_t kj = 0; kj < g.kw; ++kj) {
          const T wv = wp[ki * g.kw + kj];
          const TapColumns& tap = cols[static_cast<std::size_t>(kj)];
          const std::int64_t lo = tap.lo, hi = tap.hi, phase = tap.phase, shift = tap.shift;
          for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
            const std::int64_t ih = oh * g.sh - g.ph + ki * g.dh;
            if (ih < 0 || ih >= g.in_h) continue;
            const T* src = phases ? phases->row(ih, phase) + shift : xp + ih * g.in_w + shift;  // read at ow >= lo
            T* dst = yp + oh * g.out_w;
#pragma omp simd
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[ow];
          }
        }
    }
  }
}

template <Real T>
void depthwise_input_grad(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  const std::int64_t mult = g.out_cg(), taps = g.kh * g.kw, total = g.batch * g.in_c;
  const std::vector<TapColumns> cols = tap_columns(g);
#pragma omp parallel if (g.macs() > (1 << 17))
  {
    std::optional<PhasePlanes<T>> phases = phase_planes<T>(g);
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < total; ++i) {
      const std::int64_t n = i / g.in_c, ic = i % g.in_c;
      T* dxp = dx + i * g.in_plane();
      if (phases)
        phases->zero();
      else
        std::fill_n(dxp, g.in_plane(), T(0));
      for (std::int64_t m = 0; m < mult; ++m) {
        const std::int64_t oc = ic * mult + m;
        const T* dyp = dy + (n * g.out_c + oc) * g.out_plane();
        const T* wp = w + oc * taps;
        for (std::int64_t ki = 0; ki < g.kh; ++ki)
          for (std::int64_t kj = 0; kj < g.kw; ++kj) {
            const T wv = wp[ki * g.kw + kj];
            const TapColumns& tap = cols[static_cast<std::size_t>(kj)];
            const std::int64_t lo = tap.lo, hi = tap.hi, phase = tap.phase, shift = tap.shift;
            for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
              const std::int64_t ih = oh * g.sh - g.ph + ki * g.dh;
              if (ih < 0 || ih >= g.in_h) continue;
              T* dst = phases ? phases->row(ih, phase) + shift : dxp + ih * g.in_w + shift;  // written at ow >= lo
              const T* src = dyp + oh * g.out_w;
#pragma omp simd
              for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[ow];
            }
          }
      }
      if (phases) phases->merge_into(dxp);
    }
  }
}

template <Real T>
void depthwise_weight_grad(const T* x, const T* dy, T* dw, const ConvGeometry& g) {
  const std::int64_t mult = g.out_cg(), taps = g.kh * g.kw;
  const std::vector<TapColumns> cols = tap_columns(g);
#pragma omp parallel if (g.macs() > (1 << 17))
  {
    std::optional<PhasePlanes<T>> phases = phase_planes<T>(g);
    std::vector<T> acc(static_cast<std::size_t>(taps));
#pragma omp for schedule(static)
    for (std::int64_t oc = 0; oc < g.out_c; ++oc) {
      std::fill(acc.begin(), acc.end(), T(0));
      // Per tap, the sum runs over images, then rows, then columns, whatever the stride.
      for (std::int64_t n = 0; n < g.batch; ++n) {
        const T* xp = x + (n * g.in_c + oc / mult) * g.in_plane();
        const T* dyp = dy + (n * g.out_c + oc) * g.out_plane();
        if (phases) phases->split(xp);
        for (std::int64_t ki = 0; ki < g.kh; ++ki)
          for (std::int64_t kj = 0; kj < g.kw; ++kj) {
            const TapColumns& tap = cols[static_cast<std::size_t>(kj)];
            const std::int64_t lo = tap.lo, hi = tap.hi, phase = tap.phase, shift = tap.shift;
            T sum = acc[static_cast<std::size_t>(ki * g.kw + kj)];
            for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
              const std::int64_t ih = oh * g.sh - g.ph + ki * g.dh;
              if (ih < 0 || ih >= g.in_h) continue;
              const T* src = phases ? phases->row(ih, phase) + shift : xp + ih * g.in_w + shift;  // read at ow >= lo
              const T* gy = dyp + oh * g.out_w;
              T row = 0;
#pragma omp simd reduction(+ : row)
              for (std::int64_t ow = lo; ow < hi; ++ow) row += gy[ow] * src[ow];
              sum += row;
            }
            acc[static_cast<std::size_t>(ki * g.kw + kj)] = sum;
          }
      }
      std::copy(acc.begin(), acc.end(), dw + oc * taps);
    }
  }
}

// ---- general case: im2col + GEMM -------------------------------------------------------------------

/// y[c, j] += bias[c] for the first `count` values j of `channels` output rows (plane_stride apart).
template <Real T>
void add_band_bias(T* y, const T* bias, std::int64_t channels, std::int64_t plane_stride, std::int64_t count) {
  for (std::int64_t oc = 0; oc < channels; ++oc) {
    const T v = bias[oc];
    T* row = y + oc * plane_stride;
#pragma omp simd
    for (std::int64_t j = 0; j < count; ++j) row[j] += v;
  }
}

#ifdef GKD_SGEMM
/// Whether float convolutions may use the implicit GEMM (a switch for benchmarks).
inline bool& use_implicit_gemm() {
  static bool on = true;
  return on;
}
/// Whether conv_forward_implicit computes each image as one run over the padded width (columns
/// oh (in_w + 2 pw) + ow for ow < in_w + 2 pw, the 2 pw columns past each row's end discarded) rather
/// than one run per output row (narrow rows: 16 wide, or 8 in the AVX2 build): when the run's kernel
/// strips waste at most a quarter of their columns and the im2col matrix has fewer than 1024 rows.
/// Measured (Xeon, 1 thread, batch 4, 16 x 16, AVX-512): 1.1-1.6x im2col up to 64 channels, even at
/// 128, 0.90-0.95x from 256 on, where the packed GEMM over im2col's columns is the faster kernel.
inline bool implicit_gemm_over_padded_width(const ConvGeometry& g) {
  const std::int64_t strips = ((g.out_h - 1) * (g.in_w + 2 * g.pw) + g.out_w + sgemm::kNR - 1) / sgemm::kNR;
  return g.k() < 1024 && 4 * strips * sgemm::kNR <= 5 * g.out_plane();
}

/// Whether a float convolution runs as an implicit GEMM (conv_forward_implicit): stride 1, not pointwise
/// or depthwise, and rows at least one kernel strip wide or narrow ones over the padded width. Measured
/// (Xeon, 1 thread, batch 4, 3x3 and 5x5): 1.5-1.9x the im2col path up to 32 output channels, 1.03-1.46x
/// for 48-256 (AVX-512 build); 1.4-1.8x and 1.0-1.5x in the AVX2 build.
inline bool implicit_gemm_pays_off(const ConvGeometry& g) {
  return use_implicit_gemm() && g.sh == 1 && g.sw == 1 && !g.pointwise() && !g.depthwise() &&
         (g.out_w >= sgemm::kNR || implicit_gemm_over_padded_width(g));
}

/// Values in one zero-padded plane (pad_planes).
inline std::int64_t padded_plane(const ConvGeometry& g) { return (g.in_h + 2 * g.ph) * (g.in_w + 2 * g.pw); }

/// Copies `channels` input planes (of one image, from x on) into zero-padded planes
/// [channels][in_h + 2 ph][in_w + 2 pw].
inline void pad_planes(const float* x, std::int64_t channels, const ConvGeometry& g, float* padded) {
  const std::int64_t wp = g.in_w + 2 * g.pw;
  for (std::int64_t c = 0; c < channels; ++c) {
    float* dst = padded + c * (g.in_h + 2 * g.ph) * wp;
    std::fill_n(dst, g.ph * wp + g.pw, 0.f);  // top rows, first row's left padding
    dst += g.ph * wp + g.pw;
    for (std::int64_t h = 0; h < g.in_h; ++h, dst += wp) {
      std::memcpy(dst, x + (c * g.in_h + h) * g.in_w, static_cast<std::size_t>(g.in_w) * sizeof(float));
      // right padding and the next row's left padding; after the last row, right padding and bottom rows
      std::fill_n(dst + g.in_w, h + 1 < g.in_h ? 2 * g.pw : g.pw + g.ph * wp, 0.f);
    }
  }
}

/// Where row (c, ki, kj) of im2col's matrix starts in `channels` padded planes (pad_planes), for
/// output row 0: padded row ki dh of channel c, from column kj dw on; output row oh is oh (in_w + 2 pw)
/// values further on. Rows are in im2col's order (channel, then tap).
inline std::vector<const float*> padded_rows(const float* padded, std::int64_t channels, const ConvGeometry& g) {
  const std::int64_t wp = g.in_w + 2 * g.pw, pp = padded_plane(g);
  std::vector<const float*> rows;
  rows.reserve(static_cast<std::size_t>(channels * g.kh * g.kw));
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t ki = 0; ki < g.kh; ++ki)
      for (std::int64_t kj = 0; kj < g.kw; ++kj) rows.push_back(padded + c * pp + ki * g.dh * wp + kj * g.dw);
  return rows;
}

/// Stride-1 float convolution as an implicit GEMM: each image is copied once into zero-padded planes,
/// and row (c, ki, kj) of its im2col matrix, for output row oh, is padded row oh + ki dh of channel c
/// from column kj dw on. The GEMM reads those rows in place through a table of row pointers, so nothing
/// is unfolded: one run of out_w columns per output row (stride 1 makes each run contiguous), or, for
/// narrow rows, one run over the padded width (implicit_gemm_over_padded_width) whose valid columns are
/// then copied out. Output channels come in blocks of at most kMC rows (one packed A block each).
inline void conv_forward_implicit(const float* x, const float* w, const float* bias, float* y, const ConvGeometry& g) {
  const std::int64_t wp = g.in_w + 2 * g.pw, k = g.k(), op = g.out_plane();
  const bool padded_width = g.out_w < sgemm::kNR;  // implicit_gemm_pays_off admits these only over the padded width
  const std::int64_t run = padded_width ? (g.out_h - 1) * wp + g.out_w : g.out_w;  // columns per run
  const std::int64_t row_blocks = (g.out_cg() + sgemm::kMC - 1) / sgemm::kMC;
  const std::int64_t block = ((g.out_cg() + row_blocks - 1) / row_blocks + sgemm::kMR - 1) / sgemm::kMR * sgemm::kMR;
#pragma omp parallel if (g.parallel_batch())
  {
    float* const padded = scratch<float>(static_cast<std::size_t>(g.in_c * padded_plane(g)), 0);
    float* const wide = padded_width ? scratch<float>(static_cast<std::size_t>(block * run), 2) : nullptr;
    const std::vector<const float*> rows = padded_rows(padded, g.in_c, g);  // group grp's: [grp k, (grp + 1) k)
#pragma omp for schedule(dynamic)
    for (std::int64_t n = 0; n < g.batch; ++n) {
      pad_planes(x + n * g.in_c * g.in_plane(), g.in_c, g, padded);
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        const sgemm::GatheredRows b{rows.data() + grp * k, 0};
        for (std::int64_t m0 = 0; m0 < g.out_cg(); m0 += block) {
          const std::int64_t m = std::min(block, g.out_cg() - m0);
          const float* wb = w + (grp * g.out_cg() + m0) * k;
          float* out = y + (n * g.out_c + grp * g.out_cg() + m0) * op;
          if (padded_width) {
            sgemm::gemm_unpacked_b(m, run, k, wb, k, std::int64_t{1}, b, wide, run, false);
            for (std::int64_t o = 0; o < m; ++o)
              for (std::int64_t oh = 0; oh < g.out_h; ++oh)
                std::memcpy(out + o * op + oh * g.out_w, wide + o * run + oh * wp,
                            static_cast<std::size_t>(g.out_w) * sizeof(float));
          } else {
            sgemm::gemm_unpacked_b(m, g.out_w, k, wb, k, std::int64_t{1}, b, out, op, false,
                                   {.count = g.out_h, .b_step = wp, .c_step = g.out_w});
          }
          if (bias) add_band_bias(out, bias + grp * g.out_cg() + m0, m, op, op);
        }
      }
    }
  }
}
#endif

/// y = conv(x, w) + bias for the whole batch (x, w, y contiguous; bias may be null).
template <Real T>
void conv_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  if (g.depthwise()) return depthwise_forward(x, w, bias, y, g);
#ifdef GKD_SGEMM
  if constexpr (std::is_same_v<T, float>)
    if (implicit_gemm_pays_off(g)) return conv_forward_implicit(x, w, bias, y, g);
#endif
  const std::int64_t k = g.k(), op = g.out_plane(), band = g.band_rows(sizeof(T));
  const bool pointwise = g.pointwise();
  const std::size_t buffer = pointwise ? 0 : static_cast<std::size_t>(k * band * g.out_w);
#pragma omp parallel if (g.parallel_batch())
  {
    T* const cols = scratch<T>(buffer, 0);
#pragma omp for schedule(dynamic)
    for (std::int64_t n = 0; n < g.batch; ++n) {
      const T* xn = x + n * g.in_c * g.in_plane();
      T* yn = y + n * g.out_c * op;
      for (std::int64_t oh0 = 0; oh0 < g.out_h; oh0 += band) {
        const std::int64_t oh1 = std::min(g.out_h, oh0 + band), cols_n = (oh1 - oh0) * g.out_w;
        for (std::int64_t grp = 0; grp < g.groups; ++grp) {
          const T* xg = xn + grp * g.in_cg() * g.in_plane();
          if (!pointwise) im2col(xg, g, oh0, oh1, cols);
          T* out = yn + grp * g.out_cg() * op + oh0 * g.out_w;
          strided_gemm(g.out_cg(), cols_n, k, w + grp * g.out_cg() * k, k, std::int64_t{1}, pointwise ? xg : cols,
                       cols_n, std::int64_t{1}, out, op, false);
          if (bias) add_band_bias(out, bias + grp * g.out_cg(), g.out_cg(), op, cols_n);
        }
      }
    }
  }
}

#ifdef GKD_SGEMM
/// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of dy, with the
/// weight's channels swapped and its taps flipped, padded by (k - 1) d - p. Its geometry, where that
/// padding is not negative.
inline std::optional<ConvGeometry> input_grad_as_conv(const ConvGeometry& g) {
  if (g.sh != 1 || g.sw != 1 || g.ph > (g.kh - 1) * g.dh || g.pw > (g.kw - 1) * g.dw) return std::nullopt;
  return ConvGeometry{.batch = g.batch, .in_c = g.out_c, .in_h = g.out_h, .in_w = g.out_w, .out_c = g.in_c,
                      .out_h = g.in_h, .out_w = g.in_w, .kh = g.kh, .kw = g.kw, .ph = (g.kh - 1) * g.dh - g.ph,
                      .pw = (g.kw - 1) * g.dw - g.pw, .dh = g.dh, .dw = g.dw, .groups = g.groups};
}

/// w [out_c, in_cg, kh, kw] -> [in_c, out_cg, kh, kw] with the taps flipped (see input_grad_as_conv).
inline void swap_and_flip(const float* w, const ConvGeometry& g, float* flipped) {
  const std::int64_t taps = g.kh * g.kw;
  for (std::int64_t grp = 0; grp < g.groups; ++grp)
    for (std::int64_t o = 0; o < g.out_cg(); ++o)
      for (std::int64_t c = 0; c < g.in_cg(); ++c) {
        const float* src = w + ((grp * g.out_cg() + o) * g.in_cg() + c) * taps;
        float* dst = flipped + ((grp * g.in_cg() + c) * g.out_cg() + o) * taps;
        for (std::int64_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
      }
}
#endif

/// dx = conv(., w)ᵀ dy for the whole batch: GEMM with the transposed weight, then col2im. Float
/// stride-1 convolutions run the implicit GEMM of the equivalent convolution (input_grad_as_conv)
/// instead: Xeon, 1 thread, batch 4, 3x3 and 5x5, 1.3-2.5x up to 32 channels, 0.98-1.08x for 64-128
/// (AVX2 build 1.4-2.2x and 1.0-1.2x).
template <Real T>
void conv_input_grad(const T* dy, const T* w, T* dx, const ConvGeometry& g) {
  if (g.depthwise()) return depthwise_input_grad(dy, w, dx, g);
#ifdef GKD_SGEMM
  if constexpr (std::is_same_v<T, float>) {
    if (const auto gt = input_grad_as_conv(g); gt && implicit_gemm_pays_off(*gt)) {
      float* const flipped = scratch<float>(static_cast<std::size_t>(g.out_c * g.k()), 1);
      swap_and_flip(w, g, flipped);
      return conv_forward_implicit(dy, flipped, nullptr, dx, *gt);
    }
  }
#endif
  const std::int64_t k = g.k(), op = g.out_plane(), band = g.band_rows(sizeof(T));
  const bool pointwise = g.pointwise();
  const std::size_t buffer = pointwise ? 0 : static_cast<std::size_t>(k * band * g.out_w);
#pragma omp parallel if (g.parallel_batch())
  {
    T* const cols = scratch<T>(buffer, 0);
#pragma omp for schedule(dynamic)
    for (std::int64_t n = 0; n < g.batch; ++n) {
      const T* dyn = dy + n * g.out_c * op;
      T* dxn = dx + n * g.in_c * g.in_plane();
      if (!pointwise) std::fill_n(dxn, g.in_c * g.in_plane(), T(0));
      for (std::int64_t oh0 = 0; oh0 < g.out_h; oh0 += band) {
        const std::int64_t oh1 = std::min(g.out_h, oh0 + band), cols_n = (oh1 - oh0) * g.out_w;
        for (std::int64_t grp = 0; grp < g.groups; ++grp) {
          T* dxg = dxn + grp * g.in_cg() * g.in_plane();
          // dcols [k x cols] = Wᵀ [k x out_cg] · dy [out_cg x cols]
          strided_gemm(k, cols_n, g.out_cg(), w + grp * g.out_cg() * k, std::int64_t{1}, k,
                       dyn + grp * g.out_cg() * op + oh0 * g.out_w, op, std::int64_t{1}, pointwise ? dxg : cols,
                       cols_n, false);
          if (!pointwise) col2im(cols, g, oh0, oh1, dxg);
        }
      }
    }
  }
}

/// Number of partial weight-gradient sums: images n, n + S, n + 2S, ... go to slot n % S, and the
/// slots are added in order, so the result does not depend on the thread count or the schedule.
inline std::int64_t weight_grad_slots(std::int64_t batch) { return std::clamp<std::int64_t>(batch, 1, 8); }

/// dw = the sum over images n of image_share(state, n, acc), each adding image n's share into acc: dw
/// itself or slot n % S's partial sum (see weight_grad_slots), images run in parallel by slot.
/// `thread_state()` makes each thread's scratch state first.
template <Real T, class ThreadState, class ImageShare>
void sum_over_slots(T* dw, std::int64_t wsize, const ConvGeometry& g, const ThreadState& thread_state,
                    const ImageShare& image_share) {
  const std::int64_t slots = weight_grad_slots(g.batch);
  T* const partial = scratch<T>(static_cast<std::size_t>((slots - 1) * wsize), 1);
#pragma omp parallel if (g.parallel_batch())
  {
    auto state = thread_state();
#pragma omp for schedule(dynamic)
    for (std::int64_t slot = 0; slot < slots; ++slot) {
      T* acc = slot == 0 ? dw : partial + (slot - 1) * wsize;
      std::fill_n(acc, wsize, T(0));
      for (std::int64_t n = slot; n < g.batch; n += slots) image_share(state, n, acc);
    }
  }
  for (std::int64_t slot = 1; slot < slots; ++slot) {
    const T* p = partial + (slot - 1) * wsize;
    for (std::int64_t i = 0; i < wsize; ++i) dw[i] += p[i];
  }
}

#ifdef GKD_SGEMM
/// Whether a float weight gradient skips im2col (conv_weight_grad_implicit): stride 1, not pointwise or
/// depthwise, at least 16 output channels per group, and im2col rows (k = in_cg kh kw) filling at least
/// two kernel strips. Measured against the im2col path (Xeon, batch 4, 3x3 and 5x5, 16 to 1024 channels
/// at 8x8 to 128x128): AVX-512 build 1.0-2.0x on 1 thread, 1.1-2.1x on 2 (the most for 512-1024
/// channels at 8x8 and 16x16, where the im2col path's per-image partial sums of large weights cost as
/// much as the products); AVX2 build 1.0-1.3x on 1 thread, 0.9-1.5x on 2. Outside the rule it lost:
/// 8 output channels 0.35-0.45x (the dot-product kernel, weight_gemm, suits them), 1 or 3 input
/// channels (k of 9 or 27) 0.4-0.9x.
inline bool implicit_weight_grad_pays_off(const ConvGeometry& g) {
  return use_implicit_gemm() && g.sh == 1 && g.sw == 1 && !g.pointwise() && !g.depthwise() && g.out_cg() >= 16 &&
         g.k() >= 2 * sgemm::kNR;
}

/// Stride-1 float weight gradient without im2col. With an image's channels in zero-padded planes,
/// column (c, ki, kj) of im2col(x)ᵀ is, per output row, a window of channel c's plane, so the GEMM
/// dW [out_cg x k] += dy [out_cg x plane] · im2col(x)ᵀ packs its B panels straight from there
/// (sgemm::GatheredColumns), one GEMM per image over its whole plane. Large planes (64 x 64 and up)
/// sum images in parallel into partial sums (sum_over_slots); smaller ones, whose weights are large
/// next to their planes, sum the images in order into dW, the threads splitting dW's columns by input
/// channel (each pads only its own channels). Either way every value's summation order is fixed by
/// the geometry, whatever the thread count.
inline void conv_weight_grad_implicit(const float* x, const float* dy, float* dw, const ConvGeometry& g) {
  const std::int64_t k = g.k(), taps = g.kh * g.kw, op = g.out_plane(), wp = g.in_w + 2 * g.pw;
  // acc's columns of input channels [c0, c0 + channels) in every group += image n's share; the padded
  // planes and their row table `columns` hold those channels.
  const auto image_share = [&](std::int64_t n, std::int64_t c0, std::int64_t channels, float* padded,
                               const std::vector<const float*>& columns, float* acc) {
    const sgemm::GatheredColumns b{columns.data(), g.out_w, wp};
    const auto pack_block = [&](std::int64_t pc, std::int64_t kc, std::int64_t jc, std::int64_t nc, float* dst) {
      sgemm::pack_b(pc, kc, jc, nc, b, dst);
    };
    for (std::int64_t grp = 0; grp < g.groups; ++grp) {
      pad_planes(x + (n * g.in_c + grp * g.in_cg() + c0) * g.in_plane(), channels, g, padded);
      sgemm::gemm_packing_b(g.out_cg(), channels * taps, op, dy + (n * g.out_c + grp * g.out_cg()) * op, op,
                            std::int64_t{1}, pack_block, acc + grp * g.out_cg() * k + c0 * taps, k, std::int64_t{1},
                            true);
    }
  };
  if (op >= 4096) {
    const auto thread_state = [&] {
      float* const padded = scratch<float>(static_cast<std::size_t>(g.in_cg() * padded_plane(g)), 0);
      return std::pair{padded, padded_rows(padded, g.in_cg(), g)};
    };
    return sum_over_slots(dw, g.out_c * k, g, thread_state,
                          [&](auto& state, std::int64_t n, float* acc) {
                            image_share(n, 0, g.in_cg(), state.first, state.second, acc);
                          });
  }
  const std::int64_t parts =
      in_parallel_region() || g.macs() < (1 << 21) ? 1 : std::min<std::int64_t>(num_threads(), g.in_cg());
  std::fill_n(dw, g.out_c * k, 0.f);
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(parts)) if (parts > 1)
  for (std::int64_t part = 0; part < parts; ++part) {
    const std::int64_t c0 = part * g.in_cg() / parts, channels = (part + 1) * g.in_cg() / parts - c0;
    float* const padded = scratch<float>(static_cast<std::size_t>(channels * padded_plane(g)), 0);
    const std::vector<const float*> columns = padded_rows(padded, channels, g);
    for (std::int64_t n = 0; n < g.batch; ++n) image_share(n, c0, channels, padded, columns, dw);
  }
}
#endif

/// dw = dy · im2col(x)ᵀ summed over the batch; deterministic (see weight_grad_slots).
template <Real T>
void conv_weight_grad(const T* x, const T* dy, T* dw, const ConvGeometry& g) {
  if (g.depthwise()) return depthwise_weight_grad(x, dy, dw, g);
#ifdef GKD_SGEMM
  if constexpr (std::is_same_v<T, float>)
    if (implicit_weight_grad_pays_off(g)) return conv_weight_grad_implicit(x, dy, dw, g);
#endif
  const std::int64_t k = g.k(), op = g.out_plane(), band = g.band_rows(sizeof(T));
  const bool pointwise = g.pointwise();
  const std::size_t buffer = pointwise ? 0 : static_cast<std::size_t>(k * band * g.out_w);
  const auto thread_state = [&] { return scratch<T>(buffer, 0); };
  const auto image_share = [&](T* cols, std::int64_t n, T* acc) {
    const T* xn = x + n * g.in_c * g.in_plane();
    const T* dyn = dy + n * g.out_c * op;
    for (std::int64_t oh0 = 0; oh0 < g.out_h; oh0 += band) {
      const std::int64_t oh1 = std::min(g.out_h, oh0 + band), cols_n = (oh1 - oh0) * g.out_w;
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = xn + grp * g.in_cg() * g.in_plane();
        if (!pointwise) im2col(xg, g, oh0, oh1, cols);
        // dW [out_cg x k] += dy [out_cg x cols] · colsᵀ [cols x k]
        weight_gemm(g.out_cg(), k, cols_n, dyn + grp * g.out_cg() * op + oh0 * g.out_w, op, pointwise ? xg : cols,
                    cols_n, acc + grp * g.out_cg() * k, k);
      }
    }
  };
  sum_over_slots(dw, g.out_c * k, g, thread_state, image_share);
}

/// db[c] = sum of dy[n, c, :, :] over the batch; dy is [batch, channels, plane].
template <Real T>
void channel_sums(const T* dy, std::int64_t batch, std::int64_t channels, std::int64_t plane, T* db) {
#pragma omp parallel for schedule(static) if (batch * channels * plane > (1 << 16))
  for (std::int64_t c = 0; c < channels; ++c) {
    double acc = 0;
    for (std::int64_t n = 0; n < batch; ++n) {
      const T* p = dy + (n * channels + c) * plane;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (std::int64_t i = 0; i < plane; ++i) s += p[i];
      acc += static_cast<double>(s);
    }
    db[c] = static_cast<T>(acc);
  }
}

/// y[n, c, :, :] += b[c].
template <Real T>
void add_channel_bias(T* y, const T* b, std::int64_t batch, std::int64_t channels, std::int64_t plane) {
#pragma omp parallel for schedule(static) if (batch * channels * plane > (1 << 16))
  for (std::int64_t i = 0; i < batch * channels; ++i) {
    const T v = b[i % channels];
    T* p = y + i * plane;
#pragma omp simd
    for (std::int64_t j = 0; j < plane; ++j) p[j] += v;
  }
}

/// Checks the hyper-parameters shared by conv2d and conv_transpose2d.
inline void check_conv_params(std::string_view op, const Shape& x, const Shape& w, Size2 stride, Size2 padding,
                              Size2 dilation, std::int64_t groups) {
  GKD_CHECK(stride.h > 0 && stride.w > 0, op,
            "stride must be positive, got " << stride << " (input " << to_string(x) << ", weight " << to_string(w) << ")");
  GKD_CHECK(dilation.h > 0 && dilation.w > 0, op,
            "dilation must be positive, got " << dilation << " (input " << to_string(x) << ", weight " << to_string(w)
                                              << ")");
  GKD_CHECK(padding.h >= 0 && padding.w >= 0, op,
            "padding must be non-negative, got " << padding << " (input " << to_string(x) << ", weight "
                                                 << to_string(w) << ")");
  GKD_CHECK(groups > 0, op, "groups must be positive, got " << groups << " (input " << to_string(x) << ")");
}

template <Real T>
void check_conv_tensors(std::string_view op, const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias) {
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(weight.defined(), op, "weight is an undefined tensor (input " << to_string(x.shape()) << ")");
  check_cpu(x, op);
  check_cpu(weight, op);
  if (bias.defined()) check_cpu(bias, op);
  GKD_CHECK(x.dim() == 4, op, "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  GKD_CHECK(weight.dim() == 4, op,
            "weight must be 4-D, got " << to_string(weight.shape()) << " for input " << to_string(x.shape()));
}

}  // namespace detail

/// 2-D convolution (cross-correlation) of x [N, Cin, H, W] with weight [Cout, Cin/groups, kh, kw]
/// and optional bias [Cout]; output [N, Cout, OH, OW] with OH = (H + 2*pad - dil*(kh-1) - 1)/stride + 1.
/// Differentiable in x, weight and bias.
/// @param bias  an undefined tensor (`{}`) for none
/// @param groups splits the channels into `groups` independent convolutions (Cin and Cout divisible)
template <Real T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(), Size2 stride = 1,
                 Size2 padding = 0, Size2 dilation = 1, std::int64_t groups = 1) {
  constexpr std::string_view op = "conv2d";
  GKD_CUDA_DISPATCH(x.device(), op,
                    conv2d(x, weight, bias,
                           cuda::ConvParams{stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w, groups}));
  detail::check_conv_tensors(op, x, weight, bias);
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  detail::check_conv_params(op, xs, ws, stride, padding, dilation, groups);
  GKD_CHECK(xs[1] % groups == 0 && ws[0] % groups == 0 && ws[1] * groups == xs[1] && ws[0] > 0 && ws[1] > 0, op,
            "input " << to_string(xs) << " and weight " << to_string(ws) << " do not match with groups=" << groups
                     << " (expected weight [Cout, Cin/groups, kh, kw] with Cin and Cout divisible by groups)");
  GKD_CHECK(ws[2] > 0 && ws[3] > 0, op, "weight " << to_string(ws) << " has an empty kernel");
  const std::int64_t ekh = dilation.h * (ws[2] - 1) + 1, ekw = dilation.w * (ws[3] - 1) + 1;
  GKD_CHECK(xs[2] + 2 * padding.h >= ekh && xs[3] + 2 * padding.w >= ekw, op,
            "kernel of weight " << to_string(ws) << " (dilated " << ekh << "x" << ekw << ") is larger than input "
                                << to_string(xs) << " padded by " << padding);
  GKD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == ws[0]), op,
            "bias " << to_string(bias.shape()) << " does not match weight " << to_string(ws) << " (expected ["
                    << ws[0] << "])");
  detail::ConvGeometry g;
  g.batch = xs[0], g.in_c = xs[1], g.in_h = xs[2], g.in_w = xs[3], g.out_c = ws[0];
  g.kh = ws[2], g.kw = ws[3], g.sh = stride.h, g.sw = stride.w, g.ph = padding.h, g.pw = padding.w;
  g.dh = dilation.h, g.dw = dilation.w, g.groups = groups;
  g.out_h = (g.in_h + 2 * g.ph - ekh) / g.sh + 1;
  g.out_w = (g.in_w + 2 * g.pw - ekw) / g.sw + 1;

  const Precision p = detail::autocast_for<T>();
  const Tensor<T> xc = detail::rounded_copy(x, p);
  const Tensor<T> wc = detail::rounded_copy(weight, p);
  const Tensor<T> bc = detail::rounded_copy(bias, p);
  Tensor<T> y = Tensor<T>::empty({g.batch, g.out_c, g.out_h, g.out_w});
  detail::conv_forward(xc.data(), wc.data(), bc.defined() ? bc.data() : nullptr, y.data(), g);
  detail::round_in_place(y, p);

  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), g, gx, gw, gb, p](const Tensor<T>& grad) {
                  const Tensor<T> gc = detail::rounded_copy(grad, p);
                  Tensor<T> dx, dw, db;
                  if (gx) {
                    dx = Tensor<T>::empty({g.batch, g.in_c, g.in_h, g.in_w});
                    detail::conv_input_grad(gc.data(), wts.data(), dx.data(), g);
                  }
                  if (gw) {
                    dw = Tensor<T>::empty({g.out_c, g.in_cg(), g.kh, g.kw});
                    detail::conv_weight_grad(xs.data(), gc.data(), dw.data(), g);
                  }
                  if (gb) {
                    db = Tensor<T>::empty({g.out_c});
                    detail::channel_sums(gc.data(), g.batch, g.out_c, g.out_plane(), db.data());
                  }
                  for (Tensor<T>* d : {&dx, &dw, &db}) detail::round_in_place(*d, p);
                  return std::vector<Tensor<T>>{dx, dw, db};
                });
}

/// conv2d with named parameters: `conv2d(x, w, b, Conv2dOptions{.stride = 2, .padding = 1})`.
template <Real T, std::same_as<Conv2dOptions> Options>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const Options& options) {
  return conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

namespace detail {

/// Validates conv_transpose2d's arguments (host and GPU alike) and returns its output [C_out, H, W].
template <Real T>
std::array<std::int64_t, 3> conv_transpose2d_output(std::string_view op, const Shape& xs, const Shape& ws,
                                                    const Tensor<T>& bias, Size2 stride, Size2 padding,
                                                    Size2 output_padding, std::int64_t groups, Size2 dilation) {
  check_conv_params(op, xs, ws, stride, padding, dilation, groups);
  GKD_CHECK(xs[1] % groups == 0 && ws[0] == xs[1] && ws[1] > 0, op,
            "input " << to_string(xs) << " and weight " << to_string(ws) << " do not match with groups=" << groups
                     << " (expected weight [Cin, Cout/groups, kh, kw] with Cin divisible by groups)");
  GKD_CHECK(ws[2] > 0 && ws[3] > 0, op, "weight " << to_string(ws) << " has an empty kernel");
  GKD_CHECK(output_padding.h >= 0 && output_padding.w >= 0 &&
                (output_padding.h < stride.h || output_padding.h < dilation.h) &&
                (output_padding.w < stride.w || output_padding.w < dilation.w),
            op,
            "output_padding " << output_padding << " must be non-negative and smaller than stride " << stride
                              << " or dilation " << dilation << " (input " << to_string(xs) << ", weight "
                              << to_string(ws) << ")");
  const std::int64_t out_c = ws[1] * groups;
  GKD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == out_c), op,
            "bias " << to_string(bias.shape()) << " does not match weight " << to_string(ws) << " with groups="
                    << groups << " (expected [" << out_c << "])");
  const std::int64_t oh = (xs[2] - 1) * stride.h - 2 * padding.h + dilation.h * (ws[2] - 1) + output_padding.h + 1;
  const std::int64_t ow = (xs[3] - 1) * stride.w - 2 * padding.w + dilation.w * (ws[3] - 1) + output_padding.w + 1;
  GKD_CHECK(oh > 0 && ow > 0, op,
            "output size " << oh << "x" << ow << " is not positive (input " << to_string(xs) << ", weight "
                           << to_string(ws) << ", stride " << stride << ", padding " << padding << ")");
  return {out_c, oh, ow};
}

}  // namespace detail

/// 2-D transposed convolution (the gradient of conv2d w.r.t. its input) of x [N, Cin, H, W] with
/// weight [Cin, Cout/groups, kh, kw] and optional bias [Cout]; output [N, Cout, OH, OW] with
/// OH = (H-1)*stride - 2*pad + dil*(kh-1) + output_padding + 1. Differentiable in x, weight and bias.
/// @param output_padding extra rows/columns on the bottom/right; must be smaller than stride or dilation
template <Real T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = Tensor<T>(),
                           Size2 stride = 1, Size2 padding = 0, Size2 output_padding = 0, std::int64_t groups = 1,
                           Size2 dilation = 1) {
  constexpr std::string_view op = "conv_transpose2d";
  GKD_CUDA_DISPATCH(x.device(), op,
                    conv_transpose2d(x, weight, bias,
                                     cuda::ConvParams{stride.h, stride.w, padding.h, padding.w, dilation.h, dilation.w,
                                                      groups},
                                     output_padding.h, output_padding.w));
  detail::check_conv_tensors(op, x, weight, bias);
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  const auto [out_c, oh, ow] =
      detail::conv_transpose2d_output(op, xs, ws, bias, stride, padding, output_padding, groups, dilation);
  // The forward convolution that this transposes: its input is our output and vice versa.
  detail::ConvGeometry g;
  g.batch = xs[0], g.in_c = out_c, g.in_h = oh, g.in_w = ow, g.out_c = xs[1], g.out_h = xs[2], g.out_w = xs[3];
  g.kh = ws[2], g.kw = ws[3], g.sh = stride.h, g.sw = stride.w, g.ph = padding.h, g.pw = padding.w;
  g.dh = dilation.h, g.dw = dilation.w, g.groups = groups;

  const Precision p = detail::autocast_for<T>();
  const Tensor<T> xc = detail::rounded_copy(x, p);
  const Tensor<T> wc = detail::rounded_copy(weight, p);
  Tensor<T> y = Tensor<T>::empty({g.batch, out_c, oh, ow});
  detail::conv_input_grad(xc.data(), wc.data(), y.data(), g);
  if (bias.defined()) {
    const Tensor<T> bc = detail::rounded_copy(bias, p);
    detail::add_channel_bias(y.data(), bc.data(), g.batch, out_c, g.in_plane());
  }
  detail::round_in_place(y, p);

  const bool gx = needs_grad(x), gw = needs_grad(weight), gb = needs_grad(bias);
  return record(op, y, {x, weight, bias},
                [xs = gw ? xc : Tensor<T>(), wts = gx ? wc : Tensor<T>(), g, gx, gw, gb, p](const Tensor<T>& grad) {
                  const Tensor<T> gc = detail::rounded_copy(grad, p);
                  Tensor<T> dx, dw, db;
                  if (gx) {
                    dx = Tensor<T>::empty({g.batch, g.out_c, g.out_h, g.out_w});
                    detail::conv_forward(gc.data(), wts.data(), static_cast<const T*>(nullptr), dx.data(), g);
                  }
                  if (gw) {
                    dw = Tensor<T>::empty({g.out_c, g.in_cg(), g.kh, g.kw});
                    detail::conv_weight_grad(gc.data(), xs.data(), dw.data(), g);
                  }
                  if (gb) {
                    db = Tensor<T>::empty({g.in_c});
                    detail::channel_sums(gc.data(), g.batch, g.in_c, g.in_plane(), db.data());
                  }
                  for (Tensor<T>* d : {&dx, &dw, &db}) detail::round_in_place(*d, p);
                  return std::vector<Tensor<T>>{dx, dw, db};
                });
}

/// conv_transpose2d with named parameters:
/// `conv_transpose2d(x, w, b, ConvTranspose2dOptions{.stride = 2, .output_padding = 1})`.
template <Real T, std::same_as<ConvTranspose2dOptions> Options>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const Options& options) {
  return conv_transpose2d(x, weight, bias, options.stride, options.padding, options.output_padding, options.groups,
                          options.dilation);
}

}  // namespace gkd

GKD_REGISTER_OPS(conv, "conv2d", "conv_transpose2d")
