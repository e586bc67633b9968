// SPDX-License-Identifier: Apache-2.0
// Catch2's main for the GPU tests: without a usable GPU the executable prints why and exits with 77,
// which CTest reports as "skipped" (SKIP_RETURN_CODE), never as passed. Listing the tests (what
// catch_discover_tests does at build time) works everywhere.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <iostream>
#include <string_view>

#include "gkd/cuda/runtime.hpp"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::string_view(argv[i]).starts_with("--list");
  if (!listing && !gkd::cuda::available()) {
    std::cout << "SKIPPED: " << gkd::cuda::unavailable_reason() << "\n";
    return 77;
  }
  if (!listing) std::cout << "GPU: " << gkd::cuda::describe_device(0) << "\n";
  return Catch::Session().run(argc, argv);
}
