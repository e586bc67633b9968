// SPDX-License-Identifier: Apache-2.0
#pragma once
// Catch2 prints gkd::report::Rgb values as rgb(r, g, b) in failure messages.
#include <catch2/catch.hpp>
#include <string>

#include "gkd/report/canvas.hpp"

namespace Catch {
template <>
struct StringMaker<gkd::report::Rgb> {
  static std::string convert(gkd::report::Rgb c) {
    return "rgb(" + std::to_string(c.r) + ", " + std::to_string(c.g) + ", " + std::to_string(c.b) + ")";
  }
};
}  // namespace Catch
