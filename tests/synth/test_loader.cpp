// SPDX-License-Identifier: Apache-2.0
// BatchLoader: deterministic order and content whatever the worker count, bounded prefetch on a
// background thread, worker exceptions re-thrown in the consumer, clean shutdown with a full queue,
// views, size mismatch errors, and a run on the synthetic retina set.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <gkd/data/loader.hpp>
#include <gkd/data/synthetic_retina.hpp>

using namespace gkd::data;

namespace {

// Sample i: a 1×8×8 image filled with i/100 plus a ramp, a mask of the left half; counts get() calls.
class Counting : public Dataset {
 public:
  explicit Counting(std::int64_t n, std::int64_t throw_at = -1, std::int64_t odd_size_at = -1)
      : n_(n), throw_at_(throw_at), odd_at_(odd_size_at) {}
  [[nodiscard]] std::int64_t size() const override { return n_; }
  [[nodiscard]] Sample get(std::int64_t i) const override {
    ++calls;
    GKD_CHECK(i != throw_at_, "Counting", "cannot decode sample " << i);
    const std::int64_t side = i == odd_at_ ? 9 : 8;
    Sample s{gkd::Tensor<float>::empty({1, side, side}), gkd::Tensor<float>::zeros({side, side}), {}, "s" + std::to_string(i), "test"};
    for (std::int64_t k = 0; k < side * side; ++k) {
      s.image.data()[k] = float(i) / 100.f + float(k) / 1000.f;
      if (k % side < side / 2) s.mask.data()[k] = 1.f;
    }
    return s;
  }
  mutable std::atomic<int> calls{0};

 private:
  std::int64_t n_, throw_at_, odd_at_;
};

struct Run {
  std::vector<std::int64_t> indices;
  std::vector<gkd::Tensor<float>> images;
};

Run run(const std::shared_ptr<const Dataset>& data, LoaderOptions opt, const AugmentPipeline& aug) {
  BatchLoader loader(data, opt, aug);
  Run r;
  while (auto b = loader.next()) {
    r.indices.insert(r.indices.end(), b->indices.begin(), b->indices.end());
    r.images.push_back(b->images);
  }
  return r;
}

bool identical(const gkd::Tensor<float>& a, const gkd::Tensor<float>& b) {
  if (a.shape() != b.shape()) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a.data()[i] != b.data()[i]) return false;
  return true;
}

}  // namespace

TEST_CASE("loader order and content are deterministic from the seed for any worker count", "[synth]") {
  const auto data = std::make_shared<Counting>(12);
  const auto aug = AugmentPipeline().then(flip()).then(gaussian_noise({0.01, 0.02}));
  LoaderOptions opt{.batch_size = 3, .shuffle = true, .seed = 5, .epochs = 3, .workers = 0, .prefetch = 2};
  const Run sync = run(data, opt, aug);
  REQUIRE(sync.indices.size() == 36);
  for (int e = 0; e < 3; ++e) {  // each epoch is a permutation
    std::vector<std::int64_t> epoch(sync.indices.begin() + e * 12, sync.indices.begin() + (e + 1) * 12);
    std::sort(epoch.begin(), epoch.end());
    for (std::int64_t i = 0; i < 12; ++i) CHECK(epoch[std::size_t(i)] == i);
  }
  CHECK(std::vector<std::int64_t>(sync.indices.begin(), sync.indices.begin() + 12) !=
        std::vector<std::int64_t>(sync.indices.begin() + 12, sync.indices.begin() + 24));
  for (int workers : {1, 2, 3}) {
    opt.workers = workers;
    const Run threaded = run(data, opt, aug);
    CHECK(threaded.indices == sync.indices);
    REQUIRE(threaded.images.size() == sync.images.size());
    for (std::size_t i = 0; i < sync.images.size(); ++i) CHECK(identical(threaded.images[i], sync.images[i]));
  }
  opt.seed = 6;
  CHECK(run(data, opt, aug).indices != sync.indices);
  opt.shuffle = false;
  const Run plain = run(data, opt, {});
  for (std::size_t i = 0; i < plain.indices.size(); ++i) CHECK(plain.indices[i] == std::int64_t(i % 12));
}

TEST_CASE("a loader started at a later batch delivers what an uninterrupted one delivers from there", "[synth]") {
  const auto data = std::make_shared<Counting>(12);
  const auto aug = AugmentPipeline().then(flip()).then(gaussian_noise({0.01, 0.02}));
  LoaderOptions opt{.batch_size = 3, .shuffle = true, .seed = 5, .epochs = 3, .workers = 2, .prefetch = 2};
  const Run whole = run(data, opt, aug);
  for (std::int64_t start : {0, 1, 4, 7, 12}) {
    opt.start_batch = start;
    const Run tail = run(data, opt, aug);
    REQUIRE(tail.images.size() == whole.images.size() - std::size_t(start));
    CHECK(std::vector<std::int64_t>(whole.indices.begin() + start * 3, whole.indices.end()) == tail.indices);
    for (std::size_t i = 0; i < tail.images.size(); ++i) CHECK(identical(tail.images[i], whole.images[std::size_t(start) + i]));
  }
  opt.start_batch = 13;
  CHECK_THROWS_WITH(BatchLoader(data, opt, aug), Catch::Contains("start_batch 13 is outside [0, 12]"));
}

TEST_CASE("an un-augmented anchor is the preprocessed sample, its views are augmented", "[synth]") {
  const auto data = std::make_shared<Counting>(4);
  LoaderOptions opt{.batch_size = 2, .shuffle = false, .seed = 1, .epochs = 1, .workers = 0, .views = 2, .augment_anchor = false};
  BatchLoader loader(data, opt, AugmentPipeline().then(gaussian_noise({0.05, 0.06})));
  const auto b = loader.next();
  REQUIRE(b);
  CHECK(identical(b->images.narrow(0, 0, 1).reshape({1, 8, 8}), data->get(0).image));
  REQUIRE(b->view_images.size() == 2);
  CHECK_FALSE(identical(b->view_images[0].narrow(0, 0, 1).reshape({1, 8, 8}), data->get(0).image));
}

TEST_CASE("loader prefetches on a background thread, bounded by the queue size", "[synth]") {
  const auto data = std::make_shared<Counting>(40);
  BatchLoader loader(data, {.batch_size = 2, .seed = 1, .epochs = 1, .workers = 1, .prefetch = 3});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (data->calls < 6 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(data->calls == 6);  // three batches built before anybody asked
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(data->calls == 6);  // and no more: the queue is full
  auto b = loader.next();
  REQUIRE(b);
  CHECK(b->images.shape() == gkd::Shape{2, 1, 8, 8});
  CHECK(b->masks.shape() == gkd::Shape{2, 8, 8});
  CHECK_FALSE(b->fov.defined());
  CHECK(loader.stats().waits == 0);  // the first batch was ready
  std::int64_t batches = 1;
  while (loader.next()) ++batches;
  CHECK(batches == loader.batches_per_epoch());
  CHECK(batches == 20);
  CHECK_FALSE(loader.next());
}

TEST_CASE("an exception in a worker is re-thrown by next() when its batch is due", "[synth]") {
  const auto data = std::make_shared<Counting>(10, /*throw_at=*/5);
  for (int workers : {0, 2}) {
    BatchLoader loader(data, {.batch_size = 2, .shuffle = false, .epochs = 1, .workers = workers, .prefetch = 4});
    CHECK(loader.next());
    CHECK(loader.next());
    CHECK_THROWS_WITH(loader.next(), Catch::Contains("cannot decode sample 5"));
    if (workers > 0) CHECK_THROWS_WITH(loader.next(), Catch::Contains("stopped after an error"));
  }
  const auto odd = std::make_shared<Counting>(4, -1, /*odd_size_at=*/1);
  BatchLoader loader(odd, {.batch_size = 2, .shuffle = false, .workers = 1});
  CHECK_THROWS_WITH(loader.next(), Catch::Contains("crop or resize to one size"));
}

TEST_CASE("destroying a loader with a full queue and busy workers returns promptly", "[synth]") {
  const auto data = std::make_shared<Counting>(16);
  const auto t0 = std::chrono::steady_clock::now();
  {
    BatchLoader loader(data, {.batch_size = 4, .epochs = 0, .workers = 3, .prefetch = 2});
    CHECK(loader.next());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let the queue fill
  }
  {
    BatchLoader never_consumed(data, {.batch_size = 4, .epochs = 0, .workers = 2, .prefetch = 8});
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("MemoryDataset materialises a set once, in parallel, and propagates errors", "[synth]") {
  const Counting source(9);
  const MemoryDataset memory(source, 3);
  CHECK(source.calls == 9);
  REQUIRE(memory.size() == 9);
  for (std::int64_t i = 0; i < 9; ++i) CHECK(identical(memory.get(i).image, source.get(i).image));
  CHECK(source.calls == 18);  // the 9 reads above, none by memory.get
  CHECK_THROWS_AS(memory.get(9), gkd::Error);
  CHECK_THROWS_WITH(MemoryDataset(Counting(6, 4), 2), Catch::Contains("cannot decode sample 4"));
}

TEST_CASE("views and a synthetic retina set with crops", "[synth]") {
  const auto data = std::make_shared<SyntheticDataset>(retina_dataset(RetinaDomain::A, 4, 3, {.size = 64, .supersample = 1}));
  BatchLoader loader(data, {.batch_size = 2, .seed = 2, .epochs = 1, .workers = 2, .views = 2},
                     AugmentPipeline().then(flip()).then(rot90()).then(gamma()), random_crop(32, 32, 0.5));
  auto b = loader.next();
  REQUIRE(b);
  CHECK(b->images.shape() == gkd::Shape{2, 3, 32, 32});
  CHECK(b->fov.shape() == gkd::Shape{2, 32, 32});
  REQUIRE(b->view_images.size() == 2);
  CHECK(b->view_images[0].shape() == gkd::Shape{2, 3, 32, 32});
  CHECK(b->view_masks[1].shape() == gkd::Shape{2, 32, 32});
  CHECK_FALSE(identical(b->view_images[0], b->view_images[1]));
  CHECK_FALSE(identical(b->view_images[0], b->images));
  CHECK(b->names[0].rfind("retina_a_", 0) == 0);
  CHECK(loader.next());
  CHECK_FALSE(loader.next());
  CHECK_THROWS_AS(BatchLoader(data, {.batch_size = 5}), gkd::Error);  // no full batch with drop_last
  // samples_per_epoch repeats a small set: 4 samples, 10 per epoch, each pass a permutation
  BatchLoader repeated(data, {.batch_size = 5, .shuffle = true, .seed = 4, .samples_per_epoch = 10, .workers = 1},
                       {}, random_crop(16, 16));
  std::vector<std::int64_t> seen;
  while (auto r = repeated.next()) seen.insert(seen.end(), r->indices.begin(), r->indices.end());
  REQUIRE(seen.size() == 10);
  for (std::size_t pass = 0; pass < 2; ++pass) {
    std::vector<std::int64_t> p(seen.begin() + std::ptrdiff_t(4 * pass), seen.begin() + std::ptrdiff_t(4 * pass + 4));
    std::sort(p.begin(), p.end());
    CHECK(p == std::vector<std::int64_t>{0, 1, 2, 3});
  }
  const Sampler short_sampler = [](std::int64_t, std::int64_t, std::int64_t, std::uint64_t) { return std::vector<std::int64_t>{0}; };
  BatchLoader bad_sampler(data, {.batch_size = 2, .workers = 0}, {}, random_crop(16, 16), short_sampler);
  CHECK_THROWS_WITH(bad_sampler.next(), Catch::Contains("expected 4"));
  CHECK_THROWS_AS(BatchLoader(data, {.prefetch = 0}), gkd::Error);
}
