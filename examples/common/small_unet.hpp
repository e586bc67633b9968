// SPDX-License-Identifier: Apache-2.0
#pragma once
// The small U-Net of the README demo and of benchmarks/unet_step, written directly against gkd's
// ops (the compile-time module system comes with the networks). Topology, identical to
// benchmarks/unet_pytorch.py: per level two (3x3 conv + batch norm + ReLU), 2x2 max-pool down,
// 2x2 stride-2 transposed conv up, skip concat, 1x1 head. Initialisation as PyTorch's defaults.
#include <cmath>
#include <vector>

#include <gkd/gkd.hpp>
#include <gkd/nn/init.hpp>
#include <gkd/optim/adam.hpp>

namespace gkd::examples {

template <Real T>
struct ConvLayer {
  Tensor<T> weight, bias;
  ConvLayer(std::int64_t cin, std::int64_t cout, std::int64_t k, Generator& gen, bool transposed = false) {
    weight = transposed ? Tensor<T>::empty({cin, cout, k, k}) : Tensor<T>::empty({cout, cin, k, k});
    nn::init::kaiming_uniform_(weight, gen, std::sqrt(5.0));  // torch.nn.Conv2d.reset_parameters
    const double fan_in = static_cast<double>((transposed ? cout : cin) * k * k);
    bias = Tensor<T>::empty({cout});
    nn::init::uniform_(bias, gen, -1 / std::sqrt(fan_in), 1 / std::sqrt(fan_in));
    weight.requires_grad();
    bias.requires_grad();
  }
};

template <Real T>
struct BatchNormLayer {
  Tensor<T> weight, bias, running_mean, running_var;
  explicit BatchNormLayer(std::int64_t c)
      : weight(Tensor<T>::ones({c}).requires_grad()),
        bias(Tensor<T>::zeros({c}).requires_grad()),
        running_mean(Tensor<T>::zeros({c})),
        running_var(Tensor<T>::ones({c})) {}
  Tensor<T> operator()(const Tensor<T>& x, bool training) const {
    return batch_norm2d(x, weight, bias, running_mean, running_var, training);
  }
};

/// Two (3x3 conv + BN + ReLU).
template <Real T>
struct DoubleConv {
  ConvLayer<T> conv1, conv2;
  BatchNormLayer<T> bn1, bn2;
  DoubleConv(std::int64_t cin, std::int64_t cout, Generator& gen)
      : conv1(cin, cout, 3, gen), conv2(cout, cout, 3, gen), bn1(cout), bn2(cout) {}
  Tensor<T> operator()(const Tensor<T>& x, bool training) const {
    auto h = relu(bn1(conv2d(x, conv1.weight, conv1.bias, 1, 1), training));
    return relu(bn2(conv2d(h, conv2.weight, conv2.bias, 1, 1), training));
  }
  void collect(std::vector<Tensor<T>>& out) const {
    for (const auto* t : {&conv1.weight, &conv1.bias, &bn1.weight, &bn1.bias, &conv2.weight, &conv2.bias, &bn2.weight,
                          &bn2.bias})
      out.push_back(*t);
  }
};

template <Real T>
class SmallUNet {
 public:
  /// @param widths channels per level, e.g. {16, 32, 64, 128}
  SmallUNet(std::vector<std::int64_t> widths, std::int64_t in_channels, std::int64_t classes, Generator& gen) {
    std::int64_t cin = in_channels;
    for (auto w : widths) {
      down_.emplace_back(cin, w, gen);
      cin = w;
    }
    for (auto it = widths.rbegin() + 1; it != widths.rend(); ++it) {
      up_.emplace_back(cin, *it, 2, gen, /*transposed=*/true);
      decode_.emplace_back(2 * *it, *it, gen);
      cin = *it;
    }
    head_ = std::make_unique<ConvLayer<T>>(cin, classes, 1, gen);
  }

  /// Logits [N, classes, H, W] for x [N, in_channels, H, W]; H and W divisible by 2^(levels-1).
  Tensor<T> operator()(const Tensor<T>& x, bool training) const {
    std::vector<Tensor<T>> skips;
    Tensor<T> h = x;
    for (std::size_t i = 0; i < down_.size(); ++i) {
      h = down_[i](h, training);
      if (i + 1 < down_.size()) {
        skips.push_back(h);
        h = max_pool2d(h, 2);
      }
    }
    for (std::size_t i = 0; i < up_.size(); ++i) {
      Tensor<T> u = conv_transpose2d(h, up_[i].weight, up_[i].bias, 2);
      h = decode_[i](concat({skips.back(), u}, 1), training);
      skips.pop_back();
    }
    return conv2d(h, head_->weight, head_->bias);
  }

  std::vector<Tensor<T>> parameters() const {
    std::vector<Tensor<T>> out;
    for (const auto& b : down_) b.collect(out);
    for (std::size_t i = 0; i < up_.size(); ++i) {
      out.push_back(up_[i].weight);
      out.push_back(up_[i].bias);
      decode_[i].collect(out);
    }
    out.push_back(head_->weight);
    out.push_back(head_->bias);
    return out;
  }

 private:
  std::vector<DoubleConv<T>> down_, decode_;
  std::vector<ConvLayer<T>> up_;
  std::unique_ptr<ConvLayer<T>> head_;
};

}  // namespace gkd::examples
