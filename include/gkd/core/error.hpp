// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// The single error type of gkd and the check macro that raises it.
///
/// Every precondition violated by user input (shapes, dtypes, dims, files, fields) raises
/// `gkd::Error` whose message names the operation and the offending values, e.g.
/// `gkd::Error: add: shapes [2, 3] and [4] cannot be broadcast (at include/gkd/ops/elementwise.hpp:42)`.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gkd {

/// Raised for every misuse gkd detects: bad shapes, bad dims, freed graphs, malformed files.
class Error : public std::runtime_error {
 public:
  /// @param op   the operation or component that failed ("conv2d", "backward", "safetensors")
  /// @param what a sentence saying what is wrong, with the shapes or values involved
  Error(std::string_view op, const std::string& what)
      : std::runtime_error(std::string(op) + ": " + what), op_(op) {}
  /// The operation that raised the error.
  [[nodiscard]] const std::string& op() const noexcept { return op_; }

 private:
  std::string op_;
};

namespace detail {
[[noreturn]] inline void raise(std::string_view op, const std::string& message, const char* file,
                               int line) {
  std::ostringstream where;
  where << message << " (at " << file << ':' << line << ')';
  throw Error(op, where.str());
}
}  // namespace detail

}  // namespace gkd

/// Checks `cond`; otherwise throws gkd::Error for operation `op` with a message built by streaming.
/// Example: `GKD_CHECK(x.dim() == 4, "conv2d", "input must be 4-D (N, C, H, W), got " << x.shape());`
#define GKD_CHECK(cond, op, message)                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::ostringstream gkd_check_stream_;                               \
      gkd_check_stream_ << message;                                       \
      ::gkd::detail::raise((op), gkd_check_stream_.str(), __FILE__, __LINE__); \
    }                                                                     \
  } while (false)

/// Unconditionally throws gkd::Error for operation `op`.
#define GKD_FAIL(op, message) GKD_CHECK(false, op, message)
