// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// `gkd::data::BatchLoader`: assembles N×C×H×W batches from a Dataset, a sampler, a preprocessing step
/// and an augmentation pipeline, prefetching on background threads so that the training loop does not
/// wait on generation or decoding while the workers keep up.
///
/// Contract
/// - Order and content are deterministic from `LoaderOptions::seed`, whatever the number of workers or
///   their timing: epoch e visits `sampler(e, size, count, seed)` (default: seeded shuffles, or 0..n-1,
///   repeated up to `samples_per_epoch`), batch
///   b of an epoch holds positions [b·N, (b+1)·N), and sample j of global batch g is preprocessed and
///   augmented with a generator seeded by (seed, g, j). Batches are delivered in order.
/// - `views = K` adds K more augmentations of the same preprocessed sample (same crop), each with its
///   own seed: the anchor and K views for DCGD.
/// - `start_batch = g` starts at global batch g, delivering exactly what an uninterrupted loader delivers
///   from there on (resuming a killed run); `augment_anchor = false` leaves the anchor un-augmented.
/// - At most `prefetch` batches are built ahead of the consumer (a bounded queue).
/// - An exception thrown while building a batch (dataset, preprocessing, augmentation, mismatched
///   sizes) is re-thrown from `next()` when that batch is due; the loader then stops.
/// - The destructor stops the workers and joins them, also when the queue is full or a worker failed.
///
/// @code
/// auto data = std::make_shared<gkd::data::SyntheticDataset>(gkd::data::retina_dataset(gkd::data::RetinaDomain::A, 200, 1));
/// gkd::data::BatchLoader loader(data, {.batch_size = 16, .seed = 7, .epochs = 10, .workers = 2},
///                               gkd::data::default_augmentation(), gkd::data::random_crop(128, 128, 0.5));
/// while (auto batch = loader.next()) {
///   // batch->images [16, 3, 128, 128], batch->masks [16, 128, 128]
/// }
/// @endcode
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/random.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/data/augment.hpp"
#include "gkd/data/detail/raster.hpp"
#include "gkd/data/sample.hpp"

namespace gkd::data {

/// One assembled batch.
struct Batch {
  Tensor<float> images;  ///< [N, C, H, W] anchors
  Tensor<float> masks;   ///< [N, H, W] (undefined when the samples have no mask)
  Tensor<float> fov;     ///< [N, H, W] (undefined unless every sample has one)
  std::vector<Tensor<float>> view_images;  ///< K tensors [N, C, H, W]
  std::vector<Tensor<float>> view_masks;   ///< K tensors [N, H, W] (geometric ops move the labels too)
  std::vector<std::string> names;
  std::vector<std::int64_t> indices;       ///< data-set indices
  std::int64_t epoch = 0, batch = 0, step = 0;  ///< epoch, batch within the epoch, global batch number
};

/// Loader settings.
struct LoaderOptions {
  std::int64_t batch_size = 4;
  bool shuffle = true;       ///< used by the default sampler
  bool drop_last = true;     ///< drop a final partial batch of each epoch
  std::uint64_t seed = 0;
  std::int64_t epochs = 1;   ///< 0: endless
  std::int64_t samples_per_epoch = 0;  ///< 0: the data-set size; more repeats samples (small sets, patches)
  int workers = 1;           ///< background threads; 0 builds batches synchronously inside next()
  int prefetch = 4;          ///< batches built ahead of the consumer (>= 1)
  int views = 0;             ///< extra augmented views per sample
  bool augment_anchor = true;  ///< false: the anchor is the preprocessed sample itself, only the views are augmented
  std::int64_t start_batch = 0;  ///< first global batch delivered (resuming a run: the batches before it are skipped, not built)
};

/// The data-set indices visited in one epoch: exactly `count` indices in [0, size).
using Sampler =
    std::function<std::vector<std::int64_t>(std::int64_t epoch, std::int64_t size, std::int64_t count, std::uint64_t seed)>;

/// How long the consumer waited and how much was built.
struct LoaderStats {
  std::int64_t batches = 0;      ///< delivered by next()
  std::int64_t waits = 0;        ///< next() calls that found their batch not ready
  double wait_seconds = 0;       ///< total time next() blocked
};

/// 0..size-1 repeated up to `count` indices; with `shuffle`, each pass over the set is a seeded
/// Fisher–Yates permutation (every sample once per pass).
inline Sampler default_sampler(bool shuffle) {
  return [shuffle](std::int64_t epoch, std::int64_t size, std::int64_t count, std::uint64_t seed) {
    std::vector<std::int64_t> order;
    order.reserve(static_cast<std::size_t>(count));
    Generator gen(detail::mix_seed(seed, 0x5EED0000ull + std::uint64_t(epoch)));
    std::vector<std::int64_t> pass(static_cast<std::size_t>(size));
    while (std::int64_t(order.size()) < count) {
      std::iota(pass.begin(), pass.end(), std::int64_t(0));
      if (shuffle)
        for (std::size_t i = pass.size(); i > 1; --i) std::swap(pass[i - 1], pass[std::size_t(gen.next() % i)]);
      for (std::size_t i = 0; i < pass.size() && std::int64_t(order.size()) < count; ++i) order.push_back(pass[i]);
    }
    return order;
  };
}

/// A data set held in memory: every sample of `source` is materialised once (on `threads` threads) and
/// `get` returns it without recomputation (tensor handles share storage; augmentations never write to
/// their input). Use it for generated sets that are re-visited each epoch.
class MemoryDataset : public Dataset {
 public:
  explicit MemoryDataset(std::vector<Sample> samples) : samples_(std::move(samples)) {}
  MemoryDataset(const Dataset& source, int threads) : samples_(static_cast<std::size_t>(source.size())) {
    GKD_CHECK(threads >= 1, "MemoryDataset", "threads must be >= 1, got " << threads);
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        try {
          for (std::size_t i = std::size_t(t); i < samples_.size(); i += std::size_t(threads)) samples_[i] = source.get(std::int64_t(i));
        } catch (...) {
          errors[std::size_t(t)] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  [[nodiscard]] std::int64_t size() const override { return std::int64_t(samples_.size()); }
  [[nodiscard]] Sample get(std::int64_t i) const override {
    GKD_CHECK(i >= 0 && i < size(), "MemoryDataset", "index " << i << " is out of range for " << size() << " samples");
    return samples_[std::size_t(i)];
  }

 private:
  std::vector<Sample> samples_;
};

class BatchLoader {
 public:
  /// @param preprocess applied to each sample before augmentation (e.g. `random_crop`, green channel);
  ///        its name is only used in messages. Empty: none.
  BatchLoader(std::shared_ptr<const Dataset> data, LoaderOptions options, AugmentPipeline augment = {},
              Augmentation preprocess = {}, Sampler sampler = {})
      : data_(std::move(data)), opt_(options), augment_(std::move(augment)), preprocess_(std::move(preprocess)),
        sampler_(sampler ? std::move(sampler) : default_sampler(options.shuffle)) {
    GKD_CHECK(data_ != nullptr, "BatchLoader", "no data set");
    GKD_CHECK(opt_.batch_size >= 1 && opt_.epochs >= 0 && opt_.workers >= 0 && opt_.prefetch >= 1 && opt_.views >= 0 &&
                  opt_.samples_per_epoch >= 0,
              "BatchLoader", "invalid options: batch_size " << opt_.batch_size << ", epochs " << opt_.epochs << ", workers "
                                                            << opt_.workers << ", prefetch " << opt_.prefetch << ", views " << opt_.views);
    GKD_CHECK(data_->size() > 0, "BatchLoader", "the data set is empty");
    const std::int64_t n = opt_.samples_per_epoch ? opt_.samples_per_epoch : data_->size();
    per_epoch_ = opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
    GKD_CHECK(per_epoch_ > 0, "BatchLoader",
              "an epoch of " << n << " samples gives no batch of " << opt_.batch_size << (opt_.drop_last ? " (drop_last)" : ""));
    total_ = opt_.epochs == 0 ? std::numeric_limits<std::int64_t>::max() : per_epoch_ * opt_.epochs;
    GKD_CHECK(opt_.start_batch >= 0 && opt_.start_batch <= total_, "BatchLoader",
              "start_batch " << opt_.start_batch << " is outside [0, " << total_ << "]");
    consumed_ = claimed_ = opt_.start_batch;
    for (int i = 0; i < opt_.workers; ++i) threads_.emplace_back([this] { work(); });
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;
  ~BatchLoader() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    ready_.notify_all();
    for (auto& t : threads_) t.join();
  }

  /// The next batch in order; std::nullopt after the last epoch. Re-throws a worker's exception.
  std::optional<Batch> next() {
    std::unique_lock lock(mutex_);
    GKD_CHECK(!failed_, "BatchLoader", "the loader stopped after an error in an earlier batch");
    if (consumed_ >= total_) return std::nullopt;
    const std::int64_t g = consumed_;
    if (opt_.workers == 0) {
      lock.unlock();
      Batch b = build(g);  // exceptions propagate directly
      lock.lock();
      ++consumed_, ++stats_.batches;
      return b;
    }
    if (!done_.count(g)) {
      ++stats_.waits;
      const auto t0 = std::chrono::steady_clock::now();
      ready_.wait(lock, [&] { return done_.count(g) > 0; });
      stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    Result r = std::move(done_.at(g));
    done_.erase(g);
    ++consumed_, ++stats_.batches;
    if (r.error) {
      failed_ = stop_ = true;
      lock.unlock();
      space_.notify_all();
      std::rethrow_exception(r.error);
    }
    lock.unlock();
    space_.notify_all();
    return std::move(r.batch);
  }

  [[nodiscard]] std::int64_t batches_per_epoch() const noexcept { return per_epoch_; }
  [[nodiscard]] LoaderStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  struct Result {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  void work() {
    for (;;) {
      std::int64_t g = 0;
      {
        std::unique_lock lock(mutex_);
        space_.wait(lock, [&] { return stop_ || (claimed_ < total_ && claimed_ < consumed_ + opt_.prefetch); });
        if (stop_) return;
        g = claimed_++;
      }
      Result r;
      try {
        r.batch = build(g);
      } catch (...) {
        r.error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        done_.emplace(g, std::move(r));
      }
      ready_.notify_all();
    }
  }

  std::vector<std::int64_t> order(std::int64_t epoch) {
    std::lock_guard lock(order_mutex_);
    auto it = orders_.find(epoch);
    if (it == orders_.end()) {
      const std::int64_t count = opt_.samples_per_epoch ? opt_.samples_per_epoch : data_->size();
      std::vector<std::int64_t> o = sampler_(epoch, data_->size(), count, opt_.seed);
      GKD_CHECK(std::int64_t(o.size()) == count, "BatchLoader",
                "sampler gave " << o.size() << " indices for epoch " << epoch << ", expected " << count);
      for (auto i : o)
        GKD_CHECK(i >= 0 && i < data_->size(), "BatchLoader", "sampler gave index " << i << " for " << data_->size() << " samples");
      it = orders_.emplace(epoch, std::move(o)).first;
      while (orders_.size() > 4) orders_.erase(orders_.begin());  // workers are at most a few epochs apart
    }
    return it->second;
  }

  Batch build(std::int64_t g) {
    Batch b;
    b.step = g, b.epoch = g / per_epoch_, b.batch = g % per_epoch_;
    const std::vector<std::int64_t> o = order(b.epoch);
    const std::int64_t first = b.batch * opt_.batch_size;
    const std::int64_t count = std::min<std::int64_t>(opt_.batch_size, std::int64_t(o.size()) - first);
    std::vector<Sample> anchors;
    std::vector<std::vector<Sample>> views(std::size_t(opt_.views));
    for (std::int64_t j = 0; j < count; ++j) {
      const std::int64_t index = o[std::size_t(first + j)];
      const std::uint64_t seed = detail::mix_seed(detail::mix_seed(opt_.seed, std::uint64_t(g)), std::uint64_t(j));
      Sample s = data_->get(index);
      check_sample(s, "BatchLoader");
      if (preprocess_.apply) {
        Generator gen(detail::mix_seed(seed, 0));
        preprocess_.apply(s, gen);
      }
      for (int k = 0; k < opt_.views; ++k) views[std::size_t(k)].push_back(augment_.apply(s, detail::mix_seed(seed, std::uint64_t(k) + 2)));
      anchors.push_back(augment_.empty() || !opt_.augment_anchor ? std::move(s) : augment_.apply(s, detail::mix_seed(seed, 1)));
      b.indices.push_back(index);
      b.names.push_back(anchors.back().name);
    }
    stack(anchors, b.images, b.masks, b.fov);
    for (auto& v : views) {
      Tensor<float> img, mask, fov;
      stack(v, img, mask, fov);
      b.view_images.push_back(img);
      b.view_masks.push_back(mask);
    }
    return b;
  }

  static void stack(const std::vector<Sample>& samples, Tensor<float>& images, Tensor<float>& masks, Tensor<float>& fov) {
    const Sample& s0 = samples.front();
    const std::int64_t n = std::int64_t(samples.size()), c = s0.channels(), h = s0.height(), w = s0.width();
    bool all_masks = true, all_fov = true;
    for (const auto& s : samples) {
      GKD_CHECK(s.channels() == c && s.height() == h && s.width() == w, "BatchLoader",
                "sample '" << s.name << "' is " << to_string(s.image.shape()) << " but '" << s0.name << "' is "
                           << to_string(s0.image.shape()) << ": crop or resize to one size (preprocess)");
      all_masks = all_masks && s.mask.defined();
      all_fov = all_fov && s.fov.defined();
    }
    images = Tensor<float>::empty({n, c, h, w});
    if (all_masks) masks = Tensor<float>::empty({n, h, w});
    if (all_fov) fov = Tensor<float>::empty({n, h, w});
    for (std::int64_t i = 0; i < n; ++i) {
      const Sample& s = samples[std::size_t(i)];
      const Tensor<float> img = s.image.contiguous();
      std::copy_n(img.data(), c * h * w, images.data() + i * c * h * w);
      if (all_masks) {
        const Tensor<float> m = s.mask.contiguous();
        std::copy_n(m.data(), h * w, masks.data() + i * h * w);
      }
      if (all_fov) {
        const Tensor<float> f = s.fov.contiguous();
        std::copy_n(f.data(), h * w, fov.data() + i * h * w);
      }
    }
  }

  std::shared_ptr<const Dataset> data_;
  LoaderOptions opt_;
  AugmentPipeline augment_;
  Augmentation preprocess_;
  Sampler sampler_;
  std::int64_t per_epoch_ = 0, total_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable space_, ready_;
  std::int64_t claimed_ = 0, consumed_ = 0;
  bool stop_ = false, failed_ = false;
  std::map<std::int64_t, Result> done_;
  LoaderStats stats_;
  std::mutex order_mutex_;
  std::map<std::int64_t, std::vector<std::int64_t>> orders_;
  std::vector<std::thread> threads_;
};

}  // namespace gkd::data
