// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include "gkd/cuda/runtime.hpp"

TEST_CASE("a GPU that is present is described", "[cuda]") {
  REQUIRE(gkd::cuda::device_count() > 0);
  REQUIRE(gkd::cuda::unavailable_reason().empty());
  REQUIRE_FALSE(gkd::cuda::describe_device(0).empty());
}
