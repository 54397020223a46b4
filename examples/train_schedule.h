// train_resnet18's optimizer and learning-rate schedule flags, built as torchvision's classification reference
// (references/classification/train.py) builds them: --opt sgd|adam|adamw, --sched step|cosine stepped once per
// epoch (a LinearLR warmup of --warmup-epochs first, joined by SequentialLR), --sched onecycle stepped once per
// optimizer step (OneCycleLR defines its schedule in steps).
#pragma once
#include <memory>
#include <string>

#include <halftorch/halftorch.h>

namespace examples {

struct OptimFlags {
  std::string opt = "adam", sched = "none";
  double lr = 1e-3, momentum = 0.9, weight_decay = -1;  // weight_decay < 0: the optimizer's own default
  bool nesterov = false;
  int64_t warmup_epochs = 0, lr_step_size = 30;
  double warmup_decay = 0.01, lr_gamma = 0.1, lr_min = 0;
};

inline std::unique_ptr<ht::optim::Optimizer> make_optimizer(const OptimFlags& f, std::vector<ht::Tensor> params) {
  if (f.opt == "sgd")
    return std::make_unique<ht::optim::SGD>(std::move(params),
                                            ht::optim::SGDOptions{.lr = f.lr, .momentum = f.momentum,
                                                                  .weight_decay = std::max(0.0, f.weight_decay),
                                                                  .nesterov = f.nesterov});
  if (f.opt == "adamw")
    return std::make_unique<ht::optim::AdamW>(
        std::move(params), ht::optim::AdamWOptions{.lr = f.lr, .weight_decay = f.weight_decay < 0 ? 1e-2 : f.weight_decay});
  return std::make_unique<ht::optim::Adam>(std::move(params),
                                           ht::optim::AdamOptions{.lr = f.lr, .weight_decay = std::max(0.0, f.weight_decay)});
}

// Which --opt wrote a torch.optim state_dict, told by its param groups: SGD's hold momentum and dampening, Adam's
// and AdamW's betas, and torch 2.x (and halftorch) mark AdamW's with decoupled_weight_decay=True. "adam or adamw"
// when only betas tell (torch 1.x), "" when nothing does.
inline std::string saved_optimizer(const ht::Value& sd) {
  if (!sd.is_dict() || !sd.to_dict().contains("param_groups")) return "";
  const ht::Value& groups = sd["param_groups"];
  if (!groups.is_list() || groups.items().empty() || !groups.items()[0].is_dict()) return "";
  const ht::Dict& g = groups.items()[0].to_dict();
  if (g.contains("momentum") && g.contains("dampening")) return "sgd";
  if (!g.contains("betas")) return "";
  const ht::Value* decoupled = g.find(std::string("decoupled_weight_decay"));
  if (!decoupled || !decoupled->is_bool()) return "adam or adamw";
  return decoupled->to_bool() ? "adamw" : "adam";
}

// --resume with another --opt than the checkpoint's: an error naming both, and the ways on.
inline void check_resumed_optimizer(const ht::Value& sd, const std::string& opt, const std::string& path) {
  std::string saved = saved_optimizer(sd);
  bool same = saved.empty() || saved == opt || (saved == "adam or adamw" && opt != "sgd");
  HT_CHECK(same, path, ": its optimizer state was written by --opt ", saved, ", but this run has --opt ", opt,
           "; resume with --opt ", saved == "adam or adamw" ? std::string("adam") : saved,
           ", or start a new run from its weights with --init ", path, " --opt ", opt);
}

// A resumed 16-bit run whose optimizer state has no 'master_param' (a checkpoint written by PyTorch): the fp32
// masters are rebuilt from the checkpoint's fp32 'model' weights rather than from their 16-bit rounding.
// Returns whether it rebuilt them.
inline bool rebuild_masters(ht::optim::Optimizer& opt, const ht::nn::Module& model, const ht::Value& checkpoint) {
  const ht::Value& state = checkpoint["optimizer"]["state"];
  for (const auto& [index, entry] : state.to_dict().items())
    if (entry.is_dict() && entry.to_dict().contains("master_param")) return false;
  ht::StateDict weights = ht::to_state_dict(checkpoint["model"]);
  std::vector<ht::Tensor> fp32;
  for (const auto& [name, p] : model.named_parameters()) {
    const ht::Tensor* w = weights.find(name);
    HT_CHECK(w, "'model' has no '", name, "' to rebuild its fp32 master from");
    fp32.push_back(w->to(p.device(), ht::kFloat32));
  }
  opt.load_master_params(fp32);
  return true;
}

struct Schedule {
  std::unique_ptr<ht::optim::LRScheduler> scheduler;  // null for --sched none
  bool per_step = false;                              // stepped after every optimizer step, else every epoch
};

// `epochs` is the run's length and `steps_per_epoch` the optimizer steps in one epoch.
inline Schedule make_schedule(const OptimFlags& f, ht::optim::Optimizer& opt, int64_t epochs, int64_t steps_per_epoch) {
  using namespace ht::optim;
  Schedule s;
  if (f.sched == "onecycle") {
    s.scheduler = std::make_unique<OneCycleLR>(
        opt, f.lr, OneCycleOptions{.epochs = std::max<int64_t>(epochs, 1), .steps_per_epoch = std::max<int64_t>(steps_per_epoch, 1)});
    s.per_step = true;
    return s;
  }
  std::unique_ptr<LRScheduler> main;
  if (f.sched == "step") main = std::make_unique<StepLR>(opt, f.lr_step_size, f.lr_gamma);
  else if (f.sched == "cosine")
    main = std::make_unique<CosineAnnealingLR>(opt, std::max<int64_t>(epochs - f.warmup_epochs, 1), f.lr_min);
  if (f.warmup_epochs > 0) {
    std::vector<std::unique_ptr<LRScheduler>> chain;
    chain.push_back(std::make_unique<LinearLR>(opt, f.warmup_decay, 1.0, f.warmup_epochs));
    if (main) {
      chain.push_back(std::move(main));
      s.scheduler = std::make_unique<SequentialLR>(opt, std::move(chain), std::vector<int64_t>{f.warmup_epochs});
    } else {
      s.scheduler = std::move(chain[0]);
    }
  } else {
    s.scheduler = std::move(main);
  }
  return s;
}

}  // namespace examples
