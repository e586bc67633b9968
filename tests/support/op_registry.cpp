// SPDX-License-Identifier: Apache-2.0
// Prints every registered differentiable op, one per line (used by the gradcheck coverage test).
#include <iostream>

#include "gkd/gkd.hpp"

int main() {
  for (const auto& name : gkd::OpRegistry::instance().names()) std::cout << name << '\n';
}
