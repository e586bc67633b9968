// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include "gkd/distill/config.hpp"
#include "support/scratch.hpp"

using namespace gkd::distill;
using gkd::test::error_of;

TEST_CASE("presets differ where the issue says and both validate", "[distill][config]") {
  const PipelineConfig paper = preset("paper"), cpu = preset("cpu");
  CHECK(paper.nets.teacher_width == 1.0);
  CHECK(paper.nets.student_width == 1.0);
  CHECK(paper.data.patch == 128);
  CHECK(paper.optim.lr == 3e-3);
  CHECK(paper.optim.weight_decay == 2e-4);
  CHECK(paper.optim.schedule == "step");
  CHECK(cpu.nets.teacher_width < 1.0);
  CHECK(cpu.epochs.teacher < paper.epochs.teacher);
  validate(paper);
  validate(cpu);
  CHECK_THAT(error_of([] { (void)preset("gpu"); }), Catch::Contains("unknown preset 'gpu'"));
}

TEST_CASE("the JSON of a configuration reads back into the same configuration", "[distill][config]") {
  PipelineConfig a = preset("cpu");
  a.seed = 77, a.gkd.graph_tau = 0.125, a.data.targets = {"retina_b", "some/folder"}, a.data.clahe = false, a.method = "emkd";
  PipelineConfig b = preset("paper");
  apply_json(b, to_json(a), "a.json");
  CHECK(to_json(b) == to_json(a));
  CHECK(b.data.targets == a.data.targets);
  CHECK(b.gkd.graph_tau == 0.125);
}

TEST_CASE("overrides parse by the field's type and name what is wrong", "[distill][config]") {
  PipelineConfig c = preset("cpu");
  apply_override(c, "gkd.inter=0.25");
  apply_override(c, "epochs.teacher=3");
  apply_override(c, "data.targets=retina_a,retina_b,ct_plain");
  apply_override(c, "data.clahe=false");
  apply_override(c, "method=intra+inter");
  CHECK(c.gkd.inter == 0.25);
  CHECK(c.epochs.teacher == 3);
  CHECK(c.data.targets == std::vector<std::string>{"retina_a", "retina_b", "ct_plain"});
  CHECK_FALSE(c.data.clahe);
  CHECK(c.method == "intra+inter");
  CHECK_THAT(error_of([&] { apply_override(c, "gkd.intr=1"); }), Catch::Contains("unknown key 'gkd.intr'"));
  CHECK_THAT(error_of([&] { apply_override(c, "epochs.teacher=1.5"); }), Catch::Contains("'epochs.teacher'"));
  CHECK_THAT(error_of([&] { apply_override(c, "seed=-3"); }), Catch::Contains("non-negative integer"));
  CHECK_THAT(error_of([&] { apply_override(c, "gkd.inter"); }), Catch::Contains("is not key=value"));
  CHECK_THAT(error_of([&] { apply_override(c, "data.clahe=yes"); }), Catch::Contains("expected true or false"));
}

TEST_CASE("JSON input rejects unknown keys, wrong types and malformed text, naming the file", "[distill][config]") {
  PipelineConfig c = preset("cpu");
  apply_json(c, R"({"gkd": {"intra": 0.5}, "seed": 3})", "x.json");
  CHECK(c.gkd.intra == 0.5);
  CHECK(c.seed == 3);
  CHECK_THAT(error_of([&] { apply_json(c, R"({"gkd": {"intra": "high"}})", "x.json"); }),
             Catch::Contains("x.json: 'gkd.intra': expected a number"));
  CHECK_THAT(error_of([&] { apply_json(c, R"({"nets": {"depth": 3}})", "x.json"); }), Catch::Contains("unknown key 'nets.depth'"));
  CHECK_THAT(error_of([&] { apply_json(c, R"({"seed": 3,})", "bad.json"); }), Catch::Contains("bad.json"));
  CHECK_THAT(error_of([&] { apply_json(c, R"([1, 2])", "x.json"); }), Catch::Contains("expected a JSON object"));
}

TEST_CASE("validate names the first invalid field", "[distill][config]") {
  PipelineConfig c = preset("cpu");
  c.data.patch = 48;
  CHECK_THAT(error_of([&] { validate(c); }), Catch::Contains("data.patch must be a positive multiple of 32"));
  c = preset("cpu");
  c.method = "fitnet";
  CHECK_THAT(error_of([&] { validate(c); }), Catch::Contains("method 'fitnet'"));
  c = preset("cpu");
  c.gkd.graph_loss = "mse";
  CHECK_THAT(error_of([&] { validate(c); }), Catch::Contains("gkd.graph_loss"));
  c = preset("cpu");
  c.act.rec = -1;
  CHECK_THAT(error_of([&] { validate(c); }), Catch::Contains("act.rec must be >= 0"));
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:1x", "cuda:-1"}) {
    c = preset("cpu");
    c.device = bad;
    CHECK_THAT(error_of([&] { validate(c); }), Catch::Contains("device must be cpu, cuda or cuda:N"));
  }
  c.device = "cuda:1";
  CHECK(run_device(c) == gkd::cuda_device(1));
  c.device = "cuda";
  CHECK(run_device(c) == gkd::cuda_device(0));
  c.device = "cpu";
  CHECK(run_device(c) == gkd::kCPU);
  for (const char* bad : {"fp16", "bfloat16", "f64", ""}) {
    c.precision = bad;
    CHECK_THAT(error_of([&] { validate(c); }), Catch::Contains("precision must be f32, bf16 or f16"));
  }
  for (const auto& [name, p] : {std::pair{"f32", gkd::Precision::f32}, std::pair{"bf16", gkd::Precision::bf16},
                                std::pair{"f16", gkd::Precision::f16}}) {
    c.precision = name;
    CHECK(run_precision(c) == p);
  }
}
