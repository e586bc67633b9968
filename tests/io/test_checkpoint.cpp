// SPDX-License-Identifier: Apache-2.0
// Checkpoints: atomic replacement (failure and crash between write and rename), optimizer and
// generator state, mismatch errors, and save -> load -> continue training bit-identical to an
// uninterrupted run.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gkd/gkd.hpp>
#include <gkd/io/checkpoint.hpp>
#include <gkd/optim/adam.hpp>
#include <gkd/optim/sgd.hpp>

namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const char* tag) {
  fs::path dir = fs::temp_directory_path() / (std::string("gkd_test_ckpt_") + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::size_t count_files(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

/// conv 3x3 -> batch norm (running stats are buffers) -> ReLU -> dropout -> conv 1x1, cross-entropy.
struct TinyNet {
  gkd::Tensor<float> w1, b1, gamma, beta, running_mean, running_var, w2, b2;
  explicit TinyNet(std::uint64_t seed) {
    gkd::Generator gen(seed);
    w1 = gkd::randn<float>({4, 1, 3, 3}, gen, 0.f, 0.3f).requires_grad();
    b1 = gkd::randn<float>({4}, gen, 0.f, 0.1f).requires_grad();
    gamma = gkd::Tensor<float>::ones({4}).requires_grad();
    beta = gkd::Tensor<float>::zeros({4}).requires_grad();
    running_mean = gkd::Tensor<float>::zeros({4});
    running_var = gkd::Tensor<float>::ones({4});
    w2 = gkd::randn<float>({2, 4, 1, 1}, gen, 0.f, 0.3f).requires_grad();
    b2 = gkd::Tensor<float>::zeros({2}).requires_grad();
  }
  std::vector<gkd::Tensor<float>> parameters() const { return {w1, b1, gamma, beta, w2, b2}; }
  gkd::NamedTensors<float> state() const {
    return {{"conv1.weight", w1}, {"conv1.bias", b1},           {"bn.weight", gamma},          {"bn.bias", beta},
            {"bn.running_mean", running_mean}, {"bn.running_var", running_var}, {"head.weight", w2}, {"head.bias", b2}};
  }
  gkd::Tensor<float> loss(const gkd::Tensor<float>& x, const gkd::Tensor<float>& y, gkd::Generator& dropout_gen) const {
    auto h = gkd::conv2d(x, w1, b1, 1, 1);
    h = gkd::relu(gkd::batch_norm2d(h, gamma, beta, running_mean, running_var, true));
    h = gkd::dropout(h, 0.25, true, dropout_gen);
    return gkd::cross_entropy(gkd::conv2d(h, w2, b2), y);
  }
};

/// One training step drawing its batch and dropout mask from the generators.
void train_step(TinyNet& net, gkd::Adam<float>& opt, gkd::Generator& data, gkd::Generator& drop) {
  auto x = gkd::randn<float>({2, 1, 8, 8}, data);
  auto y = gkd::randint<float>({2, 8, 8}, 2, data);
  opt.zero_grad();
  net.loss(x, y, drop).backward();
  opt.step();
}

std::vector<std::vector<float>> snapshot(const TinyNet& net, const gkd::Optimizer<float>& opt) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, t] : net.state()) out.push_back(t.to_vector());
  for (const auto& [name, t] : opt.named_state()) out.push_back(t.to_vector());
  return out;
}

}  // namespace

TEST_CASE("atomic write: a failure between write and rename leaves the old file intact", "[io]") {
  const fs::path dir = temp_dir("atomic");
  const fs::path path = dir / "model.safetensors";
  gkd::NamedTensors<float> v1{{"w", gkd::Tensor<float>::full({3}, 1.f)}};
  gkd::NamedTensors<float> v2{{"w", gkd::Tensor<float>::full({3}, 2.f)}};
  gkd::io::save_safetensors(path, v1);
  const auto before = gkd::io::read_file(path);

  auto v2_bytes = gkd::io::serialize_safetensors(v2);
  CHECK_THROWS_WITH(gkd::io::write_file_atomically(path, v2_bytes, [] { throw gkd::Error("test", "simulated failure"); }),
                    Catch::Contains("simulated failure"));
  CHECK(gkd::io::read_file(path) == before);
  CHECK(count_files(dir) == 1);  // the temporary file was removed

  // A process that dies between write and rename (no clean-up at all) leaves the old file intact.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      gkd::io::write_file_atomically(path, v2_bytes, [] { ::_exit(42); });
    } catch (...) {
    }
    ::_exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
  CHECK(gkd::io::read_file(path) == before);
  CHECK(gkd::io::load_safetensors<float>(path).tensors[0].tensor.to_vector() == std::vector<float>{1, 1, 1});
  CHECK(count_files(dir) == 2);  // a stale complete temporary file, never a damaged target

  gkd::io::write_file_atomically(path, v2_bytes);
  CHECK(gkd::io::load_safetensors<float>(path).tensors[0].tensor.to_vector() == std::vector<float>{2, 2, 2});

  // What a non-atomic writer could leave behind (a truncated file) is refused with a clear error.
  std::vector<std::byte> truncated(v2_bytes.begin(), v2_bytes.end() - 5);
  gkd::io::write_file_atomically(dir / "truncated.safetensors", truncated);
  CHECK_THROWS_WITH(gkd::io::load_safetensors<float>(dir / "truncated.safetensors"),
                    Catch::Contains("truncated.safetensors") && Catch::Contains("runs past the data buffer"));
  CHECK_THROWS_WITH(gkd::io::write_file_atomically(dir / "no_such_dir" / "x", v2_bytes),
                    Catch::Contains("cannot create the temporary file"));
  fs::remove_all(dir);
}

TEST_CASE("checkpoint: save -> load -> continue training is bit-identical to uninterrupted training", "[io]") {
  gkd::set_num_threads(1);
  const fs::path dir = temp_dir("resume");
  const fs::path path = dir / "ckpt.safetensors";
  constexpr int kSteps = 6, kSplit = 3;
  const gkd::AdamOptions options{.lr = 1e-2, .weight_decay = 1e-3};

  TinyNet reference(7);
  gkd::Adam<float> reference_opt(reference.parameters(), options);
  gkd::Generator data(11), drop(13);
  for (int s = 0; s < kSteps; ++s) train_step(reference, reference_opt, data, drop);

  TinyNet first(7);
  gkd::Adam<float> first_opt(first.parameters(), options);
  gkd::Generator data1(11), drop1(13);
  for (int s = 0; s < kSplit; ++s) train_step(first, first_opt, data1, drop1);
  first_opt.set_initial_lr(0, 1e-2);
  gkd::io::save_checkpoint(path, first.state(), &first_opt,
                           {.step = kSplit, .epoch = 1, .generators = {{"data", data1}, {"dropout", drop1}},
                            .user = {{"config", "tiny"}}});

  TinyNet resumed(99);  // different initial weights: everything must come from the file
  gkd::Adam<float> resumed_opt(resumed.parameters(), {.lr = 5.0});
  auto loaded = gkd::io::load_checkpoint(path, resumed.state(), &resumed_opt);
  CHECK(loaded.model.ok());
  CHECK(loaded.model.loaded.size() == 8);
  CHECK(loaded.state.step == kSplit);
  CHECK(loaded.state.epoch == 1);
  CHECK(loaded.state.user.at("config") == "tiny");
  CHECK(resumed_opt.lr() == 1e-2);
  CHECK(resumed_opt.group(0).initial_lr == 1e-2);
  CHECK(resumed_opt.group(0).weight_decay == 1e-3);
  CHECK(resumed_opt.state(0).step == kSplit);
  CHECK(snapshot(resumed, resumed_opt) == snapshot(first, first_opt));
  gkd::Generator data2 = loaded.state.generators.at("data"), drop2 = loaded.state.generators.at("dropout");
  for (int s = kSplit; s < kSteps; ++s) train_step(resumed, resumed_opt, data2, drop2);

  // Bitwise: parameters, running statistics, Adam moments and step counts.
  CHECK(snapshot(resumed, resumed_opt) == snapshot(reference, reference_opt));
  for (std::size_t i = 0; i < reference_opt.num_params(); ++i) CHECK(resumed_opt.state(i).step == kSteps);
  CHECK(data2.next() == data.next());
  fs::remove_all(dir);
}

TEST_CASE("checkpoint: mismatches are refused before anything changes", "[io]") {
  const fs::path dir = temp_dir("mismatch");
  const fs::path path = dir / "ckpt.safetensors";
  TinyNet net(1);
  gkd::Adam<float> opt(net.parameters(), {.lr = 1e-2});
  gkd::Generator data(1), drop(2);
  train_step(net, opt, data, drop);
  gkd::io::save_checkpoint(path, net.state(), &opt, {.step = 1});

  TinyNet other(5);
  const auto untouched = other.w1.to_vector();
  SECTION("another optimizer type") {
    gkd::SGD<float> sgd(other.parameters(), {.lr = 0.1});
    CHECK_THROWS_WITH(gkd::io::load_checkpoint(path, other.state(), &sgd),
                      Catch::Contains("ckpt.safetensors") && Catch::Contains("holds Adam state, the optimizer is SGD"));
  }
  SECTION("other parameter groups") {
    auto params = other.parameters();
    gkd::Adam<float> split({{.params = {params[0], params[1]}}, {.params = {params[2], params[3], params[4], params[5]}}},
                           gkd::AdamOptions{});
    CHECK_THROWS_WITH(gkd::io::load_checkpoint(path, other.state(), &split), Catch::Contains("sizes {6}"));
  }
  SECTION("strict model mismatch names the keys, also with the optimizer") {
    gkd::Adam<float> fresh(other.parameters(), {.lr = 1e-2});
    auto state = other.state();
    state.pop_back();                                                           // head.bias unexpected
    state.push_back({"head.scale", gkd::Tensor<float>::ones({2})});             // missing
    state[0].tensor = gkd::Tensor<float>::zeros({4, 1, 5, 5});                  // mis-shaped
    CHECK_THROWS_WITH(gkd::io::load_checkpoint(path, state, &fresh),
                      Catch::Contains("missing keys: head.scale") && Catch::Contains("unexpected keys: head.bias") &&
                          Catch::Contains("conv1.weight (expected [4, 1, 5, 5], file has [4, 1, 3, 3])"));
    CHECK(fresh.state(0).step == 0);
    // Non-strict: the model loads what matches; the optimizer still restores in full.
    auto r = gkd::io::load_checkpoint(path, state, &fresh, {.strict = false});
    CHECK(r.model.missing == std::vector<std::string>{"head.scale"});
    CHECK(r.model.unexpected == std::vector<std::string>{"head.bias"});
    CHECK(r.model.mismatched.size() == 1);
    CHECK(fresh.state(0).step == 1);
    CHECK(state[1].tensor.to_vector() == net.b1.to_vector());
  }
  SECTION("a plain safetensors file is not a checkpoint") {
    gkd::io::save_safetensors(dir / "plain.safetensors", net.state());
    CHECK_THROWS_WITH(gkd::io::load_checkpoint<float>(dir / "plain.safetensors", other.state(), nullptr),
                      Catch::Contains("not a gkd checkpoint"));
  }
  CHECK(other.w1.to_vector() == untouched);
  fs::remove_all(dir);
}
