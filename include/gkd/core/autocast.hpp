// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Mixed precision by scope, as `torch.autocast`. Inside a `gkd::Autocast` scope, the float32
/// convolutions and matrix products (conv2d, conv_transpose2d, matmul, linear) run in 16 bits:
/// - they read their inputs rounded to bfloat16 (or IEEE half);
/// - they accumulate in float32;
/// - they add the (rounded) bias in float32 and round the result to 16 bits;
/// - their gradients are rounded the same way.
///
/// Parameters, optimizer state and every other op stay float32: these are the "fp32 master weights".
/// float64 ops ignore the scope. The scope is per thread, and nested scopes restore the outer precision.
///
/// The CPU computes these roundings in float32 and is the oracle. The GPU gets the same results (up to
/// summation order) on tensor cores: matmul, linear and conv2d without a bias multiply 16-bit operands
/// with float32 accumulation, and their backward keeps 16-bit copies of its operands. conv2d with a
/// bias and conv_transpose2d compute in float32 on the rounded values instead: cuDNN's 16-bit
/// convolutions round their output before a bias could be added, which would round twice. With half
/// precision, scale the loss (gkd::GradScaler): half's range ends at 65504, and small gradients flush
/// to zero.
/// @code
///   {
///     gkd::Autocast bf16(gkd::Precision::bf16);
///     loss = gkd::cross_entropy(net.forward(x).logits, target);   // convs in bf16, the loss in f32
///   }
///   loss.backward();                                                // gradients rounded as in the forward
/// @endcode
#include <bit>
#include <cmath>
#include <cstdint>

namespace gkd {

/// The precision of the autocast ops: float32 (no autocast), bfloat16 or IEEE half.
enum class Precision { f32, bf16, f16 };

inline const char* to_string(Precision p) { return p == Precision::bf16 ? "bf16" : p == Precision::f16 ? "f16" : "f32"; }

namespace detail {
/// The thread's autocast precision (`user`), and the precision in which an autocast op's inner call is
/// computing (`compute`: set by the op while it calls its float32 implementation on rounded inputs, so
/// that GPU implementations can run in 16 bits; the user scope is off during that call).
struct AutocastState {
  Precision user = Precision::f32;
  Precision compute = Precision::f32;
};
inline AutocastState& autocast_state() {
  thread_local AutocastState state;
  return state;
}
}  // namespace detail

/// The precision that autocast ops use on this thread now (Precision::f32 outside any scope).
inline Precision autocast_precision() { return detail::autocast_state().user; }

/// Sets this thread's autocast precision for its lifetime, then restores the previous one.
class Autocast {
 public:
  explicit Autocast(Precision p = Precision::bf16) : previous_(detail::autocast_state().user) {
    detail::autocast_state().user = p;
  }
  ~Autocast() { detail::autocast_state().user = previous_; }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  Precision previous_;
};

/// `v` rounded to the nearest bfloat16 (ties to even), as a float. NaN stays NaN; overflow gives inf.
inline float round_to_bf16(float v) {
  if (std::isnan(v)) return v;
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
  return std::bit_cast<float>((bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u);
}

/// `v` rounded to the nearest IEEE half (ties to even, subnormals kept), as a float. NaN stays NaN;
/// magnitudes from 65520 on give inf.
inline float round_to_f16(float v) {
  if (std::isnan(v) || std::isinf(v)) return v;
  const float kMinNormal = 0x1p-14f;
  if (std::abs(v) < kMinNormal) return std::nearbyint(v * 0x1p24f) * 0x1p-24f;  // multiples of 2^-24
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
  const float r = std::bit_cast<float>((bits + 0xFFFu + ((bits >> 13) & 1u)) & 0xFFFFE000u);
  return std::abs(r) > 65504.f ? std::copysign(INFINITY, v) : r;
}

/// `v` rounded to precision `p` (unchanged for Precision::f32).
inline float round_to(Precision p, float v) {
  return p == Precision::bf16 ? round_to_bf16(v) : p == Precision::f16 ? round_to_f16(v) : v;
}

}  // namespace gkd
