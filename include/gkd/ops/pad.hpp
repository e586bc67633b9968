// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `pad`: PyTorch's F.pad on the trailing dims, with constant (`PadMode::Zero`, any fill value),
/// reflection and replication modes; differentiable w.r.t. the input.
///
/// `pads` lists (before, after) pairs starting from the LAST dim, exactly like F.pad:
/// `{left, right}` pads dim -1, `{left, right, top, bottom}` pads dims -1 and -2, and so on.
/// Example: `auto y = gkd::pad(x, {1, 1, 2, 2}, gkd::PadMode::Reflect);   // [N, C, H, W] -> [N, C, H + 4, W + 2]`
#include <string_view>
#include <type_traits>
#include <vector>

#include "gkd/ops/elementwise.hpp"
#if GKD_DETAIL_CUDA_LINKED
#include "gkd/cuda/pad.hpp"
#endif

namespace gkd {

/// How `pad` fills the new border.
enum class PadMode {
  Zero,       ///< a constant (0 unless `value` is given); negative pads crop, as in F.pad "constant"
  Reflect,    ///< mirror without repeating the edge (F.pad "reflect"); needs 0 <= pad < size
  Replicate,  ///< repeat the edge element (F.pad "replicate"); needs size > 0 where padded
};

namespace detail {

inline std::string_view pad_mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::Zero: return "zero";
    case PadMode::Reflect: return "reflect";
    case PadMode::Replicate: return "replicate";
  }
  return "?";
}

/// Index of the input element read by output index `o` of a dim of size `n` padded by `before`,
/// or -1 for the constant fill.
inline std::int64_t pad_source(std::int64_t o, std::int64_t n, std::int64_t before, PadMode mode) {
  std::int64_t i = o - before;
  switch (mode) {
    case PadMode::Zero: return i >= 0 && i < n ? i : -1;
    case PadMode::Reflect:
      if (i < 0) i = -i;
      if (i >= n) i = 2 * (n - 1) - i;
      return i;
    case PadMode::Replicate: return i < 0 ? 0 : (i >= n ? n - 1 : i);
  }
  return -1;
}

/// The index plumbing shared by pad's forward and backward: the input and output are contiguous;
/// dims before `lead` are unpadded and form `outer` independent blocks; inside a block, each output
/// row (last dim) reads one input row (or none) through per-dim source tables.
struct PadPlan {
  Shape in, out;
  std::size_t lead = 0;
  std::int64_t outer = 1, in_block = 1, out_block = 1, rows = 1, width = 1;
  std::vector<std::vector<std::int64_t>> source;  // per dim >= lead: output index -> input index or -1
  Strides in_strides;

  /// Calls row(block, out_row_index, in_row_offset or -1) for every output row, blocks in parallel.
  template <class F>
  void for_each_row(F&& row) const {
    const std::size_t nd = out.size();
#pragma omp parallel for if (outer > 1 && outer * out_block > kParallelGrain)
    for (std::int64_t b = 0; b < outer; ++b) {
      for (std::int64_t r = 0; r < rows; ++r) {
        std::int64_t rest = r, offset = 0;
        bool inside = true;
        for (std::size_t k = nd ? nd - 1 : 0; k-- > lead;) {
          const std::int64_t idx = rest % out[k];
          rest /= out[k];
          const std::int64_t src = source[k - lead][static_cast<std::size_t>(idx)];
          inside = inside && src >= 0;
          offset += src * in_strides[k];
        }
        row(b, r, inside ? offset : -1);
      }
    }
  }
};

}  // namespace detail

namespace detail {

/// Checks `pads`, `mode` and `value` against the input shape (F.pad's rules) and returns the output
/// shape; shared by the CPU op and its CUDA implementation.
template <Real T>
Shape pad_output_shape(const Shape& in, const std::vector<std::int64_t>& pads, PadMode mode, T value) {
  const std::size_t nd = in.size();
  Shape out = in;
  const std::size_t padded = pads.size() / 2;
  GKD_CHECK(pads.size() % 2 == 0 && padded <= nd, "pad",
            "needs (before, after) pairs for at most " << nd << " dims of shape " << to_string(in) << ", got "
                                                       << pads.size() << " values");
  GKD_CHECK(mode == PadMode::Zero || value == T(0), "pad",
            "mode " << pad_mode_name(mode) << " takes no fill value (got " << value << ")");
  for (std::size_t p = 0; p < padded; ++p) {
    const std::size_t k = nd - 1 - p;
    const std::int64_t before = pads[2 * p], after = pads[2 * p + 1], n = in[k];
    if (mode != PadMode::Zero) {
      GKD_CHECK(before >= 0 && after >= 0, "pad",
                "mode " << pad_mode_name(mode) << " needs non-negative pads, got (" << before << ", " << after
                        << ") for dim " << k << " of shape " << to_string(in));
      GKD_CHECK(n > 0 || before + after == 0, "pad",
                "mode " << pad_mode_name(mode) << " cannot pad empty dim " << k << " of shape " << to_string(in));
    }
    if (mode == PadMode::Reflect)
      GKD_CHECK(before < n && after < n, "pad",
                "reflect pads (" << before << ", " << after << ") must be smaller than dim " << k << " of shape "
                                 << to_string(in));
    out[k] = n + before + after;
    GKD_CHECK(out[k] >= 0, "pad",
              "pads (" << before << ", " << after << ") crop dim " << k << " of shape " << to_string(in)
                       << " to a negative size");
  }
  return out;
}

}  // namespace detail

/// Pads the trailing dims of `x` (F.pad). `pads` holds (before, after) pairs, last dim first, at most
/// two per dim. `value` fills the border in `PadMode::Zero` and must stay 0 otherwise.
/// @throws gkd::Error when pads has odd length or too many pairs, a reflect pad is >= the dim size,
///         a non-constant pad is negative or pads an empty dim, or a crop leaves a negative size
template <Real T>
Tensor<T> pad(const Tensor<T>& x, const std::vector<std::int64_t>& pads, PadMode mode = PadMode::Zero,
              std::type_identity_t<T> value = T(0)) {
  GKD_CHECK(x.defined(), "pad", "input is an undefined tensor");
  GKD_CUDA_DISPATCH(x.device(), "pad", pad(x, pads, mode, T(value)));
  detail::check_cpu(x, "pad");
  const std::size_t nd = x.dim();
  detail::PadPlan plan;
  plan.in = x.shape();
  plan.out = detail::pad_output_shape<T>(x.shape(), pads, mode, value);
  const std::size_t padded = pads.size() / 2;
  plan.lead = nd - padded;
  // Unpadded dims at the front form independent blocks (run in parallel); the last dim is always
  // the row of the inner loop.
  auto unpadded = [&](std::size_t k) {
    const std::size_t p = nd - 1 - k;
    return p >= padded || (pads[2 * p] == 0 && pads[2 * p + 1] == 0);
  };
  while (plan.lead + 1 < nd && unpadded(plan.lead)) ++plan.lead;
  if (nd > 0 && plan.lead >= nd) plan.lead = nd - 1;
  for (std::size_t k = 0; k < plan.lead; ++k) plan.outer *= plan.in[k];
  for (std::size_t k = plan.lead; k < nd; ++k) {
    plan.in_block *= plan.in[k];
    plan.out_block *= plan.out[k];
    const std::size_t p = nd - 1 - k;
    const std::int64_t before = p < padded ? pads[2 * p] : 0;
    std::vector<std::int64_t> table(static_cast<std::size_t>(plan.out[k]));
    for (std::int64_t o = 0; o < plan.out[k]; ++o)
      table[static_cast<std::size_t>(o)] = detail::pad_source(o, plan.in[k], before, mode);
    plan.source.push_back(std::move(table));
  }
  plan.width = nd ? plan.out[nd - 1] : 1;
  plan.rows = plan.width ? plan.out_block / plan.width : 0;
  plan.in_strides = contiguous_strides(plan.in);
  const std::vector<std::int64_t> no_table{0};
  const std::vector<std::int64_t>& last = nd ? plan.source.back() : no_table;

  const Tensor<T> xc = x.contiguous_copy_if_needed();
  Tensor<T> y = Tensor<T>::empty(plan.out);
  {
    const T* src = xc.data();
    T* dst = y.data();
    plan.for_each_row([&](std::int64_t b, std::int64_t r, std::int64_t in_off) {
      T* out_row = dst + b * plan.out_block + r * plan.width;
      if (in_off < 0) {
        std::fill_n(out_row, plan.width, T(value));
        return;
      }
      const T* in_row = src + b * plan.in_block + in_off;
      for (std::int64_t j = 0; j < plan.width; ++j) {
        const std::int64_t s = last[static_cast<std::size_t>(j)];
        out_row[j] = s < 0 ? T(value) : in_row[s];
      }
    });
  }
  return record("pad", y, {x}, [plan = std::move(plan)](const Tensor<T>& g) {
    const Tensor<T> gc = g.contiguous_copy_if_needed();
    Tensor<T> dx = Tensor<T>::zeros(plan.in);
    const T* src = gc.data();
    T* dst = dx.data();
    const std::vector<std::int64_t> no_table{0};
    const std::vector<std::int64_t>& last = plan.out.empty() ? no_table : plan.source.back();
    plan.for_each_row([&](std::int64_t b, std::int64_t r, std::int64_t in_off) {
      if (in_off < 0) return;
      const T* g_row = src + b * plan.out_block + r * plan.width;
      T* dx_row = dst + b * plan.in_block + in_off;
      for (std::int64_t j = 0; j < plan.width; ++j) {
        const std::int64_t s = last[static_cast<std::size_t>(j)];
        if (s >= 0) dx_row[s] += g_row[j];
      }
    });
    return std::vector<Tensor<T>>{dx};
  });
}

}  // namespace gkd

GKD_REGISTER_OPS(pad, "pad")
