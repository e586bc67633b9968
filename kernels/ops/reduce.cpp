// SPDX-License-Identifier: Apache-2.0
// Tensor-level CUDA sum, max, min, argmax, softmax, log_softmax and cross_entropy with autograd.
#include "gkd/cuda/reduce.hpp"

#include <memory>

#include "gkd/cuda/losses.hpp"
#include "gkd/losses/reduction.hpp"
#include "gkd/ops/reduce.hpp"
#include "ops/device_array.hpp"
#include "ops/elementwise_kernels.hpp"
#include "ops/reduce_kernels.hpp"

namespace gkd::cuda {
namespace {

template <Real T>
void check_device(const Tensor<T>& t, std::string_view op) {
  GKD_CHECK(t.defined(), op, "input is an undefined tensor");
  GKD_CHECK(t.device().is_cuda(), op, "expected a CUDA tensor, got one on " << t.device().str());
}

/// (outer, len, inner) of a contiguous tensor viewed along dim `d`.
struct AlongDim {
  std::int64_t outer = 1, len = 1, inner = 1;
  AlongDim(const Shape& shape, std::size_t d) {
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i < d) outer *= shape[i];
      if (i == d) len = shape[i];
      if (i > d) inner *= shape[i];
    }
  }
};

template <Real T>
Tensor<T> softmax_impl(const Tensor<T>& x, std::int64_t dim, bool log, std::string_view op) {
  check_device(x, op);
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const std::size_t d = x.dim() ? normalize_dim(dim, x.dim(), op) : 0;
  const AlongDim a = x.dim() ? AlongDim(x.shape(), d) : AlongDim(Shape{1}, 0);
  Tensor<T> y = Tensor<T>::empty(x.shape(), x.device());
  launch_softmax(xc.data(), y.data(), a.outer, a.len, a.inner, log);
  return record(op, y, {x}, [y = y.detach(), a, log](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> gx = Tensor<T>::empty(gc.shape(), gc.device());
    launch_softmax_backward(gc.data(), y.data(), gx.data(), a.outer, a.len, a.inner, log);
    return std::vector<Tensor<T>>{gx};
  });
}

/// Shape of `keep` without dim d (the keepdim=false result of a reduction over d).
inline Shape without_dim(Shape keep, std::size_t d) {
  keep.erase(keep.begin() + static_cast<std::ptrdiff_t>(d));
  return keep;
}

/// Max (or min) along dim: the first extreme element, its gradient scattered back to it.
template <Real T>
Tensor<T> extremum(const Tensor<T>& x, std::int64_t dim, bool keepdim, bool is_max, std::string_view op) {
  check_device(x, op);
  const std::size_t d = normalize_dim(dim, x.dim(), op);
  GKD_CHECK(x.shape()[d] > 0, op, "reduction over an empty dim " << d << " of shape " << to_string(x.shape()));
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const AlongDim a(x.shape(), d);
  Shape keep = x.shape();
  keep[d] = 1;
  Tensor<T> y = Tensor<T>::empty(keep, x.device());
  const DeviceArray<std::int64_t> index(a.outer * a.inner, x.device());
  launch_extremum(xc.data(), y.data(), index.data(), static_cast<T*>(nullptr), a.outer, a.len, a.inner, is_max);
  if (!keepdim) y = y.reshape(without_dim(keep, d));
  return record(op, y, {x}, [index, a, shape = x.shape()](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(shape, gc.device());
    launch_scatter_along(gc.data(), index.data(), dx.data(), a.outer, a.len, a.inner);
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace

template <Real T>
Tensor<T> max(const Tensor<T>& x, std::int64_t dim, bool keepdim) {
  return extremum(x, dim, keepdim, true, "max");
}
template <Real T>
Tensor<T> min(const Tensor<T>& x, std::int64_t dim, bool keepdim) {
  return extremum(x, dim, keepdim, false, "min");
}

template <Real T>
Tensor<T> argmax(const Tensor<T>& x, std::int64_t dim, bool keepdim) {
  check_device(x, "argmax");
  const std::size_t d = normalize_dim(dim, x.dim(), "argmax");
  GKD_CHECK(x.shape()[d] > 0, "argmax", "empty dim " << d << " of shape " << to_string(x.shape()));
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  const AlongDim a(x.shape(), d);
  Shape keep = x.shape();
  keep[d] = 1;
  Tensor<T> y = Tensor<T>::empty(keepdim ? keep : without_dim(keep, d), x.device());
  launch_extremum(xc.data(), static_cast<T*>(nullptr), static_cast<std::int64_t*>(nullptr), y.data(), a.outer, a.len,
                  a.inner, true);
  return y;
}

template <Real T>
Tensor<T> sum(const Tensor<T>& x) {
  check_device(x, "sum");
  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty({}, x.device());
  if (x.numel() == 0) {
    fill(y.data(), 1, T(0));
  } else {
    launch_sum_all(xc.data(), y.data(), x.numel(), x.device().index);
  }
  return record("sum", y, {x}, [shape = x.shape()](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g.detach().expand(shape)};
  });
}

template <Real T>
Tensor<T> sum(const Tensor<T>& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  check_device(x, "sum");
  std::vector<bool> reduced;
  const Shape keep = detail::keepdim_shape(x.shape(), dims, "sum", &reduced);
  Tensor<T> y = detail::sum_to(x.detach(), keep);  // atomic accumulation over the reduced dims
  if (y.storage() == x.storage()) y = detail::owned_copy(y);
  if (!keepdim) y = y.reshape(detail::drop_reduced(keep, reduced));
  return record("sum_dim", y, {x}, [shape = x.shape(), keep](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{g.detach().reshape(keep).expand(shape)};
  });
}

template <Real T>
Tensor<T> softmax(const Tensor<T>& x, std::int64_t dim) {
  return softmax_impl(x, dim, false, "softmax");
}
template <Real T>
Tensor<T> log_softmax(const Tensor<T>& x, std::int64_t dim) {
  return softmax_impl(x, dim, true, "log_softmax");
}

template <Real T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<T>& target, const Tensor<T>& weight,
                        std::int64_t ignore_index, Reduction reduction) {
  constexpr std::string_view op = "cross_entropy";
  check_device(logits, op);
  check_device(target, op);
  GKD_CHECK(target.device() == logits.device(), op,
            "logits on " << logits.device().str() << ", target on " << target.device().str());
  if (weight.defined())
    GKD_CHECK(weight.device() == logits.device(), op,
              "class weights on " << weight.device().str() << ", logits on " << logits.device().str());
  const Tensor<T> tc = target.contiguous_copy_if_needed();
  {
    // Shapes are checked here as the CPU validation does; the target values are checked on the
    // device, and only a bad target is copied back, for the CPU validation's message.
    GKD_CHECK(logits.dim() >= 2, op, "expects input [N, C, ...], got shape " << to_string(logits.shape()));
    Shape expected = logits.shape();
    expected.erase(expected.begin() + 1);
    GKD_CHECK(target.shape() == expected, op,
              "target of shape " << to_string(target.shape()) << " does not match input of shape "
                                 << to_string(logits.shape()) << " (expected class indices of shape "
                                 << to_string(expected) << ")");
    GKD_CHECK(logits.shape()[1] > 0, op, "input of shape " << to_string(logits.shape()) << " has no classes");
    GKD_CHECK(!weight.defined() || weight.shape() == Shape{logits.shape()[1]}, op,
              "class weights of shape " << to_string(weight.shape()) << " do not match input of shape "
                                        << to_string(logits.shape()) << " (expected [" << logits.shape()[1] << "])");
    const Tensor<T> shape_only = Tensor<T>::empty({1}).as_strided_view(logits.shape(), Strides(logits.dim(), 0), 0);
    const DeviceArray<unsigned long long> invalid(1, tc.device());
    if (count_invalid_targets(tc.data(), tc.numel(), logits.shape()[1], ignore_index, invalid.data()) != 0) {
      detail::check_class_targets(op, shape_only, target.cpu(), Tensor<T>(), ignore_index);
      GKD_FAIL(op, "target holds values that are not class indices (found on the GPU)");
    }
  }
  const Tensor<T> xc = logits.contiguous_copy_if_needed();
  const Tensor<T> wc = weight.defined() ? weight.contiguous_copy_if_needed() : Tensor<T>();
  const std::int64_t outer = logits.shape()[0], classes = logits.shape()[1];
  const std::int64_t inner = logits.numel() / std::max<std::int64_t>(outer * classes, 1);
  const std::int64_t positions = outer * inner;
  auto lse = std::make_shared<Tensor<double>>(Tensor<double>::empty({positions}, logits.device()));
  Tensor<T> loss = Tensor<T>::empty(target.shape(), logits.device());
  Tensor<T> wsum = Tensor<T>::empty(target.shape(), logits.device());
  launch_cross_entropy(xc.data(), tc.data(), wc.defined() ? wc.data() : static_cast<const T*>(nullptr), outer,
                       classes, inner, ignore_index, lse->data(), loss.data(), wsum.data());
  // The reductions stay on the device (no host synchronisation): the Mean divides by the summed
  // weights there (a float quotient equals the double one rounded to float), and so does the backward.
  Tensor<T> weight_sum;  // Mean: the summed class weights of the non-ignored positions, 0-d
  Tensor<T> out;
  if (reduction == Reduction::None) {
    out = loss;
  } else {
    Tensor<T> total = cuda::sum(loss);
    if (reduction == Reduction::Sum) {
      out = total;
    } else {
      weight_sum = cuda::sum(wsum);
      out = Tensor<T>::empty({}, logits.device());
      launch_binary(BinaryOp::Div, total.data(), weight_sum.data(), out.data(), 1, static_cast<const StridedPair*>(nullptr));
    }
  }
  return record("cross_entropy", out, {logits},
                [xc, tc, wc, lse, reduction, weight_sum, ignore_index, outer, classes, inner](const Tensor<T>& g) {
                  const Tensor<T> gc = g.contiguous_copy_if_needed();
                  Tensor<T> dx = Tensor<T>::empty(xc.shape(), xc.device());
                  const bool per_position = reduction == Reduction::None;
                  launch_cross_entropy_backward(xc.data(), tc.data(),
                                                wc.defined() ? wc.data() : static_cast<const T*>(nullptr),
                                                lse->data(), per_position ? gc.data() : static_cast<const T*>(nullptr),
                                                per_position ? static_cast<const T*>(nullptr) : gc.data(),
                                                weight_sum.defined() ? weight_sum.data() : static_cast<const T*>(nullptr),
                                                outer, classes, inner, ignore_index, dx.data());
                  return std::vector<Tensor<T>>{dx};
                });
}

#define GKD_INSTANTIATE_REDUCE(T)                                                                     \
  template Tensor<T> sum<T>(const Tensor<T>&);                                                        \
  template Tensor<T> sum<T>(const Tensor<T>&, const std::vector<std::int64_t>&, bool);                \
  template Tensor<T> softmax<T>(const Tensor<T>&, std::int64_t);                                      \
  template Tensor<T> log_softmax<T>(const Tensor<T>&, std::int64_t);                                  \
  template Tensor<T> max<T>(const Tensor<T>&, std::int64_t, bool);                                    \
  template Tensor<T> min<T>(const Tensor<T>&, std::int64_t, bool);                                    \
  template Tensor<T> argmax<T>(const Tensor<T>&, std::int64_t, bool);                                 \
  template Tensor<T> cross_entropy<T>(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, std::int64_t, \
                                      Reduction);
GKD_INSTANTIATE_REDUCE(float)
GKD_INSTANTIATE_REDUCE(double)
#undef GKD_INSTANTIATE_REDUCE

}  // namespace gkd::cuda
