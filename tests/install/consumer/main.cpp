// SPDX-License-Identifier: Apache-2.0
// A user's program built against an installed gkd.
#include <gkd/gkd.hpp>
#include <iostream>

int main() {
  auto w = gkd::Tensor<double>::full({3}, 2.0).requires_grad();
  auto loss = gkd::sum(w * w);
  loss.backward();
  const bool ok = loss.item() == 12.0 && w.grad().to_vector() == std::vector<double>{4, 4, 4};
  std::cout << (ok ? "consumer ok" : "consumer WRONG") << '\n';
  return ok ? 0 : 1;
}
