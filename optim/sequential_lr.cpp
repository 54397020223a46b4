// SequentialLR: torch.optim.lr_scheduler.SequentialLR (PyTorch 2.x): rewinds the chained schedulers' first
// step, restarts the one for epoch 0, and at each milestone jumps the next one to its epoch 0 (closed form).
#include <algorithm>

#include "optim/lr_scheduler.h"

namespace ht::optim {

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::unique_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones, int64_t last_epoch)
    : LRScheduler(optimizer, -1), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  HT_CHECK(!schedulers_.empty(), "[SequentialLR] expects at least one scheduler, but got no scheduler.");
  for (size_t i = 0; i < schedulers_.size(); ++i)
    HT_CHECK(&schedulers_[i]->optimizer_ == &optimizer, "[SequentialLR] expects all schedulers to belong to the ",
             "same optimizer, but got a different one at index ", i);
  HT_CHECK(milestones_.size() + 1 == schedulers_.size(), "[SequentialLR] expects number of schedulers provided to ",
           "be one more than the number of milestone points, but got number of schedulers ", schedulers_.size(),
           " and the number of milestones to be equal to ", milestones_.size());
  last_epoch_ = last_epoch + 1;
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) optimizer.set_lr(g, *optimizer.group_extra(g, "initial_lr"));
  for (auto& s : schedulers_) s->last_epoch_ -= 1;  // undo the step each one made when it was built
  LRScheduler& first = *schedulers_[active_index(0)];
  first.initial_step();
  last_lr_ = first.get_last_lr();
}

size_t SequentialLR::active_index(int64_t epoch) const {  // bisect_right(milestones, epoch)
  return size_t(std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin());
}

void SequentialLR::step() {
  ++last_epoch_;
  size_t idx = active_index(last_epoch_);
  LRScheduler& s = *schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_) s.update_lr_at(0);
  else s.step();
  last_lr_ = s.get_last_lr();
}

Value SequentialLR::state_dict() const {
  Value out = Value::dict();
  Dict& d = out.to_dict();
  ValueList milestones, lrs, children;
  for (int64_t m : milestones_) milestones.emplace_back(m);
  for (double lr : last_lr_) lrs.emplace_back(lr);
  for (const auto& s : schedulers_) children.push_back(s->state_dict());
  d.set("_milestones", Value::list(std::move(milestones)));
  d.set("last_epoch", last_epoch_);
  d.set("_last_lr", Value::list(std::move(lrs)));
  d.set("_schedulers", Value::list(std::move(children)));
  return out;
}

void SequentialLR::load_state_dict(const Value& sd) {
  HT_CHECK(sd.is_dict(), "[SequentialLR] expected a state_dict dict, got ", sd.kind_name());
  const Dict& d = sd.to_dict();
  if (const Value* v = d.find("last_epoch")) last_epoch_ = v->to_int();
  if (const Value* v = d.find("_last_lr")) {
    last_lr_.clear();
    for (const Value& x : v->items()) last_lr_.push_back(x.to_double());
  }
  const Value* children = d.find("_schedulers");
  HT_CHECK(children && children->items().size() == schedulers_.size(), "[SequentialLR] expected '_schedulers' ",
           "with ", schedulers_.size(), " state_dicts");
  for (size_t i = 0; i < schedulers_.size(); ++i) schedulers_[i]->load_state_dict(children->items()[i]);
}

}  // namespace ht::optim
