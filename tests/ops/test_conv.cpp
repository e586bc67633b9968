// SPDX-License-Identifier: Apache-2.0
#include "gkd/ops/conv.hpp"

#include "support/check.hpp"
#include "support/golden.hpp"

#if defined(GKD_TEST_REQUIRES_AVX2_SGEMM) && (!defined(GKD_SGEMM) || defined(__AVX512F__))
#error "The AVX2 build of this test must compile gkd's AVX2 GEMM kernel (gkd/ops/gemm.hpp)."
#endif

using namespace gkd;
using gkd::test::random;
using gkd::test::require_gradcheck;
using In = std::vector<Tensor<double>>;

namespace {

/// Shrinks the im2col band so that every image is packed one output row at a time.
struct TinyBands {
  detail::ConvTuning saved = detail::conv_tuning();
  TinyBands() { detail::conv_tuning() = {.band_bytes = 1, .min_band_cols = 1}; }
  ~TinyBands() { detail::conv_tuning() = saved; }
  TinyBands(const TinyBands&) = delete;
  TinyBands& operator=(const TinyBands&) = delete;
};

/// Reference conv2d by direct summation (double), for cross-checks beyond the golden shapes.
Tensor<double> naive_conv2d(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b, Size2 s,
                            Size2 p, Size2 d, std::int64_t groups) {
  const auto N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const auto O = w.size(0), kh = w.size(2), kw = w.size(3), cg = C / groups, og = O / groups;
  const auto OH = (H + 2 * p.h - d.h * (kh - 1) - 1) / s.h + 1, OW = (W + 2 * p.w - d.w * (kw - 1) - 1) / s.w + 1;
  auto y = Tensor<double>::zeros({N, O, OH, OW});
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o)
      for (std::int64_t i = 0; i < OH; ++i)
        for (std::int64_t j = 0; j < OW; ++j) {
          double acc = b.defined() ? b.at({o}) : 0.0;
          for (std::int64_t c = 0; c < cg; ++c)
            for (std::int64_t ki = 0; ki < kh; ++ki)
              for (std::int64_t kj = 0; kj < kw; ++kj) {
                const auto ih = i * s.h - p.h + ki * d.h, iw = j * s.w - p.w + kj * d.w;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                  acc += x.at({n, (o / og) * cg + c, ih, iw}) * w.at({o, c, ki, kj});
              }
          y.at({n, o, i, j}) = acc;
        }
  return y;
}

}  // namespace

TEST_CASE("conv2d gradcheck", "[gradcheck][conv]") {
  const auto x = random({2, 4, 5, 6}, 1), b4 = random({4}, 3), b6 = random({6}, 4);
  SECTION("3x3 padding 1 with bias") {
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], v[2], 1, 1); }, {x, random({4, 4, 3, 3}, 2), b4});
  }
  SECTION("stride, asymmetric padding, dilation, no bias") {
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], {}, {2, 1}, {1, 2}, {2, 1}); },
                      {x, random({3, 4, 2, 3}, 5)});
  }
  SECTION("groups") {
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], v[2], Conv2dOptions{.padding = 1, .groups = 2}); },
                      {x, random({6, 2, 3, 3}, 6), b6});
  }
  SECTION("depthwise with multiplier, strided and dilated") {
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], v[2], 2, 1, 1, 4); }, {x, random({8, 1, 3, 3}, 7), random({8}, 8)});
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], {}, 1, {2, 0}, {2, 2}, 4); }, {x, random({4, 1, 2, 3}, 9)});
  }
  SECTION("pointwise and strided 1x1") {
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], v[2]); }, {x, random({6, 4, 1, 1}, 10), b6});
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], {}, 2, 0, 1, 2); }, {x, random({4, 2, 1, 1}, 11)});
  }
  SECTION("one image, one row per band") {
    TinyBands tiny;
    require_gradcheck([](const In& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                      {random({1, 3, 5, 4}, 12), random({4, 3, 3, 3}, 13), b4});
  }
}

TEST_CASE("conv_transpose2d gradcheck", "[gradcheck][conv]") {
  const auto x = random({2, 4, 3, 4}, 20);
  SECTION("stride 2, padding 1, output_padding 1, bias") {
    require_gradcheck([](const In& v) { return conv_transpose2d(v[0], v[1], v[2], 2, 1, 1); },
                      {x, random({4, 3, 3, 3}, 21), random({3}, 22)});
  }
  SECTION("groups, dilation, asymmetric, no bias") {
    require_gradcheck(
        [](const In& v) {
          return conv_transpose2d(v[0], v[1], {},
                                  ConvTranspose2dOptions{.stride = {2, 1}, .padding = {1, 0}, .output_padding = {1, 0},
                                                         .groups = 2, .dilation = {1, 2}});
        },
        {x, random({4, 2, 3, 2}, 23)});
  }
  SECTION("depthwise and pointwise") {
    require_gradcheck([](const In& v) { return conv_transpose2d(v[0], v[1], v[2], 2, 1, 0, 2); },
                      {x, random({4, 1, 3, 3}, 24), random({2}, 25)});
    require_gradcheck([](const In& v) { return conv_transpose2d(v[0], v[1], v[2]); },
                      {x, random({4, 3, 1, 1}, 26), random({3}, 27)});
  }
  SECTION("output_padding below dilation, one row per band") {
    TinyBands tiny;
    require_gradcheck([](const In& v) { return conv_transpose2d(v[0], v[1], v[2], 1, 0, 1, 1, 2); },
                      {x, random({4, 2, 2, 3}, 28), random({2}, 29)});
  }
}

TEMPLATE_TEST_CASE("conv ops match PyTorch", "[golden][conv]", float, double) {
  using T = TestType;
  using V = std::vector<Tensor<T>>;
  const gkd::test::Golden g("conv");
  auto bias = [](const V& v) { return v.size() > 2 ? v[2] : Tensor<T>(); };
  auto run_all = [&] {
    gkd::test::check_golden_case<T>(g, "conv_basic", [&](const V& v) { return conv2d(v[0], v[1], bias(v), 1, 1); });
    gkd::test::check_golden_case<T>(g, "conv_strided",
                                    [&](const V& v) { return conv2d(v[0], v[1], bias(v), 2, {1, 2}, {2, 1}); });
    gkd::test::check_golden_case<T>(g, "conv_groups",
                                    [&](const V& v) { return conv2d(v[0], v[1], bias(v), {1, 2}, 1, 1, 2); });
    gkd::test::check_golden_case<T>(g, "conv_depthwise",
                                    [&](const V& v) { return conv2d(v[0], v[1], bias(v), 2, 1, 1, 2); });
    gkd::test::check_golden_case<T>(g, "conv_depthwise_dilated",
                                    [&](const V& v) { return conv2d(v[0], v[1], bias(v), 1, {2, 1}, {2, 3}, 3); });
    gkd::test::check_golden_case<T>(g, "conv_pointwise", [&](const V& v) { return conv2d(v[0], v[1], bias(v)); });
    gkd::test::check_golden_case<T>(g, "conv_pointwise_groups",
                                    [&](const V& v) { return conv2d(v[0], v[1], bias(v), 1, 0, 1, 2); });
    gkd::test::check_golden_case<T>(g, "conv_1x1_strided", [&](const V& v) { return conv2d(v[0], v[1], bias(v), 2); });
    gkd::test::check_golden_case<T>(g, "convt_basic",
                                    [&](const V& v) { return conv_transpose2d(v[0], v[1], bias(v), 2, 1, 1); });
    gkd::test::check_golden_case<T>(g, "convt_groups_dilated", [&](const V& v) {
      return conv_transpose2d(v[0], v[1], bias(v), {2, 1}, {1, 0}, {1, 0}, 2, {2, 1});
    });
    gkd::test::check_golden_case<T>(g, "convt_depthwise",
                                    [&](const V& v) { return conv_transpose2d(v[0], v[1], bias(v), 2, 1, 0, 3); });
    gkd::test::check_golden_case<T>(g, "convt_pointwise",
                                    [&](const V& v) { return conv_transpose2d(v[0], v[1], bias(v)); });
    gkd::test::check_golden_case<T>(g, "convt_outpad_dilation",
                                    [&](const V& v) { return conv_transpose2d(v[0], v[1], bias(v), 1, 0, 1, 1, 2); });
    gkd::test::check_golden_case<T>(g, "convt_up2", [&](const V& v) { return conv_transpose2d(v[0], v[1], bias(v), 2); });
  };
  SECTION("default bands") { run_all(); }
  SECTION("one output row per band") {
    TinyBands tiny;
    run_all();
  }
}

TEST_CASE("conv2d agrees with direct summation on larger shapes and views", "[conv]") {
  // Large enough for several bands and a parallel batch; the input is a non-contiguous view.
  const auto big = random({3, 6, 20, 18}, 40);
  const auto x = big.permute({0, 1, 3, 2});
  const auto w = random({8, 3, 3, 3}, 41), b = random({8}, 42);
  TinyBands tiny;
  test::require_close(conv2d(x, w, b, {2, 1}, 1, {1, 2}, 2), naive_conv2d(x, w, b, {2, 1}, 1, {1, 2}, 2), 1e-12);
  const auto wd = random({12, 1, 3, 3}, 43);
  test::require_close(conv2d(x, wd, Tensor<double>(), 1, 2, 2, 6), naive_conv2d(x, wd, {}, 1, 2, 2, 6), 1e-12);
}

TEST_CASE("depthwise conv at column strides 1 to 3 agrees with direct summation", "[gradcheck][conv]") {
  // Strides above 1 run on column-phase planes (PhasePlanes): odd and even widths, padding wider than
  // the stride, dilation, a channel multiplier.
  struct Case {
    Size2 stride, padding, dilation;
    std::int64_t width, mult;
  };
  for (const Case c : {Case{{1, 2}, {1, 1}, {1, 1}, 9, 1}, Case{{2, 2}, {1, 3}, {1, 1}, 10, 2},
                       Case{{1, 3}, {0, 2}, {1, 2}, 11, 1}, Case{{2, 3}, {2, 4}, {2, 1}, 13, 3}}) {
    INFO("stride " << c.stride.h << "x" << c.stride.w << " width " << c.width << " multiplier " << c.mult);
    const auto x = random({2, 3, 7, c.width}, 44);
    const auto w = random({3 * c.mult, 1, 3, 3}, 45), b = random({3 * c.mult}, 46);
    test::require_close(conv2d(x, w, b, c.stride, c.padding, c.dilation, 3),
                        naive_conv2d(x, w, b, c.stride, c.padding, c.dilation, 3), 1e-12);
    require_gradcheck([&](const In& v) { return conv2d(v[0], v[1], v[2], c.stride, c.padding, c.dilation, 3); },
                      {x, w, b});
  }
}

TEST_CASE("conv results and gradients do not depend on the thread count", "[conv]") {
  const int saved = num_threads();
  auto run = [](int threads) {
    set_num_threads(threads);
    auto x = random({6, 8, 20, 18}, 60).requires_grad(), w = random({8, 8, 3, 3}, 61).requires_grad();
    auto wd = random({16, 1, 3, 3}, 62).requires_grad(), wt = random({8, 4, 2, 2}, 63).requires_grad();
    // The output gradients are fixed tensors, so only the conv kernels' own arithmetic is compared.
    auto y1 = mul(conv2d(x, w, {}, 1, 1), conv2d(x, wd, {}, 1, 1, 1, 8).narrow(1, 0, 8));
    y1.backward(random(y1.shape(), 64));
    auto y2 = conv_transpose2d(x, wt, {}, 2);
    y2.backward(random(y2.shape(), 65));
    std::vector<std::vector<double>> out{x.grad().to_vector(), w.grad().to_vector(), wd.grad().to_vector(),
                                         wt.grad().to_vector()};
    // One image: the GEMMs themselves split their columns across threads (gkd's float kernel where
    // compiled in, Eigen for double), in float and double.
    auto x1 = random({1, 32, 40, 40}, 66).requires_grad(), w1 = random({32, 32, 3, 3}, 67).requires_grad();
    auto y3 = conv2d(x1, w1, {}, 1, 1);
    const auto g3 = random(y3.shape(), 68);
    y3.backward(g3);
    auto to_float = [](const Tensor<double>& t) {
      Tensor<float> f = Tensor<float>::empty(t.shape());
      for (std::int64_t i = 0; i < t.numel(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
      return f;
    };
    auto xf = to_float(x1.detach()).requires_grad(), wf = to_float(w1.detach()).requires_grad();
    auto yf = conv2d(xf, wf, {}, 1, 1);
    yf.backward(to_float(g3));
    // Several images with 64 x 64 planes: float weight gradients summed in per-slot partial sums.
    auto x4 = to_float(random({3, 8, 64, 64}, 69)), w4 = to_float(random({16, 8, 3, 3}, 70)).requires_grad();
    auto y4 = conv2d(x4, w4, {}, 1, 1);
    y4.backward(to_float(random(y4.shape(), 71)));
    // One image with 16 x 16 planes: on AVX-512 builds, one implicit GEMM run over the padded width,
    // whose strips the threads share.
    auto x5 = to_float(random({1, 64, 16, 16}, 72)), w5 = to_float(random({96, 64, 3, 3}, 73));
    const auto y5 = conv2d(x5, w5, {}, 1, 1);
    for (const auto& t : {x1.grad(), w1.grad(), y3.detach()}) out.push_back(t.to_vector());
    for (const auto& t : {xf.grad(), wf.grad(), yf.detach(), w4.grad(), y5}) {
      const auto v = t.to_vector();
      out.emplace_back(v.begin(), v.end());
    }
    return out;
  };
  const auto one = run(1), two = run(2), three = run(3);
  set_num_threads(saved);
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("component " << i);
    REQUIRE(one[i] == two[i]);
    REQUIRE(one[i] == three[i]);
  }
}

TEST_CASE("conv GEMM kernels agree with a double reference", "[conv]") {
  // Covers gkd's float kernels where they are compiled in, 6x16 (AVX2) and 8x32 (AVX-512): edges of
  // every blocking level (rows past MR, columns past NR, depth past KC, more rows than MC and columns
  // than NC), transposed operands, accumulation, B read in place for few rows (m <= 32: partial last
  // strip, depth past KC); and the Eigen path everywhere.
  Generator gen(70);
  struct Dims {
    std::int64_t m, n, k;
  };
  for (const Dims d : {Dims{1, 1, 1}, Dims{4, 32, 7}, Dims{6, 16, 256}, Dims{7, 33, 257}, Dims{97, 50, 300},
                       Dims{13, 2100, 20}, Dims{16, 9, 2048}, Dims{64, 576, 40},
                       Dims{70, 13, 600}, Dims{100, 200, 300}, Dims{197, 131, 513}, Dims{200, 2100, 20},
                       Dims{17, 40, 513}, Dims{32, 1000, 300}, Dims{30, 3000, 150}}) {
    INFO("m " << d.m << " n " << d.n << " k " << d.k);
    std::vector<float> a(static_cast<std::size_t>(d.m * d.k)), b(static_cast<std::size_t>(d.k * d.n)),
        c0(static_cast<std::size_t>(d.m * d.n));
    for (auto* v : {&a, &b, &c0})
      for (auto& x : *v) x = static_cast<float>(gen.uniform(-1, 1));
    // op(i, p) of A and op(p, j) of B for the four layouts; reference in double with an error bound.
    for (int layout = 0; layout < 4; ++layout) {
      const bool at = layout & 1, bt = layout & 2;
      const std::int64_t rsa = at ? 1 : d.k, csa = at ? d.m : 1, rsb = bt ? 1 : d.n, csb = bt ? d.k : 1;
      for (bool accumulate : {false, true}) {
        std::vector<float> c = c0;
        detail::strided_gemm(d.m, d.n, d.k, a.data(), rsa, csa, b.data(), rsb, csb, c.data(), d.n, accumulate);
        double worst = 0;
        for (std::int64_t i = 0; i < d.m; ++i)
          for (std::int64_t j = 0; j < d.n; ++j) {
            double ref = accumulate ? c0[static_cast<std::size_t>(i * d.n + j)] : 0.0, mag = std::abs(ref);
            for (std::int64_t p = 0; p < d.k; ++p) {
              const double t = double(a[static_cast<std::size_t>(i * rsa + p * csa)]) *
                               double(b[static_cast<std::size_t>(p * rsb + j * csb)]);
              ref += t;
              mag += std::abs(t);
            }
            worst = std::max(worst, std::abs(c[static_cast<std::size_t>(i * d.n + j)] - ref) / (mag * d.k * 1e-6 + 1e-30));
          }
        INFO("layout " << layout << " accumulate " << accumulate);
        REQUIRE(worst <= 1.0);
      }
    }
    // The weight-gradient GEMM: dW [m x n] += A [m x k] · Bᵀ with B stored [n x k].
    std::vector<float> c = c0;
    detail::weight_gemm(d.m, d.n, d.k, a.data(), d.k, b.data(), d.k, c.data(), d.n);
    double worst = 0;
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < d.n; ++j) {
        double ref = c0[static_cast<std::size_t>(i * d.n + j)], mag = std::abs(ref);
        for (std::int64_t p = 0; p < d.k; ++p) {
          const double t = double(a[static_cast<std::size_t>(i * d.k + p)]) * double(b[static_cast<std::size_t>(j * d.k + p)]);
          ref += t;
          mag += std::abs(t);
        }
        worst = std::max(worst, std::abs(c[static_cast<std::size_t>(i * d.n + j)] - ref) / (mag * d.k * 1e-6 + 1e-30));
      }
    REQUIRE(worst <= 1.0);
  }
}

TEST_CASE("conv float gradients track the double ones on layer-sized shapes", "[conv]") {
  // Large enough for gkd's float kernels (forward, input and weight gradients) where compiled in.
  struct Layer {
    Shape x, w;
    bool transpose;
  };
  for (const Layer& l : {Layer{{2, 16, 24, 20}, {32, 16, 3, 3}, false}, Layer{{2, 8, 12, 10}, {64, 8, 3, 3}, false},
                         Layer{{2, 1, 20, 20}, {16, 1, 3, 3}, false}, Layer{{2, 32, 12, 12}, {32, 16, 2, 2}, true}}) {
    INFO("input " << to_string(l.x) << " weight " << to_string(l.w));
    auto xd = random(l.x, 80), wd = random(l.w, 81, 0.2);
    Tensor<float> xf = Tensor<float>::empty(l.x), wf = Tensor<float>::empty(l.w);
    for (std::int64_t i = 0; i < xd.numel(); ++i) xd.data()[i] = xf.data()[i] = static_cast<float>(xd.data()[i]);
    for (std::int64_t i = 0; i < wd.numel(); ++i) wd.data()[i] = wf.data()[i] = static_cast<float>(wd.data()[i]);
    xd.requires_grad(), wd.requires_grad(), xf.requires_grad(), wf.requires_grad();
    auto yd = l.transpose ? conv_transpose2d(xd, wd, {}, 2) : conv2d(xd, wd, {}, 1, 1);
    auto yf = l.transpose ? conv_transpose2d(xf, wf, {}, 2) : conv2d(xf, wf, {}, 1, 1);
    const auto gd = random(yd.shape(), 82);
    Tensor<float> gf = Tensor<float>::empty(gd.shape());
    for (std::int64_t i = 0; i < gd.numel(); ++i) gf.data()[i] = static_cast<float>(gd.data()[i]);
    yd.backward(gd);
    yf.backward(gf);
    test::require_close(yf, yd, 1e-4, "output");
    test::require_close(xf.grad(), xd.grad(), 1e-4, "input gradient");
    test::require_close(wf.grad(), wd.grad(), 1e-4, "weight gradient");
  }
}

TEST_CASE("stride-1 float convolutions as implicit GEMMs agree with direct summation", "[conv]") {
  // Where gkd's float kernel is compiled in, these run as an implicit GEMM (padded planes read in place
  // through row pointers): kernel shapes, paddings (none, asymmetric), dilation, groups, output widths
  // at, past and between strips (32 wide on AVX-512, 16 on AVX2), narrower rows computed over the padded
  // width (16 and 12 x 20 on AVX-512, 8 on AVX2), more output channels per group than one packed A block
  // holds (192 on AVX-512, 96 on AVX2; in the input gradient, more input channels), one image (the GEMM
  // splits its runs across threads) and several, with and without bias.
  struct Case {
    Shape x, w;
    Size2 padding, dilation;
    std::int64_t groups;
    bool bias;
  };
  for (const Case& c : {Case{{2, 3, 9, 32}, {8, 3, 3, 3}, {1, 1}, {1, 1}, 1, true},
                        Case{{1, 16, 6, 70}, {16, 16, 3, 3}, {1, 1}, {1, 1}, 1, false},
                        Case{{3, 4, 7, 47}, {32, 4, 5, 5}, {2, 2}, {1, 1}, 1, true},
                        Case{{2, 5, 8, 40}, {6, 5, 3, 3}, {0, 0}, {1, 1}, 1, true},
                        Case{{2, 4, 8, 36}, {12, 4, 1, 3}, {0, 1}, {1, 1}, 1, false},
                        Case{{2, 4, 9, 33}, {7, 4, 3, 1}, {2, 0}, {2, 1}, 1, true},
                        Case{{2, 6, 10, 50}, {10, 3, 3, 3}, {2, 2}, {2, 2}, 2, true},
                        Case{{1, 8, 5, 64}, {64, 4, 3, 3}, {1, 1}, {1, 1}, 2, false},
                        Case{{2, 4, 4, 40}, {100, 4, 3, 3}, {1, 1}, {1, 1}, 1, true},
                        Case{{2, 8, 16, 16}, {24, 8, 3, 3}, {1, 1}, {1, 1}, 1, true},
                        Case{{2, 6, 8, 8}, {16, 6, 3, 3}, {1, 1}, {1, 1}, 1, false},
                        Case{{1, 4, 12, 20}, {10, 2, 3, 3}, {2, 2}, {2, 2}, 2, true},
                        Case{{2, 3, 12, 12}, {5, 3, 3, 1}, {1, 0}, {1, 1}, 1, true},
                        Case{{1, 3, 4, 40}, {200, 3, 3, 3}, {1, 1}, {1, 1}, 1, true},
                        Case{{1, 4, 3, 36}, {400, 2, 3, 3}, {1, 1}, {1, 1}, 2, false},
                        Case{{1, 2, 16, 16}, {200, 2, 3, 3}, {1, 1}, {1, 1}, 1, true},
                        Case{{1, 200, 3, 36}, {4, 200, 3, 3}, {1, 1}, {1, 1}, 1, false}}) {
    INFO("input " << to_string(c.x) << " weight " << to_string(c.w));
    auto xd = random(c.x, 90), wd = random(c.w, 91, 0.3), bd = c.bias ? random({c.w[0]}, 92) : Tensor<double>();
    auto to_float = [](Tensor<double>& t) {  // rounds t to float in place and returns the float copy
      Tensor<float> f = Tensor<float>::empty(t.shape());
      for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = f.data()[i] = static_cast<float>(t.data()[i]);
      return f;
    };
    const auto xf = to_float(xd).requires_grad(), wf = to_float(wd), bf = c.bias ? to_float(bd) : Tensor<float>();
    const auto expected = naive_conv2d(xd, wd, bd, {1, 1}, c.padding, c.dilation, c.groups);
    const auto yf = conv2d(xf, wf, bf, 1, c.padding, c.dilation, c.groups);
    REQUIRE(yf.shape() == expected.shape());
    test::require_close(yf, expected, 1e-4);  // float sums of up to 1800 products
    // The input gradient (for stride 1, the implicit GEMM of a convolution of dy with the flipped
    // weight) against the double op's, which col2im computes and the gradchecks cover.
    auto gd = random(expected.shape(), 93);
    const auto gf = to_float(gd);
    yf.backward(gf);
    xd.requires_grad();
    conv2d(xd, wd, bd, 1, c.padding, c.dilation, c.groups).backward(gd);
    test::require_close(xf.grad(), xd.grad(), 1e-4, "input gradient");
  }
  // A stride-1 transposed convolution's forward is that input gradient too.
  auto xd = random({2, 8, 6, 40}, 94), wd = random({8, 12, 3, 3}, 95, 0.3);
  Tensor<float> xf = Tensor<float>::empty(xd.shape()), wf = Tensor<float>::empty(wd.shape());
  for (std::int64_t i = 0; i < xd.numel(); ++i) xd.data()[i] = xf.data()[i] = static_cast<float>(xd.data()[i]);
  for (std::int64_t i = 0; i < wd.numel(); ++i) wd.data()[i] = wf.data()[i] = static_cast<float>(wd.data()[i]);
  test::require_close(conv_transpose2d(xf, wf, {}, 1, 1), conv_transpose2d(xd, wd, {}, 1, 1), 1e-4, "transposed");
}

TEST_CASE("stride-1 float weight gradients without im2col agree with the double ones", "[conv]") {
  // Where gkd's float kernel is compiled in, weight gradients with 16 or more output channels per group
  // and at least two kernel strips of im2col rows (in_cg kh kw >= 64 on AVX-512, >= 32 on AVX2) pack their GEMM's B panels straight from padded
  // planes: planes of 64 x 64 and more sum images into per-slot partial sums, smaller ones split dW's
  // columns by input channel. Cases: both schemes, one image and several, paddings from none to more
  // than the kernel, dilation, groups, 5x5, output rows shorter than 8 and not a multiple of 8.
  struct Case {
    Shape x, w;
    Size2 padding, dilation;
    std::int64_t groups;
  };
  for (const Case& c : {Case{{2, 8, 9, 37}, {16, 8, 3, 3}, {1, 1}, {1, 1}, 1},
                        Case{{1, 16, 6, 70}, {16, 16, 3, 3}, {1, 1}, {1, 1}, 1},
                        Case{{3, 4, 7, 47}, {32, 4, 5, 5}, {2, 2}, {1, 1}, 1},
                        Case{{2, 12, 5, 5}, {20, 12, 3, 3}, {1, 1}, {1, 1}, 1},
                        Case{{2, 8, 6, 11}, {17, 8, 3, 3}, {0, 0}, {1, 1}, 1},
                        Case{{2, 8, 6, 13}, {17, 8, 3, 3}, {3, 2}, {1, 1}, 1},
                        Case{{2, 9, 10, 30}, {18, 9, 3, 3}, {2, 2}, {2, 2}, 1},
                        Case{{2, 16, 8, 24}, {32, 8, 3, 3}, {1, 1}, {1, 1}, 2},
                        Case{{2, 8, 64, 66}, {16, 8, 3, 3}, {1, 0}, {1, 1}, 1}}) {  // 64 x 64 output: slots
    INFO("input " << to_string(c.x) << " weight " << to_string(c.w) << " padding " << c.padding.h << ","
                  << c.padding.w);
    auto xd = random(c.x, 96), wd = random(c.w, 97, 0.3);
    auto to_float = [](Tensor<double>& t) {  // rounds t to float in place and returns the float copy
      Tensor<float> f = Tensor<float>::empty(t.shape());
      for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = f.data()[i] = static_cast<float>(t.data()[i]);
      return f;
    };
    const auto xf = to_float(xd), wf = to_float(wd).requires_grad();
    wd.requires_grad();
    const auto yd = conv2d(xd, wd, {}, 1, c.padding, c.dilation, c.groups);
    auto gd = random(yd.shape(), 98);
    const auto gf = to_float(gd);
    yd.backward(gd);
    conv2d(xf, wf, {}, 1, c.padding, c.dilation, c.groups).backward(gf);
    // Each value sums batch x plane products (up to 8,448) in float: 1e-4 relative to the largest
    // value (require_close's floor) leaves about 10x the expected rounding error.
    test::require_close(wf.grad(), wd.grad(), 1e-4, "weight gradient");
  }
}

TEST_CASE("conv2d float forward tracks the double result", "[conv]") {
  // Inputs rounded to float first, so that only the float arithmetic differs.
  auto x = random({2, 8, 16, 16}, 50), w = random({8, 8, 3, 3}, 51, 0.2);
  Tensor<float> xf = Tensor<float>::empty(x.shape()), wf = Tensor<float>::empty(w.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = xf.data()[i] = static_cast<float>(x.data()[i]);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data()[i] = wf.data()[i] = static_cast<float>(w.data()[i]);
  test::require_close(conv2d(xf, wf, {}, 1, 1), conv2d(x, w, {}, 1, 1), 1e-4);  // 72-term float sums
}

TEST_CASE("conv bad input raises gkd::Error naming op and shapes", "[errors][conv]") {
  using F = Tensor<float>;
  const auto x = F::zeros({2, 4, 5, 5}), w = F::zeros({6, 4, 3, 3});
  using Catch::Contains;
  REQUIRE_THROWS_WITH(conv2d(F::zeros({4, 5, 5}), w), Contains("conv2d") && Contains("[4, 5, 5]") && Contains("4-D"));
  REQUIRE_THROWS_WITH(conv2d(x, F::zeros({6, 4, 3})), Contains("conv2d") && Contains("[6, 4, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, F::zeros({6, 3, 3, 3})),
                      Contains("conv2d") && Contains("[2, 4, 5, 5]") && Contains("[6, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, F::zeros({6, 2, 3, 3}), {}, 1, 0, 1, 3),
                      Contains("conv2d") && Contains("[6, 2, 3, 3]") && Contains("groups=3"));
  REQUIRE_THROWS_WITH(conv2d(x, F::zeros({5, 2, 3, 3}), {}, 1, 0, 1, 2), Contains("conv2d") && Contains("[5, 2, 3, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, F::zeros({6, 4, 7, 3})), Contains("conv2d") && Contains("larger than input") &&
                                                             Contains("[6, 4, 7, 3]") && Contains("[2, 4, 5, 5]"));
  REQUIRE_THROWS_WITH(conv2d(x, w, {}, 1, 0, 3), Contains("conv2d") && Contains("larger than input"));
  REQUIRE_THROWS_WITH(conv2d(x, w, {}, 0), Contains("conv2d") && Contains("stride") && Contains("[2, 4, 5, 5]"));
  REQUIRE_THROWS_WITH(conv2d(x, w, {}, {1, -1}), Contains("conv2d") && Contains("stride"));
  REQUIRE_THROWS_WITH(conv2d(x, w, {}, 1, -1), Contains("conv2d") && Contains("padding"));
  REQUIRE_THROWS_WITH(conv2d(x, w, {}, 1, 0, 0), Contains("conv2d") && Contains("dilation"));
  REQUIRE_THROWS_WITH(conv2d(x, w, {}, 1, 0, 1, 0), Contains("conv2d") && Contains("groups"));
  REQUIRE_THROWS_WITH(conv2d(x, w, F::zeros({4})), Contains("conv2d") && Contains("bias") && Contains("[4]"));
  REQUIRE_THROWS_WITH(conv2d(F(), w), Contains("conv2d") && Contains("undefined"));
  REQUIRE_THROWS_WITH(conv2d(x, F()), Contains("conv2d") && Contains("undefined") && Contains("[2, 4, 5, 5]"));

  const auto wt = F::zeros({4, 3, 3, 3});
  REQUIRE_THROWS_WITH(conv_transpose2d(F::zeros({2, 4, 5}), wt), Contains("conv_transpose2d") && Contains("[2, 4, 5]"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, F::zeros({3, 3, 3, 3})),
                      Contains("conv_transpose2d") && Contains("[2, 4, 5, 5]") && Contains("[3, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, wt, {}, 1, 0, 0, 3), Contains("conv_transpose2d") && Contains("groups=3"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, wt, {}, 2, 0, 2),
                      Contains("conv_transpose2d") && Contains("output_padding") && Contains("[4, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, wt, {}, 0), Contains("conv_transpose2d") && Contains("stride"));
  REQUIRE_THROWS_WITH(conv_transpose2d(F::zeros({1, 4, 1, 1}), wt, {}, 1, 2),
                      Contains("conv_transpose2d") && Contains("not positive") && Contains("[1, 4, 1, 1]"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, wt, F::zeros({4})), Contains("conv_transpose2d") && Contains("bias"));
  REQUIRE_THROWS_WITH(conv_transpose2d(x, F()), Contains("conv_transpose2d") && Contains("undefined"));
}
