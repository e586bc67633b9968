// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Spatial resizing of NCHW tensors with PyTorch's semantics: bilinear (align_corners true or false)
/// and nearest ('nearest' mode: source = floor(dst * in / out)), each to an explicit output size or
/// by a scale factor. Differentiable.
///
/// Integers are sizes and floating-point values are scale factors, as with F.interpolate:
/// @code
///   auto a = gkd::upsample_bilinear2d(x, {64, 64}, /*align_corners=*/false);  // output 64x64
///   auto b = gkd::upsample_bilinear2d(x, 2.0, true);                          // scale 2 in both dims
///   auto c = gkd::upsample_nearest2d(x, gkd::Scale2{2.0, 1.5});               // per-dim scales
/// @endcode
/// With a scale factor the output size is floor(in * scale), and (without align_corners) the source
/// index uses 1 / scale rather than in / out, exactly as PyTorch does when given scale_factor.
#include <cmath>
#include <concepts>
#include <optional>
#include <vector>

#include "gkd/ops/conv.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/upsample.hpp"
#endif

namespace gkd {

/// Scale factors (height, width); converts from one floating-point value or two.
struct Scale2 {
  double h = 1;
  double w = 1;
  template <std::floating_point F>
  constexpr Scale2(F both) : h(static_cast<double>(both)), w(static_cast<double>(both)) {}
  template <std::floating_point A, std::floating_point B>
  constexpr Scale2(A height, B width) : h(static_cast<double>(height)), w(static_cast<double>(width)) {}
};

/// Prints `(h, w)`.
inline std::ostream& operator<<(std::ostream& out, const Scale2& s) { return out << '(' << s.h << ", " << s.w << ')'; }

namespace detail {

/// Output size and the optional scale factor that PyTorch hands to its kernels.
struct ResizeDim {
  std::int64_t in = 0, out = 0;
  std::optional<double> scale;
};

/// The two source indices and weights of each output index along one dim (PyTorch's
/// compute_source_index_and_lambda, in the arithmetic type T).
template <Real T>
struct LinearTaps {
  std::vector<std::int64_t> i0, i1;
  std::vector<T> l0, l1;
};

template <Real T>
LinearTaps<T> linear_taps(const ResizeDim& d, bool align_corners) {
  LinearTaps<T> taps;
  const auto n = static_cast<std::size_t>(d.out);
  taps.i0.resize(n), taps.i1.resize(n), taps.l0.resize(n), taps.l1.resize(n);
  T ratio;
  if (align_corners) {
    ratio = d.out > 1 ? static_cast<T>(d.in - 1) / static_cast<T>(d.out - 1) : T(0);
  } else {
    ratio = d.scale && *d.scale > 0 ? static_cast<T>(1.0 / *d.scale) : static_cast<T>(d.in) / static_cast<T>(d.out);
  }
  for (std::int64_t o = 0; o < d.out; ++o) {
    const auto k = static_cast<std::size_t>(o);
    if (d.out == d.in) {
      taps.i0[k] = taps.i1[k] = o;
      taps.l0[k] = T(1), taps.l1[k] = T(0);
      continue;
    }
    T real;
    if (align_corners) {
      real = ratio * static_cast<T>(o);
    } else {
      real = ratio * (static_cast<T>(o) + T(0.5)) - T(0.5);
      if (real < T(0)) real = T(0);
    }
    // PyTorch floors through float (floorf) even for double tensors.
    const std::int64_t i0 = std::min(static_cast<std::int64_t>(std::floor(static_cast<float>(real))), d.in - 1);
    const T l1 = std::min(std::max(real - static_cast<T>(i0), T(0)), T(1));
    taps.i0[k] = i0;
    taps.i1[k] = i0 + (i0 < d.in - 1 ? 1 : 0);
    taps.l1[k] = l1;
    taps.l0[k] = T(1) - l1;
  }
  return taps;
}

/// Source index of each output index for 'nearest' in PyTorch's forward kernel: floor(o * scale)
/// with the scale in the arithmetic type T (floored through float, like PyTorch).
template <Real T>
std::vector<std::int64_t> nearest_taps_forward(const ResizeDim& d) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(d.out));
  const T scale = d.scale && *d.scale > 0 ? static_cast<T>(1.0 / *d.scale) : static_cast<T>(d.in) / static_cast<T>(d.out);
  for (std::int64_t o = 0; o < d.out; ++o) {
    const T real = scale * static_cast<T>(o);
    idx[static_cast<std::size_t>(o)] = std::min(static_cast<std::int64_t>(std::floor(static_cast<float>(real))), d.in - 1);
  }
  return idx;
}

/// Source index of each output index for 'nearest' in PyTorch's backward kernel (nearest_idx:
/// float arithmetic, exact shortcuts for equal and doubled sizes). Agrees with the forward
/// indices except, in float64, where float and double rounding straddle an integer.
inline std::vector<std::int64_t> nearest_taps(const ResizeDim& d) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(d.out));
  const float scale = d.scale && *d.scale > 0 ? static_cast<float>(1.0 / *d.scale)
                                              : static_cast<float>(d.in) / static_cast<float>(d.out);
  for (std::int64_t o = 0; o < d.out; ++o) {
    std::int64_t i;
    if (d.out == d.in) i = o;
    else if (d.out == 2 * d.in) i = o >> 1;
    else i = std::min(static_cast<std::int64_t>(std::floor(static_cast<float>(o) * scale)), d.in - 1);
    idx[static_cast<std::size_t>(o)] = i;
  }
  return idx;
}

template <Real T>
void check_resize_input(std::string_view op, const Tensor<T>& x) {
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(x.dim() == 4, op, "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  GKD_CHECK(x.shape()[2] > 0 && x.shape()[3] > 0, op, "input " << to_string(x.shape()) << " has an empty plane");
}

template <Real T>
std::pair<ResizeDim, ResizeDim> resize_dims(std::string_view op, const Tensor<T>& x, Size2 size) {
  check_resize_input(op, x);
  GKD_CHECK(size.h > 0 && size.w > 0, op,
            "output size must be positive, got " << size << " for input " << to_string(x.shape()));
  return {ResizeDim{x.shape()[2], size.h, std::nullopt}, ResizeDim{x.shape()[3], size.w, std::nullopt}};
}

template <Real T>
std::pair<ResizeDim, ResizeDim> resize_dims(std::string_view op, const Tensor<T>& x, Scale2 scale) {
  check_resize_input(op, x);
  GKD_CHECK(scale.h > 0 && scale.w > 0 && std::isfinite(scale.h) && std::isfinite(scale.w), op,
            "scale factors must be positive and finite, got " << scale << " for input " << to_string(x.shape()));
  const auto out_h = static_cast<std::int64_t>(std::floor(static_cast<double>(x.shape()[2]) * scale.h));
  const auto out_w = static_cast<std::int64_t>(std::floor(static_cast<double>(x.shape()[3]) * scale.w));
  GKD_CHECK(out_h > 0 && out_w > 0, op,
            "scale " << scale << " gives an empty output " << out_h << "x" << out_w << " for input "
                     << to_string(x.shape()));
  return {ResizeDim{x.shape()[2], out_h, scale.h}, ResizeDim{x.shape()[3], out_w, scale.w}};
}

template <Real T>
Tensor<T> upsample_bilinear(const Tensor<T>& x, const ResizeDim& dh, const ResizeDim& dw, bool align_corners) {
  constexpr std::string_view op = "upsample_bilinear2d";
  GKD_CUDA_DISPATCH(x.device(), op,
                    upsample_bilinear2d(x, dh.out, dw.out, dh.scale.value_or(0.0), dw.scale.value_or(0.0),
                                        align_corners));
  check_cpu(x, op);
  auto th = std::make_shared<const LinearTaps<T>>(linear_taps<T>(dh, align_corners));
  auto tw = std::make_shared<const LinearTaps<T>>(linear_taps<T>(dw, align_corners));
  const std::int64_t planes = x.shape()[0] * x.shape()[1];
  const std::int64_t in_plane = dh.in * dw.in, out_plane = dh.out * dw.out;
  const bool parallel = planes > 1 && planes * out_plane > (1 << 15);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty({x.shape()[0], x.shape()[1], dh.out, dw.out});
  const T* px = xc.data();
  T* py = y.data();
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t p = 0; p < planes; ++p) {
    const T* xp = px + p * in_plane;
    T* yp = py + p * out_plane;
    for (std::int64_t oh = 0; oh < dh.out; ++oh) {
      const auto a = static_cast<std::size_t>(oh);
      const T* r0 = xp + th->i0[a] * dw.in;
      const T* r1 = xp + th->i1[a] * dw.in;
      const T lh0 = th->l0[a], lh1 = th->l1[a];
      for (std::int64_t ow = 0; ow < dw.out; ++ow) {
        const auto b = static_cast<std::size_t>(ow);
        const std::int64_t c0 = tw->i0[b], c1 = tw->i1[b];
        const T lw0 = tw->l0[b], lw1 = tw->l1[b];
        yp[oh * dw.out + ow] = (lw0 * r0[c0] + lw1 * r0[c1]) * lh0 + (lw0 * r1[c0] + lw1 * r1[c1]) * lh1;
      }
    }
  }
  return record(op, y, {x}, [th, tw, dh, dw, planes, parallel, shape = x.shape()](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape);
    const T* pg = gc.data();
    T* pd = dx.data();
    const std::int64_t in_plane = dh.in * dw.in, out_plane = dh.out * dw.out;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t p = 0; p < planes; ++p) {
      T* dxp = pd + p * in_plane;
      const T* dyp = pg + p * out_plane;
      std::fill_n(dxp, in_plane, T(0));
      for (std::int64_t oh = 0; oh < dh.out; ++oh) {
        const auto a = static_cast<std::size_t>(oh);
        T* r0 = dxp + th->i0[a] * dw.in;
        T* r1 = dxp + th->i1[a] * dw.in;
        const T lh0 = th->l0[a], lh1 = th->l1[a];
        for (std::int64_t ow = 0; ow < dw.out; ++ow) {
          const auto b = static_cast<std::size_t>(ow);
          const std::int64_t c0 = tw->i0[b], c1 = tw->i1[b];
          const T v = dyp[oh * dw.out + ow];
          r0[c0] += lh0 * tw->l0[b] * v;
          r0[c1] += lh0 * tw->l1[b] * v;
          r1[c0] += lh1 * tw->l0[b] * v;
          r1[c1] += lh1 * tw->l1[b] * v;
        }
      }
    }
    return std::vector<Tensor<T>>{dx};
  });
}

template <Real T>
Tensor<T> upsample_nearest(const Tensor<T>& x, const ResizeDim& dh, const ResizeDim& dw) {
  constexpr std::string_view op = "upsample_nearest2d";
  GKD_CUDA_DISPATCH(x.device(), op,
                    upsample_nearest2d(x, dh.out, dw.out, dh.scale.value_or(0.0), dw.scale.value_or(0.0)));
  check_cpu(x, op);
  const std::int64_t planes = x.shape()[0] * x.shape()[1];
  const std::int64_t in_plane = dh.in * dw.in, out_plane = dh.out * dw.out;
  const bool parallel = planes > 1 && planes * out_plane > (1 << 16);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty({x.shape()[0], x.shape()[1], dh.out, dw.out});
  {
    const std::vector<std::int64_t> fh = nearest_taps_forward<T>(dh), fw = nearest_taps_forward<T>(dw);
    const T* px = xc.data();
    T* py = y.data();
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* xp = px + p * in_plane;
      T* yp = py + p * out_plane;
      for (std::int64_t oh = 0; oh < dh.out; ++oh) {
        const T* row = xp + fh[static_cast<std::size_t>(oh)] * dw.in;
        T* dst = yp + oh * dw.out;
        for (std::int64_t ow = 0; ow < dw.out; ++ow) dst[ow] = row[fw[static_cast<std::size_t>(ow)]];
      }
    }
  }
  auto ih = std::make_shared<const std::vector<std::int64_t>>(nearest_taps(dh));
  auto iw = std::make_shared<const std::vector<std::int64_t>>(nearest_taps(dw));
  return record(op, y, {x}, [ih, iw, dh, dw, planes, parallel, shape = x.shape()](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape);
    const T* pg = gc.data();
    T* pd = dx.data();
    const std::int64_t in_plane = dh.in * dw.in, out_plane = dh.out * dw.out;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t p = 0; p < planes; ++p) {
      T* dxp = pd + p * in_plane;
      const T* dyp = pg + p * out_plane;
      std::fill_n(dxp, in_plane, T(0));
      for (std::int64_t oh = 0; oh < dh.out; ++oh) {
        T* row = dxp + (*ih)[static_cast<std::size_t>(oh)] * dw.in;
        const T* src = dyp + oh * dw.out;
        // Source columns are non-decreasing: sum each run of equal columns before one store.
        for (std::int64_t ow = 0; ow < dw.out;) {
          const std::int64_t col = (*iw)[static_cast<std::size_t>(ow)];
          T acc = src[ow++];
          while (ow < dw.out && (*iw)[static_cast<std::size_t>(ow)] == col) acc += src[ow++];
          row[col] += acc;
        }
      }
    }
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace detail

/// Bilinear resize of x [N, C, H, W] to `size` (PyTorch's F.interpolate(mode='bilinear', size=...)).
template <Real T>
Tensor<T> upsample_bilinear2d(const Tensor<T>& x, Size2 size, bool align_corners = false) {
  const auto [dh, dw] = detail::resize_dims("upsample_bilinear2d", x, size);
  return detail::upsample_bilinear(x, dh, dw, align_corners);
}

/// Bilinear resize of x [N, C, H, W] by `scale` (F.interpolate(mode='bilinear', scale_factor=...)).
template <Real T>
Tensor<T> upsample_bilinear2d(const Tensor<T>& x, Scale2 scale, bool align_corners = false) {
  const auto [dh, dw] = detail::resize_dims("upsample_bilinear2d", x, scale);
  return detail::upsample_bilinear(x, dh, dw, align_corners);
}

/// Nearest-neighbour resize of x [N, C, H, W] to `size` (F.interpolate(mode='nearest', size=...)).
template <Real T>
Tensor<T> upsample_nearest2d(const Tensor<T>& x, Size2 size) {
  const auto [dh, dw] = detail::resize_dims("upsample_nearest2d", x, size);
  return detail::upsample_nearest(x, dh, dw);
}

/// Nearest-neighbour resize of x [N, C, H, W] by `scale` (F.interpolate(mode='nearest', scale_factor=...)).
template <Real T>
Tensor<T> upsample_nearest2d(const Tensor<T>& x, Scale2 scale) {
  const auto [dh, dw] = detail::resize_dims("upsample_nearest2d", x, scale);
  return detail::upsample_nearest(x, dh, dw);
}

}  // namespace gkd

GKD_REGISTER_OPS(upsample, "upsample_bilinear2d", "upsample_nearest2d")
