// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// MSAN pieces (method.md §3.3, §4):
/// - `VectorBottleneck`: the official `Mlp` header, shared across channels along the flattened spatial
///   axis: down Linear(S, 64) -> GELU -> Linear(64, 1) gives one scalar per channel (the latent
///   vector z [B, C, 1]); up Linear(1, 64) -> GELU -> Linear(64, S). 33,281 parameters for S = 256.
/// - `TeacherAlignment` (TAN): z_T from the teacher bottleneck c4 [B, 512, 16, 16]; its header maps a
///   latent vector back to c4's shape, then BatchNorm(512) (as TLatentNet).
/// - `StudentAlignment` (SAN, method.md §4.3 [INFER]): 1x1 conv 1280 -> 512 (+BN+ReLU) on x5, the
///   vector bottleneck over the 4x4 positions; the header expands back with 1x1 conv 512 -> 1280 (+BN).
/// - `psae_regularise`: the official Mlp forward through a frozen P-SAE (re_middle, middle, re_output).
/// @code
///   gkd::Generator gen(0);
///   gkd::models::TeacherAlignment<float> tan({.channels = 512, .height = 16, .width = 16}, gen);
///   auto z = tan.encode(c4);              // [B, 512, 1]
///   auto back = tan.header(z);            // [B, 512, 16, 16]
/// @endcode
#include "gkd/models/latent_net.hpp"

namespace gkd::models {

struct VectorBottleneckSpec {
  std::int64_t spatial = 256;
  std::int64_t hidden = 64;
};

template <Real T>
struct VectorBottleneck {
  using value_type = T;
  nn::Linear<T> downfc1, downfc2, upfc1, upfc2;
  VectorBottleneck(const VectorBottleneckSpec& s, Generator& gen)
      : downfc1({.in = s.spatial, .out = s.hidden}, gen), downfc2({.in = s.hidden, .out = 1}, gen),
        upfc1({.in = 1, .out = s.hidden}, gen), upfc2({.in = s.hidden, .out = s.spatial}, gen) {}
  /// [B, C, S] -> latent [B, C, 1].
  Tensor<T> encode(const Tensor<T>& x) const { return downfc2.forward(gelu(downfc1.forward(x))); }
  /// latent [B, C, 1] -> [B, C, S].
  Tensor<T> decode(const Tensor<T>& z) const { return upfc2.forward(gelu(upfc1.forward(z))); }
  Tensor<T> forward(const Tensor<T>& x) const { return decode(encode(x)); }
  template <class V>
  void visit(V& v) {
    v.child("downfc1", downfc1);
    v.child("downfc2", downfc2);
    v.child("upfc1", upfc1);
    v.child("upfc2", upfc2);
  }
};

struct AlignmentSpec {
  std::int64_t channels = 512;  ///< feature channels of the model (teacher c4: 512; student x5: 1280)
  std::int64_t height = 16, width = 16;  ///< spatial size of that feature
  std::int64_t latent = 512;    ///< latent vector length (student side; the teacher's is `channels`)
  std::int64_t hidden = 64;
};

template <Real T>
struct TeacherAlignment {
  using value_type = T;
  AlignmentSpec spec;
  VectorBottleneck<T> MLPheader;
  nn::BatchNorm2d<T> norm;
  TeacherAlignment(const AlignmentSpec& s, Generator& gen)
      : spec(s), MLPheader({.spatial = s.height * s.width, .hidden = s.hidden}, gen), norm({.channels = s.channels}) {}
  Tensor<T> encode(const Tensor<T>& c4) const {
    GKD_CHECK(c4.dim() == 4 && c4.shape()[1] == spec.channels && c4.shape()[2] == spec.height &&
                  c4.shape()[3] == spec.width,
              "TeacherAlignment", "expected [B, " << spec.channels << ", " << spec.height << ", " << spec.width
                                                  << "], got " << to_string(c4.shape()));
    return MLPheader.encode(c4.flatten(2));
  }
  Tensor<T> header(const Tensor<T>& z) {
    return norm.forward(MLPheader.decode(z).reshape({z.shape()[0], spec.channels, spec.height, spec.width}));
  }
  template <class V>
  void visit(V& v) {
    v.child("MLPheader", MLPheader);
    v.child("norm", norm);
  }
};

template <Real T>
struct StudentAlignment {
  using value_type = T;
  AlignmentSpec spec;
  ConvBnRelu<T> proj;
  VectorBottleneck<T> MLPheader;
  ConvBn<T> expand;
  StudentAlignment(const AlignmentSpec& s, Generator& gen)
      : spec(s), proj(conv_bn_act<T>({.in = s.channels, .out = s.latent, .kernel = 1}, gen)),
        MLPheader({.spatial = s.height * s.width, .hidden = s.hidden}, gen),
        expand(conv_bn<T>({.in = s.latent, .out = s.channels, .kernel = 1}, gen)) {}
  Tensor<T> encode(const Tensor<T>& x5) { return MLPheader.encode(proj.forward(x5).flatten(2)); }
  Tensor<T> header(const Tensor<T>& z) {
    return expand.forward(MLPheader.decode(z).reshape({z.shape()[0], spec.latent, spec.height, spec.width}));
  }
  template <class V>
  void visit(V& v) {
    v.child("proj", proj);
    v.child("MLPheader", MLPheader);
    v.child("expand", expand);
  }
};

/// The official `Mlp.forward`: middle = P-SAE encoder(x); re_middle = bottleneck(middle) reshaped to
/// middle's shape; re_output = the P-SAE decoder on re_middle. The P-SAE should be frozen and in eval mode.
template <Real T>
struct PsaeReconstruction {
  Tensor<T> re_middle, middle, re_output;
};
template <Real T>
PsaeReconstruction<T> psae_regularise(LatentNet<T>& psae, const VectorBottleneck<T>& bottleneck, const Tensor<T>& x) {
  PsaeReconstruction<T> r;
  r.middle = psae.encode(x);
  r.re_middle = bottleneck.forward(r.middle.flatten(2)).reshape(r.middle.shape());
  r.re_output = psae.decode(r.re_middle);
  return r;
}

}  // namespace gkd::models
