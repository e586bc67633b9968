// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// 2-D pooling over the last two dims of (N, C, H, W) or (C, H, W) tensors, with PyTorch's
/// semantics: max_pool2d (padding, dilation, ceil_mode), avg_pool2d (ceil_mode, count_include_pad)
/// and adaptive_avg_pool2d (any output size). Each is differentiable.
///
/// Example:
/// @code
///   auto down = gkd::max_pool2d(x, 2);              // kernel 2, stride 2: [4, 16, 128, 128] -> [4, 16, 64, 64]
///   auto blur = gkd::avg_pool2d(x, 3, 1, 1);        // kernel 3, stride 1, padding 1
///   auto gap  = gkd::adaptive_avg_pool2d(x, 1);     // global average pooling -> [N, C, 1, 1]
/// @endcode
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "gkd/cuda/pool.hpp"
#include "gkd/ops/conv.hpp"

namespace gkd {

namespace detail {

/// Geometry of a pooling window sweep over planes of in_h x in_w.
struct PoolGeometry {
  std::int64_t planes = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  [[nodiscard]] std::int64_t in_plane() const { return in_h * in_w; }
  [[nodiscard]] std::int64_t out_plane() const { return out_h * out_w; }
  [[nodiscard]] bool parallel() const { return planes > 1 && planes * out_plane() * kh * kw > (1 << 15); }
};

/// PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil mode the last window must
/// start inside the input or the left padding.
inline std::int64_t pool_output_size(std::int64_t in, std::int64_t k, std::int64_t pad, std::int64_t stride,
                                     std::int64_t dilation, bool ceil_mode) {
  const std::int64_t num = in + 2 * pad - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  const std::int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);  // floor division
  std::int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

/// Validates a pooling op's input and parameters and returns its geometry (host and GPU alike).
template <Real T>
PoolGeometry pool_geometry(std::string_view op, const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding,
                           Size2 dilation, bool ceil_mode) {
  GKD_CHECK(x.dim() == 3 || x.dim() == 4, op,
            "input must be 3-D (C, H, W) or 4-D (N, C, H, W), got " << to_string(x.shape()));
  GKD_CHECK(kernel.h > 0 && kernel.w > 0, op,
            "kernel size must be positive, got " << kernel << " for input " << to_string(x.shape()));
  GKD_CHECK(stride.h > 0 && stride.w > 0, op,
            "stride must be positive, got " << stride << " for input " << to_string(x.shape()));
  GKD_CHECK(dilation.h > 0 && dilation.w > 0, op,
            "dilation must be positive, got " << dilation << " for input " << to_string(x.shape()));
  GKD_CHECK(padding.h >= 0 && padding.w >= 0 && padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2, op,
            "padding " << padding << " must be non-negative and at most half of kernel size " << kernel
                       << " (input " << to_string(x.shape()) << ")");
  PoolGeometry g;
  const std::size_t d = x.dim();
  g.in_h = x.shape()[d - 2], g.in_w = x.shape()[d - 1];
  g.planes = g.in_h * g.in_w > 0 ? x.numel() / (g.in_h * g.in_w) : 0;
  g.kh = kernel.h, g.kw = kernel.w, g.sh = stride.h, g.sw = stride.w, g.ph = padding.h, g.pw = padding.w;
  g.dh = dilation.h, g.dw = dilation.w;
  g.out_h = pool_output_size(g.in_h, g.kh, g.ph, g.sh, g.dh, ceil_mode);
  g.out_w = pool_output_size(g.in_w, g.kw, g.pw, g.sw, g.dw, ceil_mode);
  GKD_CHECK(g.out_h > 0 && g.out_w > 0, op,
            "output size " << g.out_h << "x" << g.out_w << " is too small: kernel " << kernel << " (dilation "
                           << dilation << ") is larger than input " << to_string(x.shape()) << " padded by "
                           << padding);
  return g;
}

inline Shape pooled_shape(const Shape& in, std::int64_t out_h, std::int64_t out_w) {
  Shape s = in;
  s[s.size() - 2] = out_h;
  s[s.size() - 1] = out_w;
  return s;
}

/// Scatters dy into dx by the saved argmax indices (planes in parallel).
template <Real T>
void max_pool_backward(const T* dy, const std::int64_t* index, T* dx, const PoolGeometry& g) {
#pragma omp parallel for schedule(static) if (g.parallel())
  for (std::int64_t p = 0; p < g.planes; ++p) {
    T* dxp = dx + p * g.in_plane();
    std::fill_n(dxp, g.in_plane(), T(0));
    const T* dyp = dy + p * g.out_plane();
    const std::int64_t* ip = index + p * g.out_plane();
    for (std::int64_t o = 0; o < g.out_plane(); ++o)
      if (ip[o] >= 0) dxp[ip[o]] += dyp[o];
  }
}

/// Clipped window [lo, hi) along one dim and the divisor's extent for average pooling (PyTorch's rule).
struct AvgWindow {
  std::int64_t lo, hi, padded;
};
inline AvgWindow avg_window(std::int64_t o, std::int64_t stride, std::int64_t pad, std::int64_t k, std::int64_t in) {
  const std::int64_t start = o * stride - pad;
  const std::int64_t end = std::min(start + k, in + pad);
  return {std::max<std::int64_t>(start, 0), std::min(end, in), end - start};
}

/// Backward of an average pool: `window(oh, ow, dy, v)` returns the input window [h0, h1) x [w0, w1)
/// of an output and sets `v`, that output's gradient divided by its pool's divisor, which is added
/// to every input of the window. An empty window contributes nothing.
struct PoolWindow {
  std::int64_t h0, h1, w0, w1;
};
template <Real T, class Window>
Tensor<T> average_pool_backward(const Tensor<T>& grad, const PoolGeometry& g, const Shape& shape, Window window) {
  const Tensor<T> gc = grad.contiguous_copy_if_needed();
  Tensor<T> dx = Tensor<T>::empty(shape);
  const T* pg = gc.data();
  T* pd = dx.data();
#pragma omp parallel for schedule(static) if (g.parallel())
  for (std::int64_t p = 0; p < g.planes; ++p) {
    T* dxp = pd + p * g.in_plane();
    const T* dyp = pg + p * g.out_plane();
    std::fill_n(dxp, g.in_plane(), T(0));
    for (std::int64_t oh = 0; oh < g.out_h; ++oh)
      for (std::int64_t ow = 0; ow < g.out_w; ++ow) {
        T v = 0;
        const PoolWindow w = window(oh, ow, dyp[oh * g.out_w + ow], v);
        for (std::int64_t ih = w.h0; ih < w.h1; ++ih)
          for (std::int64_t iw = w.w0; iw < w.w1; ++iw) dxp[ih * g.in_w + iw] += v;
      }
  }
  return dx;
}

}  // namespace detail

/// Max pooling with PyTorch's semantics (padding counts as -inf; NaN propagates; the gradient goes
/// to the first maximum of each window).
/// @param stride   step of the window (the one-argument form uses the kernel size)
/// @param padding  at most half the kernel size
/// @param ceil_mode round the output size up, keeping the last window starting inside the input
template <Real T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding = 0, Size2 dilation = 1,
                     bool ceil_mode = false) {
  constexpr std::string_view op = "max_pool2d";
  GKD_CUDA_DISPATCH(x.device(), op,
                    max_pool2d(x,
                               cuda::PoolParams{kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w,
                                                dilation.h, dilation.w},
                               ceil_mode));
  detail::check_cpu(x, op);
  const detail::PoolGeometry g = detail::pool_geometry(op, x, kernel, stride, padding, dilation, ceil_mode);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(detail::pooled_shape(x.shape(), g.out_h, g.out_w));
  const bool gx = needs_grad(x) && grad_enabled();
  auto index = gx ? std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(g.planes * g.out_plane()))
                  : nullptr;
  const T* px = xc.data();
  T* py = y.data();
  std::int64_t* pi = index ? index->data() : nullptr;
#pragma omp parallel for schedule(static) if (g.parallel())
  for (std::int64_t p = 0; p < g.planes; ++p) {
    const T* xp = px + p * g.in_plane();
    for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
      std::int64_t h0 = oh * g.sh - g.ph;
      const std::int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, g.in_h);
      while (h0 < 0) h0 += g.dh;
      for (std::int64_t ow = 0; ow < g.out_w; ++ow) {
        std::int64_t w0 = ow * g.sw - g.pw;
        const std::int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, g.in_w);
        while (w0 < 0) w0 += g.dw;
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t at = h0 < h1 && w0 < w1 ? h0 * g.in_w + w0 : -1;
        for (std::int64_t ih = h0; ih < h1; ih += g.dh) {
          for (std::int64_t iw = w0; iw < w1; iw += g.dw) {
            const T v = xp[ih * g.in_w + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              at = ih * g.in_w + iw;
            }
          }
        }
        const std::int64_t o = p * g.out_plane() + oh * g.out_w + ow;
        py[o] = best;
        if (pi) pi[o] = at;
      }
    }
  }
  return record(op, y, {x}, [index, g, shape = x.shape()](const Tensor<T>& grad) {
    const Tensor<T> gc = grad.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::empty(shape);
    detail::max_pool_backward(gc.data(), index->data(), dx.data(), g);
    return std::vector<Tensor<T>>{dx};
  });
}

/// Max pooling with stride equal to the kernel size.
template <Real T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2 kernel) {
  return max_pool2d(x, kernel, kernel);
}

/// Average pooling with PyTorch's semantics.
/// @param count_include_pad divide by the window size including padding (true) or by the number of
///        input elements in the window (false)
template <Real T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel, Size2 stride, Size2 padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true) {
  constexpr std::string_view op = "avg_pool2d";
  GKD_CUDA_DISPATCH(x.device(), op,
                    avg_pool2d(x, cuda::PoolParams{kernel.h, kernel.w, stride.h, stride.w, padding.h, padding.w, 1, 1},
                               ceil_mode, count_include_pad));
  detail::check_cpu(x, op);
  const detail::PoolGeometry g = detail::pool_geometry(op, x, kernel, stride, padding, 1, ceil_mode);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(detail::pooled_shape(x.shape(), g.out_h, g.out_w));
  const T* px = xc.data();
  T* py = y.data();
#pragma omp parallel for schedule(static) if (g.parallel())
  for (std::int64_t p = 0; p < g.planes; ++p) {
    const T* xp = px + p * g.in_plane();
    T* yp = py + p * g.out_plane();
    for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
      const auto wh = detail::avg_window(oh, g.sh, g.ph, g.kh, g.in_h);
      for (std::int64_t ow = 0; ow < g.out_w; ++ow) {
        const auto ww = detail::avg_window(ow, g.sw, g.pw, g.kw, g.in_w);
        if (wh.lo >= wh.hi || ww.lo >= ww.hi) {
          yp[oh * g.out_w + ow] = T(0);
          continue;
        }
        T sum = 0;
        for (std::int64_t ih = wh.lo; ih < wh.hi; ++ih)
          for (std::int64_t iw = ww.lo; iw < ww.hi; ++iw) sum += xp[ih * g.in_w + iw];
        const std::int64_t divisor = count_include_pad ? wh.padded * ww.padded : (wh.hi - wh.lo) * (ww.hi - ww.lo);
        yp[oh * g.out_w + ow] = sum / static_cast<T>(divisor);
      }
    }
  }
  return record(op, y, {x}, [g, count_include_pad, shape = x.shape()](const Tensor<T>& grad) {
    return std::vector<Tensor<T>>{detail::average_pool_backward(grad, g, shape, [&](std::int64_t oh, std::int64_t ow, T dy, T& v) {
      const auto wh = detail::avg_window(oh, g.sh, g.ph, g.kh, g.in_h);
      const auto ww = detail::avg_window(ow, g.sw, g.pw, g.kw, g.in_w);
      if (wh.lo >= wh.hi || ww.lo >= ww.hi) return detail::PoolWindow{0, 0, 0, 0};
      const std::int64_t divisor = count_include_pad ? wh.padded * ww.padded : (wh.hi - wh.lo) * (ww.hi - ww.lo);
      v = dy / static_cast<T>(divisor);
      return detail::PoolWindow{wh.lo, wh.hi, ww.lo, ww.hi};
    })};
  });
}

/// Average pooling with stride equal to the kernel size.
template <Real T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2 kernel) {
  return avg_pool2d(x, kernel, kernel);
}

/// Adaptive average pooling to `output_size` (any size, also larger than the input): output cell i
/// averages input rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1, and likewise for columns (PyTorch's rule).
template <Real T>
Tensor<T> adaptive_avg_pool2d(const Tensor<T>& x, Size2 output_size) {
  constexpr std::string_view op = "adaptive_avg_pool2d";
  GKD_CUDA_DISPATCH(x.device(), op, adaptive_avg_pool2d(x, output_size.h, output_size.w));
  detail::check_cpu(x, op);
  GKD_CHECK(x.dim() == 3 || x.dim() == 4, op,
            "input must be 3-D (C, H, W) or 4-D (N, C, H, W), got " << to_string(x.shape()));
  GKD_CHECK(output_size.h > 0 && output_size.w > 0, op,
            "output size must be positive, got " << output_size << " for input " << to_string(x.shape()));
  const std::size_t d = x.dim();
  const std::int64_t in_h = x.shape()[d - 2], in_w = x.shape()[d - 1];
  GKD_CHECK(in_h > 0 && in_w > 0, op, "input " << to_string(x.shape()) << " has an empty plane");
  detail::PoolGeometry g;
  g.in_h = in_h, g.in_w = in_w, g.out_h = output_size.h, g.out_w = output_size.w;
  g.planes = x.numel() / (in_h * in_w);
  g.kh = (in_h + g.out_h - 1) / g.out_h + 1, g.kw = (in_w + g.out_w - 1) / g.out_w + 1;  // work estimate only
  auto start = [](std::int64_t i, std::int64_t in, std::int64_t out) { return (i * in) / out; };
  auto end = [](std::int64_t i, std::int64_t in, std::int64_t out) { return ((i + 1) * in + out - 1) / out; };

  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(detail::pooled_shape(x.shape(), g.out_h, g.out_w));
  const T* px = xc.data();
  T* py = y.data();
#pragma omp parallel for schedule(static) if (g.parallel())
  for (std::int64_t p = 0; p < g.planes; ++p) {
    const T* xp = px + p * g.in_plane();
    T* yp = py + p * g.out_plane();
    for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
      const std::int64_t h0 = start(oh, in_h, g.out_h), h1 = end(oh, in_h, g.out_h);
      for (std::int64_t ow = 0; ow < g.out_w; ++ow) {
        const std::int64_t w0 = start(ow, in_w, g.out_w), w1 = end(ow, in_w, g.out_w);
        T sum = 0;
        for (std::int64_t ih = h0; ih < h1; ++ih)
          for (std::int64_t iw = w0; iw < w1; ++iw) sum += xp[ih * in_w + iw];
        yp[oh * g.out_w + ow] = sum / static_cast<T>(h1 - h0) / static_cast<T>(w1 - w0);
      }
    }
  }
  return record(op, y, {x}, [g, start, end, shape = x.shape()](const Tensor<T>& grad) {
    return std::vector<Tensor<T>>{detail::average_pool_backward(grad, g, shape, [&](std::int64_t oh, std::int64_t ow, T dy, T& v) {
      const std::int64_t h0 = start(oh, g.in_h, g.out_h), h1 = end(oh, g.in_h, g.out_h);
      const std::int64_t w0 = start(ow, g.in_w, g.out_w), w1 = end(ow, g.in_w, g.out_w);
      v = dy / static_cast<T>(h1 - h0) / static_cast<T>(w1 - w0);
      return detail::PoolWindow{h0, h1, w0, w1};
    })};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(pool, "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d")
