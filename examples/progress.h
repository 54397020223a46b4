// train_resnet18's progress line and end-of-run summary, in the manner of tqdm (github.com/tqdm/tqdm): each
// epoch's bar shows batches done, elapsed<remaining for the epoch, the rate, the loss, and elapsed<remaining for
// the whole run; at the end one summary (best and last top-1, wall time, images/s, files written). On a terminal
// the bar is redrawn in place; into a file or pipe (a log) it prints one plain line per tenth of an epoch, so logs
// stay short. Rank 0 alone calls it.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace examples {

using ProgressClock = std::chrono::steady_clock;

inline double seconds_since(ProgressClock::time_point t) {
  return std::chrono::duration<double>(ProgressClock::now() - t).count();
}

// tqdm's time format: MM:SS, or H:MM:SS from an hour on; "?" while there is no rate to estimate from.
inline std::string clock_text(double secs) {
  if (!std::isfinite(secs) || secs < 0) return "?";
  long s = std::lround(secs);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(text, sizeof text, "%02ld:%02ld", s / 60, s % 60);
  return text;
}

// The run as a whole: batches and images done, time spent training and evaluating, accuracies seen.
class RunProgress {
 public:
  // Epochs [first_epoch, epochs) are trained, the first from batch `first_batch` (a resumed run); each has
  // `batches` batches of `batch_size` of a process's `samples` (the sampler's share), on `world` processes.
  RunProgress(int64_t first_epoch, int64_t epochs, int64_t first_batch, int64_t batches, int64_t batch_size,
              int64_t samples, int world)
      : epochs_left_(std::max<int64_t>(epochs - first_epoch, 0)),
        batches_left_(std::max<int64_t>(epochs_left_ * batches - first_batch, 0)),
        batch_size_(batch_size), samples_(samples), world_(world) {}

  // Batch `step` (0-based) of an epoch is done, `seconds` after the previous one (or the epoch's start).
  void batch_done(int64_t step, double seconds) {
    ++batches_done_;
    batches_left_ = std::max<int64_t>(batches_left_ - 1, 0);
    images_ += std::clamp<int64_t>(samples_ - step * batch_size_, 0, batch_size_) * world_;
    train_seconds_ += seconds;
    last_batch_end_ = ProgressClock::now();
  }
  // Epoch `epoch` (1-based) was evaluated at top-1 `accuracy`; the evaluation's time (since the last batch)
  // estimates those to come.
  void epoch_done(int64_t epoch, double accuracy) {
    eval_seconds_ = seconds_since(last_batch_end_);
    epochs_left_ = std::max<int64_t>(epochs_left_ - 1, 0);
    if (accuracy > best_) {
      best_ = accuracy;
      best_epoch_ = epoch;
    }
    ++epochs_seen_;
  }
  double elapsed() const { return seconds_since(start_); }
  // Batches left at the rate so far, plus the evaluations left at the last one's duration.
  double remaining() const {
    if (batches_done_ == 0) return NAN;
    return double(batches_left_) * train_seconds_ / double(batches_done_) + double(epochs_left_) * eval_seconds_;
  }

  // The run's last lines (before `test accuracy: ...`): accuracies, time, throughput, files.
  void print_summary(double last_accuracy, const std::vector<std::string>& files) const {
    std::printf("done in %s (%.1f s): top-1 last %.4f", clock_text(elapsed()).c_str(), elapsed(), last_accuracy);
    if (epochs_seen_ > 0) std::printf(", best %.4f (epoch %lld)", best_, static_cast<long long>(best_epoch_));
    if (batches_done_ > 0)
      std::printf("; %lld images trained at %.0f img/s", static_cast<long long>(images_), double(images_) / train_seconds_);
    std::printf("\nwrote");
    for (const std::string& f : files) std::printf(" %s", f.c_str());
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  ProgressClock::time_point start_ = ProgressClock::now(), last_batch_end_ = start_;
  int64_t epochs_left_, batches_left_, batch_size_, samples_, world_;
  int64_t batches_done_ = 0, images_ = 0, epochs_seen_ = 0, best_epoch_ = 0;
  double train_seconds_ = 0, eval_seconds_ = 0, best_ = -1;
};

// One epoch's bar (made when the epoch starts).
class Progress {
 public:
  explicit Progress(int64_t batches) : total_(batches), every_(std::max<int64_t>(1, batches / 10)) {}

  // Batch `step` (1-based) is done with `loss` at `images_per_s`; `scale`: the GradScaler's, when scaling.
  void show(RunProgress& run, int64_t epoch, int64_t epochs, int64_t step, double loss, double images_per_s,
            std::optional<double> scale) {
    run.batch_done(step - 1, seconds_since(last_));
    last_ = ProgressClock::now();
    if (!first_step_) first_step_ = step;
    const bool tty = isatty(STDOUT_FILENO);
    if (!tty && step % every_ != 0 && step != total_) return;
    double elapsed = seconds_since(start_);
    double remaining = double(total_ - step) * elapsed / double(step - *first_step_ + 1);
    char tail[160];
    std::snprintf(tail, sizeof tail, "%lld/%lld [%s<%s, %.0f img/s] loss %.4f", static_cast<long long>(step),
                  static_cast<long long>(total_), clock_text(elapsed).c_str(), clock_text(remaining).c_str(),
                  images_per_s, loss);
    char extra[48] = "";
    if (scale) std::snprintf(extra, sizeof extra, "  scale %g", *scale);
    std::string whole = "  run " + clock_text(run.elapsed()) + "<" + clock_text(run.remaining());
    if (tty) {
      int filled = int(20 * step / std::max<int64_t>(total_, 1));
      std::printf("\repoch %lld/%lld [%-20s] %s%s%s\x1b[K", static_cast<long long>(epoch), static_cast<long long>(epochs),
                  std::string(size_t(filled), '=').c_str(), tail, extra, whole.c_str());
      if (step == total_) std::printf("\n");
    } else {
      std::printf("epoch %lld/%lld %s%s%s\n", static_cast<long long>(epoch), static_cast<long long>(epochs), tail, extra,
                  whole.c_str());
    }
    std::fflush(stdout);
  }

 private:
  int64_t total_, every_;
  std::optional<int64_t> first_step_;  // a resumed epoch starts past batch 1
  ProgressClock::time_point start_ = ProgressClock::now(), last_ = start_;
};

}  // namespace examples
