// train_resnet18's evaluation: top-1 and top-5 accuracy and the mean cross-entropy of a model over a split, as
// torchvision's reference script reports them (references/classification/utils.py: accuracy(output, target,
// topk=(1, 5))). Counts are sums, so ranks can add theirs up.
#pragma once
#include <cmath>

#include "examples/common.h"

namespace examples {

struct EvalSums {
  double top1 = 0, top5 = 0, loss = 0, n = 0;
  double accuracy() const { return n ? top1 / n : 0.0; }
  double top5_accuracy() const { return n ? top5 / n : 0.0; }
  double mean_loss() const { return n ? loss / n : 0.0; }
};

// Adds a batch's top-5 hits, loss and count to `s` from its float32 logits (row-major, labels.size() rows).
// The target is in the top 5 when fewer than 5 logits exceed its own (torch.topk breaks ties in no promised
// order; this counts a tie for the fifth place as a hit). The loss is log-sum-exp minus the target's logit, in
// double from the float32 logits.
inline void add_top5_and_loss(EvalSums& s, const std::vector<float>& logits, const std::vector<int64_t>& labels) {
  const size_t n = labels.size(), c = n ? logits.size() / n : 0;
  for (size_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * c;
    const float target = row[labels[i]];
    int64_t above = 0;
    double mx = row[0], sum = 0;
    for (size_t k = 0; k < c; ++k) {
      above += row[k] > target;
      mx = std::max(mx, double(row[k]));
    }
    for (size_t k = 0; k < c; ++k) sum += std::exp(double(row[k]) - mx);
    s.top5 += above < 5;
    s.loss += mx + std::log(sum) - double(target);
  }
  s.n += double(n);
}

// Images [begin, end) of `split`. Top-1 is the argmax (the first of equal maxima, as torch.argmax).
inline EvalSums evaluate_sums(ht::nn::Module& model, const Split& split, int64_t begin, int64_t end, const Feed& feed,
                              int64_t batch_size) {
  EvalSums s;
  std::vector<float> logits;
  s.top1 = double(count_correct(model, split, begin, end, feed, batch_size, &logits));
  add_top5_and_loss(s, logits, split.labels.narrow(0, begin, end - begin).to_vector<int64_t>());
  return s;
}

}  // namespace examples
