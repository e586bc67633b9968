// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::Tensor<T>`: an N-d, strided, reference-counted view over a Storage, carrying its autograd
/// state; its views (reshape, permute, narrow, expand, ...); and the reverse-mode engine.
///
/// Example:
/// @code
///   auto w = gkd::Tensor<float>::full({3}, 2.f).requires_grad();
///   auto y = gkd::sum(gkd::mul(w, w));   // y = sum(w^2)
///   y.backward();                         // w.grad() == 2 * w
/// @endcode
///
/// Tensors are always materialised values (never lazy expressions). Copying a Tensor copies the
/// handle, not the data; use `clone()` for a deep copy. Views share storage with their base.
///
/// Device tensors: `empty/zeros/ones/full` take an optional Device, `to(device)`, `cuda()` and `cpu()`
/// copy between host and GPU. Device memory, copies, gradient accumulation and broadcast-gradient
/// sums dispatch to the compiled `gkd::cuda` library when the program links it (the PUBLIC macro
/// `GKD_HAS_CUDA`); otherwise a CUDA tensor makes them throw gkd::Error saying so. No symbol of
/// `gkd::cuda` is named without that macro, so CPU-only programs never need it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <memory>
#include <numeric>
#include <ostream>
#include <span>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "gkd/autograd/node.hpp"
#include "gkd/core/device.hpp"
#include "gkd/core/dtype.hpp"
#include "gkd/core/error.hpp"
#include "gkd/core/shape.hpp"
#include "gkd/core/storage.hpp"
#include "gkd/core/strided.hpp"
#if defined(GKD_HAS_CUDA) && GKD_HAS_CUDA
#include "gkd/cuda/memory.hpp"
#define GKD_DETAIL_CUDA_LINKED 1
#else
#define GKD_DETAIL_CUDA_LINKED 0
#endif

namespace gkd {

namespace detail {

/// Throws the error every op raises for a CUDA tensor in a program without `gkd::cuda`.
[[noreturn]] inline void cuda_not_linked(std::string_view op, Device device) {
  GKD_FAIL(op, "tensor is on " << device.str() << " but this program is not linked with gkd::cuda");
}

/// A Storage of `count` uninitialised elements on `device`.
template <Real T>
std::shared_ptr<Storage<T>> make_storage(std::size_t count, Device device) {
  if (device.is_cpu()) return std::make_shared<Storage<T>>(count);
#if GKD_DETAIL_CUDA_LINKED
  T* p = static_cast<T*>(cuda::allocate(count * sizeof(T), device.index));
  return std::make_shared<Storage<T>>(p, count, device, [](T* q) { cuda::deallocate(q); });
#else
  cuda_not_linked("empty", device);
#endif
}

#if GKD_DETAIL_CUDA_LINKED
/// The strided-primitive layout for `shape` with destination and source strides.
inline cuda::StridedPair strided_pair(const Shape& shape, const Strides& dst, const Strides& src) {
  GKD_CHECK(shape.size() <= static_cast<std::size_t>(cuda::kMaxRank), "cuda",
            "tensors of rank " << shape.size() << " exceed the CUDA limit of " << cuda::kMaxRank);
  cuda::StridedPair pair;
  pair.rank = static_cast<int>(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    pair.shape[i] = shape[i];
    pair.dst_stride[i] = dst[i];
    pair.src_stride[i] = src[i];
  }
  return pair;
}
#endif

/// The device an op on `a` and `b` runs on: a's when it is a GPU, else b's (ops check that they agree).
inline Device dispatch_device(Device a, Device b) { return a.is_cuda() ? a : b; }

}  // namespace detail

/// Sends an op to its `gkd::cuda` implementation: in an op body, `GKD_CUDA_DISPATCH(x.device(), "relu",
/// relu(x));` returns `gkd::cuda::relu(x)` when x is on a GPU and the program links gkd::cuda (macro
/// GKD_HAS_CUDA), and throws "… is on cuda:0 but this program is not linked with gkd::cuda" otherwise.
/// On the host it does nothing.
#if GKD_DETAIL_CUDA_LINKED
#define GKD_CUDA_DISPATCH(device, op, call) \
  if ((device).is_cuda()) return ::gkd::cuda::call
#else
#define GKD_CUDA_DISPATCH(device, op, call) \
  if ((device).is_cuda()) ::gkd::detail::cuda_not_linked((op), (device))
#endif

template <Real T>
class Tensor {
 public:
  using value_type = T;

  /// An undefined tensor (no storage); `defined()` is false. Used for "no gradient".
  Tensor() = default;

  // ---- creation -------------------------------------------------------------------------------
  /// Uninitialised contiguous tensor on `device` (the host by default).
  static Tensor empty(const Shape& shape, Device device = kCPU) {
    for (auto s : shape) GKD_CHECK(s >= 0, "empty", "negative size in shape " << to_string(shape));
    Tensor t;
    t.storage_ = detail::make_storage<T>(static_cast<std::size_t>(gkd::numel(shape)), device);
    t.shape_ = shape;
    t.strides_ = contiguous_strides(shape);
    return t;
  }
  /// Tensor filled with `value`.
  static Tensor full(const Shape& shape, T value, Device device = kCPU) {
    Tensor t = empty(shape, device);
    if (device.is_cpu()) {
      std::fill_n(t.data(), t.numel(), value);
    } else {
#if GKD_DETAIL_CUDA_LINKED
      cuda::fill(t.data(), t.numel(), value);
#endif
    }
    return t;
  }
  static Tensor zeros(const Shape& shape, Device device = kCPU) { return full(shape, T(0), device); }
  static Tensor ones(const Shape& shape, Device device = kCPU) { return full(shape, T(1), device); }
  /// 0-d tensor holding `value`.
  static Tensor scalar(T value) { return full({}, value); }
  /// Copies `values` (row-major) into a new tensor of `shape`.
  static Tensor from(const Shape& shape, const std::vector<T>& values) {
    GKD_CHECK(static_cast<std::int64_t>(values.size()) == gkd::numel(shape), "from",
              values.size() << " values cannot fill shape " << to_string(shape));
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }
  /// [0, 1, ..., n-1].
  static Tensor arange(std::int64_t n) {
    Tensor t = empty({n});
    for (std::int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<T>(i);
    return t;
  }
  /// Wraps existing memory without copying; the caller keeps `data` alive while the tensor lives.
  static Tensor borrow(T* data, const Shape& shape, const Strides& strides = {}) {
    Tensor t;
    std::size_t extent = gkd::numel(shape) > 0 ? 1 : 0;
    t.shape_ = shape;
    t.strides_ = strides.empty() ? contiguous_strides(shape) : strides;
    GKD_CHECK(t.strides_.size() == shape.size(), "borrow",
              "strides of rank " << t.strides_.size() << " for shape " << to_string(shape));
    for (std::size_t i = 0; i < shape.size(); ++i)
      if (shape[i] > 0) extent += static_cast<std::size_t>((shape[i] - 1) * t.strides_[i]);
    t.storage_ = std::make_shared<Storage<T>>(data, extent, kCPU, [](T*) {});
    return t;
  }

  // ---- properties -----------------------------------------------------------------------------
  [[nodiscard]] bool defined() const noexcept { return storage_ != nullptr; }
  [[nodiscard]] const Shape& shape() const noexcept { return shape_; }
  [[nodiscard]] const Strides& strides() const noexcept { return strides_; }
  [[nodiscard]] std::size_t dim() const noexcept { return shape_.size(); }
  /// Size of dimension `d` (negative counts from the end).
  [[nodiscard]] std::int64_t size(std::int64_t d) const { return shape_[normalize_dim(d, dim(), "size")]; }
  [[nodiscard]] std::int64_t numel() const noexcept { return gkd::numel(shape_); }
  [[nodiscard]] Device device() const { return storage_ ? storage_->device() : kCPU; }
  [[nodiscard]] bool is_contiguous() const noexcept {
    std::int64_t expected = 1;
    for (std::size_t i = shape_.size(); i-- > 0;) {
      if (shape_[i] == 1) continue;
      if (strides_[i] != expected) return false;
      expected *= shape_[i];
    }
    return true;
  }
  /// Pointer to element 0 of this view (respecting the view's offset, not its strides).
  [[nodiscard]] T* data() const noexcept { return storage_ ? storage_->data() + offset_ : nullptr; }
  [[nodiscard]] std::int64_t storage_offset() const noexcept { return offset_; }
  [[nodiscard]] const std::shared_ptr<Storage<T>>& storage() const noexcept { return storage_; }
  /// Element at a multi-index (bounds-checked).
  [[nodiscard]] T at(std::initializer_list<std::int64_t> index) const { return data()[offset_of(index)]; }
  /// Reference to the element at a multi-index (bounds-checked, host only); writes bypass autograd.
  [[nodiscard]] T& at(std::initializer_list<std::int64_t> index) { return data()[offset_of(index)]; }
  /// Value of a one-element tensor (copied to the host when on a device).
  [[nodiscard]] T item() const {
    GKD_CHECK(numel() == 1, "item", "tensor of shape " << to_string(shape_) << " is not one element");
    if (device().is_cuda()) return cpu().data()[0];
    return data()[0];
  }
  /// Copies the elements, row-major, into a (host) vector.
  [[nodiscard]] std::vector<T> to_vector() const {
    Tensor c = device().is_cuda() ? cpu() : contiguous_copy_if_needed();
    return std::vector<T>(c.data(), c.data() + c.numel());
  }

  // ---- devices ----------------------------------------------------------------------------------
  /// A contiguous copy on `device`, or this tensor when it already lives there. The copy is a new
  /// leaf: gradients do not flow back through a device transfer (move parameters and inputs first,
  /// then call requires_grad()).
  [[nodiscard]] Tensor to(Device target) const {
    GKD_CHECK(defined(), "to", "called on an undefined tensor");
    if (target == device()) return *this;
    if (target.is_cpu() && device().is_cpu()) return *this;
#if GKD_DETAIL_CUDA_LINKED
    const Tensor src = contiguous_copy_if_needed();
    Tensor out = empty(shape_, target);
    cuda::copy_bytes(out.data(), target, src.data(), device(), static_cast<std::size_t>(numel()) * sizeof(T));
    return out;
#else
    detail::cuda_not_linked("to", target.is_cuda() ? target : device());
#endif
  }
  /// `to(cuda_device(index))`.
  [[nodiscard]] Tensor cuda(int index = 0) const { return to(cuda_device(index)); }
  /// `to(kCPU)`.
  [[nodiscard]] Tensor cpu() const { return to(kCPU); }

  // ---- autograd ---------------------------------------------------------------------------------
  /// Marks this leaf as requiring a gradient (builder style). Example: `auto w = T::zeros({3}).requires_grad();`
  Tensor& requires_grad(bool on = true) & {
    set_requires_grad(on);
    return *this;
  }
  Tensor requires_grad(bool on = true) && {
    set_requires_grad(on);
    return std::move(*this);
  }
  [[nodiscard]] bool requires_grad_flag() const noexcept { return meta_ && meta_->requires_grad; }
  /// True for tensors not produced by a recorded op.
  [[nodiscard]] bool is_leaf() const noexcept { return !meta_ || !meta_->grad_fn; }
  /// The accumulated gradient (undefined until a backward pass reaches this tensor).
  [[nodiscard]] Tensor grad() const {
    return meta_ && meta_->grad ? *meta_->grad : Tensor();
  }
  /// Sets (or clears, with an undefined tensor) the accumulated gradient; `g` must have this tensor's shape
  /// and device. The gradient is held as given (a view stays a view: in-place updates such as clipping reach
  /// its base); a later backward adds into it in place when it is contiguous, and otherwise replaces it with
  /// the sum.
  void set_grad(const Tensor& g) {
    GKD_CHECK(!g.defined() || (g.shape() == shape() && g.device() == device()), "set_grad",
              "gradient " << to_string(g.shape()) << " on " << g.device().str() << " does not match the tensor "
                          << to_string(shape()) << " on " << device().str());
    ensure_meta();
    meta_->grad = g.defined() ? std::make_shared<Tensor>(g) : nullptr;
  }
  /// Drops the accumulated gradient.
  void zero_grad() {
    if (meta_) meta_->grad = nullptr;
  }
  /// Keeps the gradient of this non-leaf tensor after backward (leaves always keep theirs).
  Tensor& retain_grad() {
    ensure_meta();
    meta_->retains_grad = true;
    return *this;
  }
  /// Name of the op that produced this tensor, or "" for a leaf.
  [[nodiscard]] std::string grad_fn_name() const { return is_leaf() ? "" : meta_->grad_fn->op; }
  /// Shares the data, drops the autograd history.
  [[nodiscard]] Tensor detach() const {
    Tensor t = *this;
    t.meta_ = nullptr;
    return t;
  }
  /// Runs reverse-mode differentiation from this scalar (or with an explicit output gradient).
  /// @param grad_output gradient of the final objective w.r.t. this tensor; required unless scalar
  /// @param retain_graph keep saved buffers so that backward can run through this graph again
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  // ---- views (share storage; differentiable) ----------------------------------------------------
  /// Same data with a new shape; one dim may be -1. Copies only when the layout requires it.
  [[nodiscard]] Tensor reshape(Shape shape) const;
  /// Reorders dims: result dim i is input dim `order[i]`.
  [[nodiscard]] Tensor permute(const std::vector<std::int64_t>& order) const;
  [[nodiscard]] Tensor transpose(std::int64_t d0, std::int64_t d1) const;
  /// Elements start, start+step, ... < end along `d`.
  [[nodiscard]] Tensor slice(std::int64_t d, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  /// `length` elements from `start` along `d`.
  [[nodiscard]] Tensor narrow(std::int64_t d, std::int64_t start, std::int64_t length) const {
    return slice(d, start, start + length);
  }
  /// Index `index` of dim `d`, removing that dim.
  [[nodiscard]] Tensor select(std::int64_t d, std::int64_t index) const;
  /// Broadcasts size-1 dims (and new leading dims) to `shape` without copying; -1 keeps a size.
  [[nodiscard]] Tensor expand(const Shape& shape) const;
  [[nodiscard]] Tensor squeeze(std::int64_t d) const;
  [[nodiscard]] Tensor unsqueeze(std::int64_t d) const;
  /// Merges dims start..end into one.
  [[nodiscard]] Tensor flatten(std::int64_t start = 0, std::int64_t end = -1) const;
  /// This tensor if already contiguous, otherwise a contiguous copy (differentiable).
  [[nodiscard]] Tensor contiguous() const;
  /// A contiguous deep copy (differentiable).
  [[nodiscard]] Tensor clone() const;

  /// Autograd state (for op implementations and the engine).
  [[nodiscard]] const std::shared_ptr<AutogradMeta<T>>& meta() const noexcept { return meta_; }
  void set_meta(std::shared_ptr<AutogradMeta<T>> m) { meta_ = std::move(m); }

  /// A view with explicit layout over the same storage (no autograd); for op implementations.
  [[nodiscard]] Tensor as_strided_view(const Shape& shape, const Strides& strides, std::int64_t offset) const {
    Tensor t;
    t.storage_ = storage_;
    t.shape_ = shape;
    t.strides_ = strides;
    t.offset_ = offset;
    return t;
  }
  /// Contiguous data as a tensor without autograd: `*this` when contiguous, else a copy.
  [[nodiscard]] Tensor contiguous_copy_if_needed() const {
    if (is_contiguous()) return detach();
    if (device().is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
      Tensor out = empty(shape_, device());
      cuda::copy_strided(out.data(), data(), detail::strided_pair(shape_, out.strides_, strides_));
      return out;
#else
      detail::cuda_not_linked("contiguous", device());
#endif
    }
    Tensor out = empty(shape_);
    T* dst = out.data();
    const T* src = data();
    std::int64_t i = 0;
    detail::strided_for_each<1>(shape_, {&strides_}, [&](const auto& o) { dst[i++] = src[o[0]]; });
    return out;
  }

 private:
  void ensure_meta() {
    if (!meta_) meta_ = std::make_shared<AutogradMeta<T>>();
  }
  void set_requires_grad(bool on) {
    GKD_CHECK(is_leaf(), "requires_grad",
              "only leaf tensors can change requires_grad; this one was produced by '"
                  << meta_->grad_fn->op << "' (use detach() first)");
    ensure_meta();
    meta_->requires_grad = on;
  }
  std::int64_t offset_of(std::initializer_list<std::int64_t> index) const {
    GKD_CHECK(device().is_cpu(), "at", "element access to a tensor on " << device().str() << "; copy it with cpu()");
    GKD_CHECK(index.size() == dim(), "at", index.size() << " indices for a tensor of shape " << to_string(shape_));
    std::int64_t o = 0;
    std::size_t d = 0;
    for (auto i : index) {
      GKD_CHECK(i >= 0 && i < shape_[d], "at", "index " << i << " out of range for dim " << d << " of shape " << to_string(shape_));
      o += i * strides_[d++];
    }
    return o;
  }

  std::shared_ptr<Storage<T>> storage_;
  Shape shape_;
  Strides strides_;
  std::int64_t offset_ = 0;
  std::shared_ptr<AutogradMeta<T>> meta_;
};

// ---- op recording ---------------------------------------------------------------------------------

/// True when `t` takes part in differentiation.
template <Real T>
bool needs_grad(const Tensor<T>& t) {
  return t.defined() && t.requires_grad_flag();
}

/// Records `output` as the result of op `op` on `inputs`, with `backward` mapping the output
/// gradient to one gradient per input (same order; an undefined tensor for "none"). Does nothing
/// when grad mode is off or no input requires a gradient. This is how user-defined ops join the
/// graph; see examples/custom_op.cpp. Inputs come as a braced list or, for a run-time number of
/// inputs (concat), as a span.
/// @pre `op` is registered with GKD_REGISTER_OPS (so that the suite can prove it is gradchecked)
template <Real T, class Backward>
Tensor<T> record(std::string_view op, Tensor<T> output, std::span<const Tensor<T>> inputs, Backward&& backward) {
  if (!grad_enabled()) return output;
  bool any = false;
  for (const auto& in : inputs) any = any || needs_grad(in);
  if (!any) return output;
  auto node = std::make_shared<Node<T>>();
  node->op = std::string(op);
  for (const auto& in : inputs) {
    node->inputs.push_back(needs_grad(in) ? in.meta() : nullptr);
    node->input_shapes.push_back(in.shape());
  }
  node->backward = std::forward<Backward>(backward);
  auto meta = std::make_shared<AutogradMeta<T>>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  output.set_meta(std::move(meta));
  return output;
}

/// `record` for a fixed list of inputs: `record("mul", y, {a, b}, backward)`.
template <Real T, class Backward>
Tensor<T> record(std::string_view op, Tensor<T> output, std::initializer_list<Tensor<T>> inputs, Backward&& backward) {
  return record(op, std::move(output), std::span<const Tensor<T>>(inputs.begin(), inputs.size()),
                std::forward<Backward>(backward));
}

namespace detail {

/// Sums `grad` down to `shape` (undoing broadcasting); returns `grad` itself when shapes agree.
template <Real T>
Tensor<T> sum_to(const Tensor<T>& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  Tensor<T> out = Tensor<T>::zeros(shape, grad.device());
  const Strides out_strides = broadcast_strides(shape, out.strides(), grad.shape());
  if (grad.device().is_cuda()) {
#if GKD_DETAIL_CUDA_LINKED
    cuda::accumulate_strided(out.data(), grad.data(), strided_pair(grad.shape(), out_strides, grad.strides()));
    return out;
#else
    cuda_not_linked("sum_to", grad.device());
#endif
  }
  T* dst = out.data();
  const T* src = grad.data();
  // Trailing dims that are all summed are one contiguous run of a contiguous gradient: sum each run
  // in a register rather than element by element through memory, in the same order (bit for bit the
  // sums of the general loop below, which float64 results against PyTorch rely on).
  std::size_t kept = grad.dim();
  std::int64_t run = 1;
  while (kept > 0 && out_strides[kept - 1] == 0) run *= grad.shape()[--kept];
  if (grad.is_contiguous() && run > 1) {
    const Shape outer(grad.shape().begin(), grad.shape().begin() + static_cast<std::ptrdiff_t>(kept));
    const Strides grad_outer(grad.strides().begin(), grad.strides().begin() + static_cast<std::ptrdiff_t>(kept));
    const Strides out_outer(out_strides.begin(), out_strides.begin() + static_cast<std::ptrdiff_t>(kept));
    strided_for_each<2>(outer, {&grad_outer, &out_outer}, [&](const auto& o) {
      const T* s = src + o[0];
      T acc = dst[o[1]];
      for (std::int64_t i = 0; i < run; ++i) acc += s[i];
      dst[o[1]] = acc;
    });
    return out;
  }
  strided_for_each<2>(grad.shape(), {&grad.strides(), &out_strides},
                      [&](const auto& o) { dst[o[1]] += src[o[0]]; });
  return out;
}

/// Copies `src` (any layout, same shape) into the elements viewed by `dst`.
template <Real T>
void copy_into(const Tensor<T>& dst, const Tensor<T>& src) {
  if (dst.device().is_cuda() || src.device().is_cuda()) {
    GKD_CHECK(dst.device() == src.device(), "copy_into",
              "destination on " << dst.device().str() << ", source on " << src.device().str());
#if GKD_DETAIL_CUDA_LINKED
    cuda::copy_strided(dst.data(), src.data(), strided_pair(dst.shape(), dst.strides(), src.strides()));
    return;
#else
    cuda_not_linked("copy_into", dst.device());
#endif
  }
  T* d = dst.data();
  const T* s = src.data();
  strided_for_each<2>(dst.shape(), {&dst.strides(), &src.strides()},
                      [&](const auto& o) { d[o[0]] = s[o[1]]; });
}

/// acc += g elementwise (acc contiguous and owned by the engine; g any layout, same shape).
template <Real T>
void accumulate(Tensor<T>& acc, const Tensor<T>& g) {
  if (acc.device().is_cuda() || g.device().is_cuda()) {
    GKD_CHECK(acc.device() == g.device(), "backward",
              "gradient on " << g.device().str() << " accumulated into one on " << acc.device().str());
#if GKD_DETAIL_CUDA_LINKED
    cuda::accumulate_strided(acc.data(), g.data(), strided_pair(g.shape(), acc.strides(), g.strides()));
    return;
#else
    cuda_not_linked("backward", g.device());
#endif
  }
  T* d = acc.data();
  const T* s = g.data();
  if (g.is_contiguous()) {
    const std::int64_t n = acc.numel();
    for (std::int64_t i = 0; i < n; ++i) d[i] += s[i];
    return;
  }
  std::int64_t i = 0;
  strided_for_each<1>(g.shape(), {&g.strides()}, [&](const auto& o) { d[i++] += s[o[0]]; });
}

/// An owned contiguous copy of `g` that the engine may accumulate into.
template <Real T>
Tensor<T> owned_copy(const Tensor<T>& g) {
  Tensor<T> c = Tensor<T>::empty(g.shape(), g.device());
  copy_into(c, g);
  return c;
}

/// `g` itself when it is the sole owner of its whole buffer, contiguous (the engine may then
/// accumulate into it in place, or keep it as a leaf's gradient); else an owned copy.
template <Real T>
Tensor<T> take_or_copy(Tensor<T>&& g) {
  Tensor<T> t = g.detach();
  g = Tensor<T>();
  const bool sole = t.storage() != nullptr && t.storage().use_count() == 1 && t.is_contiguous() &&
                    t.storage_offset() == 0 && static_cast<std::size_t>(t.numel()) == t.storage()->size();
  return sole ? t : owned_copy(t);
}

}  // namespace detail

// ---- the engine -----------------------------------------------------------------------------------

template <Real T>
void Tensor<T>::backward(const Tensor& grad_output, bool retain_graph) const {
  GKD_CHECK(defined(), "backward", "called on an undefined tensor");
  GKD_CHECK(requires_grad_flag(), "backward",
            "no input of this tensor requires grad — did you call requires_grad() on the parameters, "
            "or compute it under NoGrad?");
  Tensor seed;
  if (grad_output.defined()) {
    GKD_CHECK(grad_output.shape() == shape_, "backward",
              "output gradient has shape " << to_string(grad_output.shape()) << " but the tensor has shape "
                                           << to_string(shape_));
    GKD_CHECK(grad_output.device() == device(), "backward",
              "output gradient is on " << grad_output.device().str() << " but the tensor is on " << device().str());
    seed = detail::owned_copy(grad_output);
  } else {
    GKD_CHECK(numel() == 1, "backward",
              "implicit gradient needs a one-element output, got shape " << to_string(shape_)
                                                                         << "; pass grad_output");
    seed = Tensor::ones(shape_, device());
  }

  using MetaPtr = AutogradMeta<T>*;
  // Topological order by iterative DFS (graphs of thousands of ops must not overflow the stack).
  std::vector<MetaPtr> order;
  std::unordered_map<MetaPtr, int> state;  // 1 = visiting, 2 = done
  std::vector<std::pair<MetaPtr, std::size_t>> stack{{meta_.get(), 0}};
  state[meta_.get()] = 1;
  while (!stack.empty()) {
    auto& [m, next] = stack.back();
    const auto& fn = m->grad_fn;
    if (fn && next < fn->inputs.size()) {
      MetaPtr child = fn->inputs[next++].get();
      if (child && !state.count(child)) {
        state[child] = 1;
        stack.emplace_back(child, 0);
      }
      continue;
    }
    state[m] = 2;
    order.push_back(m);
    stack.pop_back();
  }

  std::unordered_map<MetaPtr, Tensor> grads;
  grads[meta_.get()] = std::move(seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    MetaPtr m = *it;
    auto found = grads.find(m);
    if (found == grads.end()) continue;
    Tensor g = std::move(found->second);
    grads.erase(found);
    if (!m->grad_fn || m->retains_grad) {
      if (m->grad) {
        // A gradient set by hand may be a view (strided, possibly overlapping): add out of place.
        if (!m->grad->is_contiguous()) *m->grad = detail::owned_copy(*m->grad);
        detail::accumulate(*m->grad, g);
      } else if (!m->grad_fn) {
        m->grad = std::make_shared<Tensor>(detail::take_or_copy(std::move(g)));
      } else {  // g still flows on into the node below
        m->grad = std::make_shared<Tensor>(detail::owned_copy(g));
      }
    }
    if (!m->grad_fn) continue;
    auto& node = *m->grad_fn;
    GKD_CHECK(!node.released, "backward",
              "backward through a freed graph (op '" << node.op
                                                     << "'): its saved buffers were released by an earlier "
                                                        "backward; pass retain_graph=true to the first call");
    std::vector<Tensor> input_grads = node.backward(g);
    GKD_CHECK(input_grads.size() == node.inputs.size(), "backward",
              "op '" << node.op << "' returned " << input_grads.size() << " gradients for "
                     << node.inputs.size() << " inputs");
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      MetaPtr in = node.inputs[i].get();
      if (!in || !input_grads[i].defined()) continue;
      GKD_CHECK(input_grads[i].shape() == node.input_shapes[i], "backward",
                "op '" << node.op << "' returned a gradient of shape " << to_string(input_grads[i].shape())
                       << " for input " << i << " of shape " << to_string(node.input_shapes[i]));
      auto slot = grads.find(in);
      if (slot == grads.end()) {
        grads.emplace(in, std::move(input_grads[i]));
      } else {
        slot->second = detail::take_or_copy(std::move(slot->second));
        detail::accumulate(slot->second, input_grads[i]);
      }
    }
    if (!retain_graph) {
      node.backward = nullptr;
      node.released = true;
    }
  }
}

// ---- views ------------------------------------------------------------------------------------------

template <Real T>
Tensor<T> Tensor<T>::reshape(Shape shape) const {
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GKD_CHECK(infer < 0, "reshape", "more than one -1 in " << to_string(shape));
      infer = static_cast<int>(i);
    } else {
      GKD_CHECK(shape[i] >= 0, "reshape", "negative size in " << to_string(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    GKD_CHECK(known != 0 && numel() % known == 0, "reshape",
              "cannot infer -1 reshaping " << to_string(shape_) << " to " << to_string(shape));
    shape[static_cast<std::size_t>(infer)] = numel() / known;
  }
  GKD_CHECK(gkd::numel(shape) == numel(), "reshape",
            "cannot reshape " << to_string(shape_) << " (" << numel() << " elements) to " << to_string(shape));
  const Tensor base = contiguous_copy_if_needed();
  Tensor out = base.as_strided_view(shape, contiguous_strides(shape), base.offset_);
  const Shape in_shape = shape_;
  return record("reshape", out, {*this}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
}

template <Real T>
Tensor<T> Tensor<T>::permute(const std::vector<std::int64_t>& order) const {
  GKD_CHECK(order.size() == dim(), "permute", "order of length " << order.size() << " for shape " << to_string(shape_));
  Shape shape(dim());
  Strides strides(dim());
  std::vector<std::int64_t> inverse(dim(), -1);
  for (std::size_t i = 0; i < dim(); ++i) {
    const std::size_t d = normalize_dim(order[i], dim(), "permute");
    GKD_CHECK(inverse[d] < 0, "permute", "dim " << d << " appears twice in the order");
    inverse[d] = static_cast<std::int64_t>(i);
    shape[i] = shape_[d];
    strides[i] = strides_[d];
  }
  Tensor out = as_strided_view(shape, strides, offset_);
  return record("permute", out, {*this}, [inverse](const Tensor& g) {
    return std::vector<Tensor>{g.permute(inverse)};
  });
}

template <Real T>
Tensor<T> Tensor<T>::transpose(std::int64_t d0, std::int64_t d1) const {
  std::vector<std::int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(d0, dim(), "transpose")], order[normalize_dim(d1, dim(), "transpose")]);
  return permute(order);
}

template <Real T>
Tensor<T> Tensor<T>::slice(std::int64_t d, std::int64_t start, std::int64_t end, std::int64_t step) const {
  const std::size_t k = normalize_dim(d, dim(), "slice");
  GKD_CHECK(step >= 1, "slice", "step must be positive, got " << step);
  const std::int64_t n = shape_[k];
  if (start < 0) start += n;
  if (end < 0) end += n;
  end = std::min(end, n);
  GKD_CHECK(start >= 0 && start <= n && end >= start, "slice",
            "range [" << start << ", " << end << ") is invalid for dim " << k << " of shape " << to_string(shape_));
  Shape shape = shape_;
  Strides strides = strides_;
  shape[k] = (end - start + step - 1) / step;
  strides[k] = strides_[k] * step;
  Tensor out = as_strided_view(shape, strides, offset_ + start * strides_[k]);
  const Shape in_shape = shape_;
  return record("slice", out, {*this}, [in_shape, k, start, end, step](const Tensor& g) {
    Tensor full = Tensor::zeros(in_shape, g.device());
    detail::copy_into(full.detach().slice(static_cast<std::int64_t>(k), start, end, step), g);
    return std::vector<Tensor>{full};
  });
}

template <Real T>
Tensor<T> Tensor<T>::select(std::int64_t d, std::int64_t index) const {
  const std::size_t k = normalize_dim(d, dim(), "select");
  GKD_CHECK(index >= -shape_[k] && index < shape_[k], "select",
            "index " << index << " out of range for dim " << k << " of shape " << to_string(shape_));
  if (index < 0) index += shape_[k];
  return slice(static_cast<std::int64_t>(k), index, index + 1).squeeze(static_cast<std::int64_t>(k));
}

template <Real T>
Tensor<T> Tensor<T>::expand(const Shape& shape) const {
  GKD_CHECK(shape.size() >= dim(), "expand",
            "cannot expand " << to_string(shape_) << " to fewer dims " << to_string(shape));
  const std::size_t lead = shape.size() - dim();
  Shape out_shape(shape.size());
  Strides strides(shape.size(), 0);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      GKD_CHECK(shape[i] >= 0, "expand", "new leading dims need explicit sizes, got " << to_string(shape));
      out_shape[i] = shape[i];
      continue;
    }
    const std::int64_t have = shape_[i - lead];
    const std::int64_t want = shape[i] == -1 ? have : shape[i];
    GKD_CHECK(have == want || have == 1, "expand",
              "cannot expand " << to_string(shape_) << " to " << to_string(shape));
    out_shape[i] = want;
    strides[i] = have == want ? strides_[i - lead] : 0;
  }
  Tensor out = as_strided_view(out_shape, strides, offset_);
  const Shape in_shape = shape_;
  return record("expand", out, {*this}, [in_shape](const Tensor& g) {
    return std::vector<Tensor>{detail::sum_to(g, in_shape)};
  });
}

template <Real T>
Tensor<T> Tensor<T>::squeeze(std::int64_t d) const {
  const std::size_t k = normalize_dim(d, dim(), "squeeze");
  GKD_CHECK(shape_[k] == 1, "squeeze", "dim " << k << " of shape " << to_string(shape_) << " is not 1");
  Shape shape = shape_;
  Strides strides = strides_;
  shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(k));
  strides.erase(strides.begin() + static_cast<std::ptrdiff_t>(k));
  Tensor out = as_strided_view(shape, strides, offset_);
  return record("squeeze", out, {*this}, [k](const Tensor& g) {
    return std::vector<Tensor>{g.unsqueeze(static_cast<std::int64_t>(k))};
  });
}

template <Real T>
Tensor<T> Tensor<T>::unsqueeze(std::int64_t d) const {
  const std::size_t k = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape shape = shape_;
  Strides strides = strides_;
  const std::int64_t stride = k < dim() ? strides_[k] * shape_[k] : 1;
  shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(k), 1);
  strides.insert(strides.begin() + static_cast<std::ptrdiff_t>(k), stride);
  Tensor out = as_strided_view(shape, strides, offset_);
  return record("unsqueeze", out, {*this}, [k](const Tensor& g) {
    return std::vector<Tensor>{g.squeeze(static_cast<std::int64_t>(k))};
  });
}

template <Real T>
Tensor<T> Tensor<T>::flatten(std::int64_t start, std::int64_t end) const {
  if (dim() == 0) return reshape({1});
  const std::size_t s = normalize_dim(start, dim(), "flatten");
  const std::size_t e = normalize_dim(end, dim(), "flatten");
  GKD_CHECK(s <= e, "flatten", "start dim " << s << " is after end dim " << e);
  Shape shape(shape_.begin(), shape_.begin() + static_cast<std::ptrdiff_t>(s));
  std::int64_t merged = 1;
  for (std::size_t i = s; i <= e; ++i) merged *= shape_[i];
  shape.push_back(merged);
  shape.insert(shape.end(), shape_.begin() + static_cast<std::ptrdiff_t>(e) + 1, shape_.end());
  return reshape(shape);
}

template <Real T>
Tensor<T> Tensor<T>::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

template <Real T>
Tensor<T> Tensor<T>::clone() const {
  Tensor out = detail::owned_copy(*this);
  return record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

// ---- printing ---------------------------------------------------------------------------------------

/// Prints `tensor(float32, [2, 3]) [[1, 2, 3], [4, 5, 6]]`, eliding the middle of long dims.
template <Real T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& t) {
  if (!t.defined()) return out << "tensor(undefined)";
  out << "tensor(" << dtype_name<T>() << ", " << to_string(t.shape());
  if (t.requires_grad_flag()) out << ", requires_grad" << (t.is_leaf() ? "" : ", grad_fn=" + t.grad_fn_name());
  if (t.device().is_cuda()) out << ", " << t.device().str();
  out << ") ";
  const Tensor<T> c = t.device().is_cuda() ? t.cpu() : t.contiguous_copy_if_needed();
  const Strides strides = contiguous_strides(t.shape());
  std::ostringstream body;
  body << std::setprecision(std::numeric_limits<T>::digits10 > 10 ? 10 : 6);
  constexpr std::int64_t kEdge = 3;
  auto rec = [&](auto&& self, std::size_t d, std::int64_t off) -> void {
    if (d == t.dim()) {
      body << c.data()[off];
      return;
    }
    body << '[';
    const std::int64_t n = t.shape()[d];
    for (std::int64_t i = 0; i < n; ++i) {
      if (n > 2 * kEdge + 1 && i == kEdge) {
        body << "..., ";
        i = n - kEdge - 1;
        continue;
      }
      self(self, d + 1, off + i * strides[d]);
      if (i + 1 < n) body << ", ";
    }
    body << ']';
  };
  rec(rec, 0, 0);
  return out << body.str();
}

}  // namespace gkd

GKD_REGISTER_OPS(views, "reshape", "permute", "slice", "expand", "squeeze", "unsqueeze", "clone")
