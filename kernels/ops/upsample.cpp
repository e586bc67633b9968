// SPDX-License-Identifier: Apache-2.0
// Tensor-level CUDA upsample_bilinear2d / upsample_nearest2d with autograd. The index and weight
// tables are the CPU op's (gkd::detail::linear_taps, nearest_taps*), copied to the device.
#include "gkd/cuda/upsample.hpp"

#include <memory>
#include <optional>
#include <string_view>

#include "gkd/ops/upsample.hpp"
#include "ops/device_array.hpp"
#include "ops/upsample_kernels.hpp"

namespace gkd::cuda {
namespace {

template <Real T>
ResizeGeometry check_and_measure(std::string_view op, const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w) {
  GKD_CHECK(x.defined(), op, "input is an undefined tensor");
  GKD_CHECK(x.device().is_cuda(), op, "expected a CUDA tensor, got one on " << x.device().str());
  GKD_CHECK(x.dim() == 4, op, "input must be 4-D (N, C, H, W), got " << to_string(x.shape()));
  GKD_CHECK(x.shape()[2] > 0 && x.shape()[3] > 0, op, "input " << to_string(x.shape()) << " has an empty plane");
  GKD_CHECK(out_h > 0 && out_w > 0, op,
            "output size must be positive, got " << out_h << "x" << out_w << " for input " << to_string(x.shape()));
  return {x.shape()[0] * x.shape()[1], x.shape()[2], x.shape()[3], out_h, out_w};
}

std::optional<double> as_scale(double s) { return s > 0 ? std::optional<double>(s) : std::nullopt; }

/// The bilinear tables of both dims in two device arrays (indices, weights) and views into them.
template <Real T>
struct DeviceBilinear {
  DeviceArray<std::int64_t> index;
  DeviceArray<T> weight;
  BilinearTables<T> tables{};
};

template <Real T>
std::shared_ptr<const DeviceBilinear<T>> upload(const detail::LinearTaps<T>& th, const detail::LinearTaps<T>& tw,
                                                 Device device) {
  std::vector<std::int64_t> index;
  std::vector<T> weight;
  for (const auto* v : {&th.i0, &th.i1, &tw.i0, &tw.i1}) index.insert(index.end(), v->begin(), v->end());
  for (const auto* v : {&th.l0, &th.l1, &tw.l0, &tw.l1}) weight.insert(weight.end(), v->begin(), v->end());
  auto out = std::make_shared<DeviceBilinear<T>>();
  out->index = DeviceArray<std::int64_t>(index, device);
  out->weight = DeviceArray<T>(weight, device);
  const auto h = static_cast<std::int64_t>(th.i0.size()), w = static_cast<std::int64_t>(tw.i0.size());
  const std::int64_t* i = out->index.data();
  const T* l = out->weight.data();
  out->tables = {i, i + h, i + 2 * h, i + 2 * h + w, l, l + h, l + 2 * h, l + 2 * h + w};
  return out;
}

/// Row table then column table in one device array.
inline DeviceArray<std::int64_t> upload(const std::vector<std::int64_t>& rows, const std::vector<std::int64_t>& cols,
                                        Device device) {
  std::vector<std::int64_t> both = rows;
  both.insert(both.end(), cols.begin(), cols.end());
  return DeviceArray<std::int64_t>(both, device);
}

}  // namespace

template <Real T>
Tensor<T> upsample_bilinear2d(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w, double scale_h,
                              double scale_w, bool align_corners) {
  constexpr std::string_view op = "upsample_bilinear2d";
  const ResizeGeometry geo = check_and_measure(op, x, out_h, out_w);
  const detail::ResizeDim dh{geo.in_h, out_h, as_scale(scale_h)}, dw{geo.in_w, out_w, as_scale(scale_w)};
  const auto taps = upload(detail::linear_taps<T>(dh, align_corners), detail::linear_taps<T>(dw, align_corners),
                           x.device());
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty({x.shape()[0], x.shape()[1], out_h, out_w}, x.device());
  launch_bilinear(xc.data(), y.data(), geo, taps->tables);
  return record(op, y, {x}, [taps, geo, shape = x.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape, gc.device());
    launch_bilinear_backward(gc.data(), dx.data(), geo, taps->tables);
    return std::vector<Tensor<T>>{dx};
  });
}

template <Real T>
Tensor<T> upsample_nearest2d(const Tensor<T>& x, std::int64_t out_h, std::int64_t out_w, double scale_h,
                             double scale_w) {
  constexpr std::string_view op = "upsample_nearest2d";
  const ResizeGeometry geo = check_and_measure(op, x, out_h, out_w);
  const detail::ResizeDim dh{geo.in_h, out_h, as_scale(scale_h)}, dw{geo.in_w, out_w, as_scale(scale_w)};
  // The CPU op uses different (float-rounded) tables forward and backward; so does this one.
  const DeviceArray<std::int64_t> forward =
      upload(detail::nearest_taps_forward<T>(dh), detail::nearest_taps_forward<T>(dw), x.device());
  const DeviceArray<std::int64_t> backward = upload(detail::nearest_taps(dh), detail::nearest_taps(dw), x.device());
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty({x.shape()[0], x.shape()[1], out_h, out_w}, x.device());
  launch_nearest(xc.data(), y.data(), geo, forward.data(), forward.data() + out_h);
  return record(op, y, {x}, [backward, geo, shape = x.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape, gc.device());
    launch_nearest_backward(gc.data(), dx.data(), geo, backward.data(), backward.data() + geo.out_h);
    return std::vector<Tensor<T>>{dx};
  });
}

#define GKD_INSTANTIATE_UPSAMPLE(T)                                                                            \
  template Tensor<T> upsample_bilinear2d<T>(const Tensor<T>&, std::int64_t, std::int64_t, double, double, bool); \
  template Tensor<T> upsample_nearest2d<T>(const Tensor<T>&, std::int64_t, std::int64_t, double, double);
GKD_INSTANTIATE_UPSAMPLE(float)
GKD_INSTANTIATE_UPSAMPLE(double)
#undef GKD_INSTANTIATE_UPSAMPLE

}  // namespace gkd::cuda
