#include "data/dataloader.h"

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "data/pin_memory.h"

namespace ht::data {

namespace {

Tensor stack_rows(const std::vector<Tensor>& rows, const char* what) {
  const Tensor& first = rows.front();
  Shape shape{int64_t(rows.size())};
  for (int64_t s : first.sizes()) shape.push_back(s);
  Tensor out = empty(shape, {.dtype = first.dtype()});
  size_t bytes = size_t(first.numel()) * first.element_size();
  char* to = static_cast<char*>(out.raw_data());
  for (size_t k = 0; k < rows.size(); ++k) {
    HT_CHECK(rows[k].sizes() == first.sizes() && rows[k].dtype() == first.dtype(),
             "[default_collate] expected every example's ", what, " to have shape ", shape_str(first.sizes()),
             " and dtype ", dtype_name(first.dtype()), ", got ", shape_str(rows[k].sizes()), " ",
             dtype_name(rows[k].dtype()), " at position ", k, " of the batch");
    Tensor c = rows[k].to(kCPU).contiguous();
    std::memcpy(to + k * bytes, c.raw_data(), bytes);
  }
  return out;
}

}  // namespace

Batch default_collate(std::vector<Example>& examples, const std::vector<int64_t>& indices) {
  HT_CHECK(!examples.empty(), "[default_collate] expected at least one example");
  std::vector<Tensor> data, target;
  for (Example& e : examples) {
    data.push_back(e.data);
    target.push_back(e.target);
  }
  return {stack_rows(data, "data"), stack_rows(target, "target"), indices};
}

// One epoch: the batches' index lists, and (with workers) the threads that fill `ready` ahead of the caller.
class EpochRun {
 public:
  EpochRun(std::shared_ptr<Dataset> dataset, const DataLoaderOptions& options, std::vector<std::vector<int64_t>> batches)
      : dataset_(std::move(dataset)), options_(options), batches_(std::move(batches)) {
    if (!options_.collate) options_.collate = default_collate;
    capacity_ = int64_t(options_.num_workers) * std::max(options_.prefetch_factor, 1);
    for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { work(); });
  }
  ~EpochRun() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  // The next batch that has data (batches whose every sample was skipped are passed over).
  std::optional<Batch> next() {
    while (consumed_ < int64_t(batches_.size())) {
      Batch b = workers_.empty() ? make(batches_[size_t(consumed_++)]) : take_ready();
      if (b.data.defined()) return b;
    }
    return std::nullopt;
  }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };

  Batch take_ready() {
    Result r;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_cv_.wait(lock, [&] { return ready_.count(consumed_) > 0; });
      r = std::move(ready_[consumed_]);
      ready_.erase(consumed_);
      ++consumed_;
    }
    work_cv_.notify_all();
    if (r.error) std::rethrow_exception(r.error);
    return std::move(r.batch);
  }

  Batch make(const std::vector<int64_t>& indices) const {
    std::vector<Example> examples;
    std::vector<int64_t> kept;
    examples.reserve(indices.size());
    for (int64_t i : indices) {
      try {
        Example e = dataset_->get(i);
        if (!e.data.defined()) continue;
        examples.push_back(std::move(e));
        kept.push_back(i);
      } catch (const std::exception& e) {
        fail("[DataLoader] loading sample ", i, " failed: ", e.what());
      }
    }
    if (examples.empty()) return {};
    Batch batch = options_.collate(examples, kept);
    if (options_.pin_memory) {
      batch.data = pin_memory(batch.data);
      batch.target = pin_memory(batch.target);
    }
    return batch;
  }

  void work() {
    int64_t n = int64_t(batches_.size());
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      work_cv_.wait(lock, [&] { return stop_ || next_ >= n || next_ < consumed_ + capacity_; });
      if (stop_ || next_ >= n) return;
      int64_t b = next_++;
      lock.unlock();
      Result r;
      try {
        r.batch = make(batches_[size_t(b)]);
      } catch (...) {
        r.error = std::current_exception();
      }
      lock.lock();
      if (stop_) return;
      ready_[b] = std::move(r);
      ready_cv_.notify_all();
    }
  }

  std::shared_ptr<Dataset> dataset_;
  DataLoaderOptions options_;
  std::vector<std::vector<int64_t>> batches_;
  int64_t capacity_ = 0;
  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  bool stop_ = false;
  int64_t next_ = 0, consumed_ = 0;  // consumed_ is written under mutex_ when workers run
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> workers_;
};

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options, std::shared_ptr<Sampler> sampler)
    : dataset_(std::move(dataset)), options_(std::move(options)), sampler_(std::move(sampler)) {
  HT_CHECK(dataset_ != nullptr, "[DataLoader] expected a dataset, got null");
  HT_CHECK(options_.batch_size > 0, "[DataLoader] expected batch_size > 0, got ", options_.batch_size);
  HT_CHECK(options_.num_workers >= 0, "[DataLoader] expected num_workers >= 0, got ", options_.num_workers);
  if (options_.pin_memory && !pin_memory_available()) {
    options_.pin_memory = false;
    static std::once_flag warned;
    std::call_once(warned, [] {
      std::fprintf(stderr, "warning: DataLoader pin_memory is set but no GPU is available: pinned memory is not used\n");
    });
  }
  if (!sampler_) {
    int64_t n = dataset_->size();
    if (options_.shuffle) sampler_ = std::make_shared<RandomSampler>(n, options_.seed);
    else sampler_ = std::make_shared<SequentialSampler>(n);
  }
}

int64_t DataLoader::num_batches() const {
  int64_t n = sampler_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

DataLoader::Iterator DataLoader::begin() {
  std::vector<int64_t> order = sampler_->indices(epoch_);
  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < order.size(); start += size_t(options_.batch_size)) {
    size_t end = std::min(order.size(), start + size_t(options_.batch_size));
    if (options_.drop_last && end - start < size_t(options_.batch_size)) break;
    batches.emplace_back(order.begin() + std::ptrdiff_t(start), order.begin() + std::ptrdiff_t(end));
  }
  dataset_->set_epoch(epoch_);
  return Iterator(std::make_shared<EpochRun>(dataset_, options_, std::move(batches)));
}

DataLoader::Iterator::Iterator(std::shared_ptr<EpochRun> run) : run_(std::move(run)) { current_ = run_->next(); }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  current_.reset();
  current_ = run_->next();
  return *this;
}

}  // namespace ht::data
