// ht::data: Dataset, samplers and DataLoader (batching, seeded shuffles, worker threads, errors, early exit,
// skipped samples, pinned memory).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "data/dataloader.h"
#include "data/dataset.h"
#include "data/pin_memory.h"
#include "data/samplers.h"
#include "tests/helpers.h"

using namespace ht;
using namespace ht::data;

namespace {

// Sample i is the float vector {i, 2i} with target i; optionally slow (so workers finish out of order) or failing
// at one index; counts the gets in flight.
class CountingDataset : public Dataset {
 public:
  explicit CountingDataset(int64_t n, int64_t fail_at = -1, int sleep_us = 0) : n_(n), fail_at_(fail_at), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    ++gets;
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_ * ((i * 7919) % 5)));
    if (i == fail_at_) throw std::runtime_error("cannot decode this one");
    return {from_vector<float>({float(i), float(2 * i)}, {2}), scalar_tensor(double(i), {.dtype = kInt64})};
  }
  mutable std::atomic<int64_t> gets{0};

 private:
  int64_t n_, fail_at_;
  int sleep_us_;
};

// The dataset indices of an epoch, batch by batch, checking each batch's data against its indices.
std::vector<std::vector<int64_t>> run_epoch(DataLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  for (Batch& b : loader) {
    std::vector<int64_t> t = b.target.to_vector<int64_t>();
    std::vector<float> d = b.data.to_vector<float>();
    REQUIRE(b.data.sizes() == Shape{int64_t(b.indices.size()), 2});
    REQUIRE(t == b.indices);
    for (size_t k = 0; k < t.size(); ++k) REQUIRE(d[2 * k + 1] == float(2 * t[k]));
    out.push_back(b.indices);
  }
  return out;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

}  // namespace

TEST_CASE("DataLoader visits every sample exactly once per epoch", "[data]") {
  auto ds = std::make_shared<CountingDataset>(103);
  for (bool shuffle : {false, true}) {
    for (int64_t bs : {1, 10, 103, 200}) {
      DataLoader loader(ds, {.batch_size = bs, .shuffle = shuffle, .seed = 5});
      for (int64_t epoch = 0; epoch < 3; ++epoch) {
        loader.set_epoch(epoch);
        auto batches = run_epoch(loader);
        REQUIRE(int64_t(batches.size()) == loader.num_batches());
        REQUIRE(int64_t(batches.size()) == (103 + bs - 1) / bs);
        for (size_t k = 0; k + 1 < batches.size(); ++k) REQUIRE(int64_t(batches[k].size()) == bs);
        std::vector<int64_t> all = flatten(batches);
        std::set<int64_t> seen(all.begin(), all.end());
        REQUIRE(all.size() == 103);
        REQUIRE(seen.size() == 103);
        REQUIRE(*seen.begin() == 0);
        REQUIRE(*seen.rbegin() == 102);
        if (!shuffle) REQUIRE(std::is_sorted(all.begin(), all.end()));
      }
    }
  }
}

TEST_CASE("DataLoader drop_last cuts the short last batch", "[data]") {
  auto ds = std::make_shared<CountingDataset>(103);
  DataLoader loader(ds, {.batch_size = 10, .shuffle = true, .drop_last = true});
  auto batches = run_epoch(loader);
  REQUIRE(batches.size() == 10);
  REQUIRE(loader.num_batches() == 10);
  for (const auto& b : batches) REQUIRE(b.size() == 10);
  std::vector<int64_t> all = flatten(batches);
  REQUIRE(std::set<int64_t>(all.begin(), all.end()).size() == 100);
}

TEST_CASE("DataLoader shuffles are a function of seed and epoch", "[data]") {
  auto ds = std::make_shared<CountingDataset>(500);
  auto order = [&](uint64_t seed, int64_t epoch) {
    DataLoader loader(ds, {.batch_size = 64, .shuffle = true, .seed = seed});
    loader.set_epoch(epoch);
    return flatten(run_epoch(loader));
  };
  std::vector<int64_t> a = order(1, 0);
  REQUIRE(a == order(1, 0));
  REQUIRE(a != order(1, 1));
  REQUIRE(a != order(2, 0));
  std::vector<int64_t> identity(500);
  std::iota(identity.begin(), identity.end(), int64_t(0));
  REQUIRE(a != identity);
  REQUIRE(a == RandomSampler(500, 1).indices(0));
}

TEST_CASE("DataLoader with workers gives the batches of workers = 0", "[data]") {
  auto ds = std::make_shared<CountingDataset>(257, -1, 50);
  DataLoader serial(ds, {.batch_size = 8, .shuffle = true, .seed = 3});
  serial.set_epoch(2);
  auto want = run_epoch(serial);
  for (int workers : {1, 3, 8}) {
    for (int prefetch : {1, 4}) {
      DataLoader parallel(ds, {.batch_size = 8, .shuffle = true, .seed = 3, .num_workers = workers,
                               .prefetch_factor = prefetch});
      parallel.set_epoch(2);
      REQUIRE(run_epoch(parallel) == want);
    }
  }
}

TEST_CASE("DataLoader workers keep at most num_workers * prefetch_factor batches ahead", "[data]") {
  auto ds = std::make_shared<CountingDataset>(1000);
  DataLoader loader(ds, {.batch_size = 4, .num_workers = 2, .prefetch_factor = 2});
  auto it = loader.begin();  // the first batch has been taken by the caller
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Batches 0..(1 + 2 * 2) at most: the one handed out and four in flight, 4 samples each.
  REQUIRE(ds->gets.load() <= 4 * (1 + 2 * 2));
  REQUIRE(ds->gets.load() >= 4);
}

TEST_CASE("DataLoader surfaces a worker's exception in the caller, naming the sample", "[data]") {
  auto ds = std::make_shared<CountingDataset>(100, 42);
  for (int workers : {0, 1, 4}) {
    DataLoader loader(ds, {.batch_size = 5, .shuffle = true, .seed = 9, .num_workers = workers});
    int64_t batches = 0;
    try {
      for (Batch& b : loader) {
        (void)b;
        ++batches;
      }
      FAIL("expected an error");
    } catch (const std::exception& e) {
      std::string msg = e.what();
      INFO(msg);
      REQUIRE(msg.find("sample 42") != std::string::npos);
      REQUIRE(msg.find("cannot decode this one") != std::string::npos);
    }
    REQUIRE(batches < 20);
  }
}

TEST_CASE("DataLoader does not deadlock when the loop ends early or the loader goes away", "[data]") {
  auto ds = std::make_shared<CountingDataset>(10000, -1, 20);
  for (int workers : {1, 4}) {
    auto start = std::chrono::steady_clock::now();
    {
      auto loader = std::make_unique<DataLoader>(ds, DataLoaderOptions{.batch_size = 16, .num_workers = workers});
      int seen = 0;
      for (Batch& b : *loader) {
        (void)b;
        if (++seen == 3) break;
      }
      // A second epoch started and abandoned after one batch, with the loader destroyed while its workers run.
      auto it = loader->begin();
      REQUIRE(it != loader->end());
      loader.reset();
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(seconds < 5.0);
  }
}

TEST_CASE("DistributedShardSampler splits an epoch across ranks", "[data]") {
  std::vector<int64_t> all;
  for (int rank = 0; rank < 3; ++rank) {
    DistributedShardSampler s(distributed::DistributedSampler(100, 3, rank, true, 7));
    std::vector<int64_t> idx = s.indices(4);
    REQUIRE(int64_t(idx.size()) == s.size());
    REQUIRE(idx.size() == 34);
    all.insert(all.end(), idx.begin(), idx.end());
  }
  REQUIRE(std::set<int64_t>(all.begin(), all.end()).size() == 100);
  auto ds = std::make_shared<CountingDataset>(100);
  DataLoader loader(ds, {.batch_size = 10},
                    std::make_shared<DistributedShardSampler>(distributed::DistributedSampler(100, 3, 1, true, 7)));
  loader.set_epoch(4);
  REQUIRE(flatten(run_epoch(loader)) == DistributedShardSampler(distributed::DistributedSampler(100, 3, 1, true, 7)).indices(4));
}

TEST_CASE("TensorDataset and a custom collate", "[data]") {
  Tensor images = arange(0, 24, 1, {.dtype = kFloat32}).reshape({6, 2, 2});
  Tensor labels = from_vector<int64_t>({5, 4, 3, 2, 1, 0}, {6});
  auto ds = std::make_shared<TensorDataset>(images, labels);
  REQUIRE(ds->size() == 6);
  Collate sum_collate = [](std::vector<Example>& ex, const std::vector<int64_t>& idx) {
    double total = 0;
    for (Example& e : ex) total += sum(e.data).item<double>();
    return Batch{scalar_tensor(total), Tensor(), idx};
  };
  DataLoader loader(ds, {.batch_size = 4, .collate = sum_collate});
  std::vector<double> sums;
  for (Batch& b : loader) sums.push_back(b.data.item<double>());
  REQUIRE(sums == std::vector<double>{double(0 + 15) * 16 / 2, double(16 + 23) * 8 / 2});
  DataLoader plain(ds, {.batch_size = 6});
  for (Batch& b : plain) {
    REQUIRE(b.data.sizes() == Shape{6, 2, 2});
    REQUIRE(b.target.to_vector<int64_t>() == std::vector<int64_t>{5, 4, 3, 2, 1, 0});
  }
  REQUIRE_THROWS_WITH(TensorDataset(images, from_vector<int64_t>({1, 2}, {2})),
                      Catch::Contains("same first dimension"));
}

TEST_CASE("DataLoader leaves samples without data out of their batch, and skips emptied batches", "[data]") {
  // Multiples of 3 are unusable (no data), as ImageFolder's skip_bad_images returns them: with batch_size 1 their
  // batches are emptied, with 4 batches lose some rows.
  class Holey : public Dataset {
   public:
    int64_t size() const override { return 20; }
    Example get(int64_t i) const override {
      Tensor target = scalar_tensor(double(i), {.dtype = kInt64});
      if (i % 3 == 0) return {Tensor(), target};
      return {from_vector<float>({float(i), float(2 * i)}, {2}), target};
    }
  };
  auto ds = std::make_shared<Holey>();
  std::vector<int64_t> usable;
  for (int64_t i = 0; i < 20; ++i)
    if (i % 3) usable.push_back(i);
  for (int64_t batch : {1, 4}) {
    for (int workers : {0, 3}) {
      DataLoader loader(ds, {.batch_size = batch, .shuffle = true, .seed = 5, .num_workers = workers});
      std::vector<std::vector<int64_t>> batches = run_epoch(loader);
      for (const auto& b : batches) REQUIRE(!b.empty());
      std::vector<int64_t> all = flatten(batches);
      std::sort(all.begin(), all.end());
      REQUIRE(all == usable);
    }
  }
}

TEST_CASE("ListSampler gives its indices in its order every epoch", "[data]") {
  auto ds = std::make_shared<CountingDataset>(10);
  DataLoader loader(ds, {.batch_size = 2, .num_workers = 2}, std::make_shared<ListSampler>(std::vector<int64_t>{7, 2, 9}));
  for (int64_t epoch : {0, 3}) {
    loader.set_epoch(epoch);
    REQUIRE(run_epoch(loader) == std::vector<std::vector<int64_t>>{{7, 2}, {9}});
  }
}

TEST_CASE("pin_memory: pinned batches and asynchronous copies where a GPU is, the same batches without", "[data]") {
  auto ds = std::make_shared<CountingDataset>(50);
  DataLoader plain(ds, {.batch_size = 8, .shuffle = true, .seed = 3, .num_workers = 2});
  DataLoader pinned(ds, {.batch_size = 8, .shuffle = true, .seed = 3, .num_workers = 2, .pin_memory = true});
  REQUIRE(run_epoch(plain) == run_epoch(pinned));
  Tensor x = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(pin_memory_available() == cuda::is_available());
  if (!pin_memory_available()) {
    // As PyTorch: nothing is pinned without a GPU, pinning explicitly is an error saying why, copies are plain.
    for (Batch& b : pinned) REQUIRE(!is_pinned(b.data));
    REQUIRE_THROWS_WITH(pin_memory(x), Catch::Contains("[pin_memory] needs a GPU"));
    REQUIRE(!is_pinned(x));
    testing::check_equal(to_device(x, kCPU, true), x);
    if (testing::require_cuda()) FAIL("HT_REQUIRE_CUDA=1 but no CUDA device is available");
    WARN("CUDA not available: skipping the pinned-memory and asynchronous-copy checks");
    return;
  }
  for (Batch& b : pinned) {
    REQUIRE(is_pinned(b.data));
    REQUIRE(is_pinned(b.target));
  }
  Tensor p = pin_memory(x.t());  // a non-contiguous source becomes a contiguous pinned copy
  REQUIRE(is_pinned(p));
  REQUIRE(!is_pinned(x));
  testing::check_equal(p, x.t());
  // Copies queued behind a long chain of kernels on the default stream; the source freed right after the call
  // (its deleter waits for the copy).
  Generator gen(1);
  Tensor big = rand({1024, 1024}, gen).to(kCUDA);
  for (int k = 0; k < 20; ++k) big = div(matmul(big, big), 1024.0);
  std::vector<Tensor> copies, wants;
  for (int k = 0; k < 8; ++k) {
    Tensor host = rand({64, 3, 32, 32}, gen);
    wants.push_back(host);
    copies.push_back(to_device(pin_memory(host), kCUDA, true));
  }
  for (int k = 0; k < 8; ++k) {
    REQUIRE(copies[size_t(k)].device().is_cuda());
    testing::check_equal(copies[size_t(k)].to(kCPU), wants[size_t(k)]);  // ordered after the copy
  }
}
