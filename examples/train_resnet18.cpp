// train_resnet18: trains torchvision's ResNet-18 on Fashion-MNIST or CIFAR-10 with Adam, in fp16 (half model,
// fp32 master weights, GradScaler), bf16 (bf16 model, fp32 master weights) or fp32, or with PyTorch's AMP recipe
// (--amp: fp32 model under autocast, GradScaler for float16), in NCHW or channels_last, then saves the model as
// `model.half(); torch.save(model.state_dict(), ...)` would. Checkpoints hold the whole training state and resume bit-exactly on CPU.
// Under a launcher (scripts/launch -n N, which sets RANK, WORLD_SIZE, MASTER_ADDR, ...) it trains data-parallel:
// each rank takes its shard of every epoch (DistributedSampler) with --batch-size images per step, gradients
// are averaged by DistributedDataParallel (Gloo on CPU, NCCL on GPU), and rank 0 alone prints, logs and writes
// files, which are the same files as a single process writes.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "examples/checkpoint_files.h"
#include "examples/common.h"
#include "examples/eval_metrics.h"
#include "examples/folder_data.h"
#include "examples/model_ema.h"
#include "examples/progress.h"
#include "examples/tensorboard.h"
#include "examples/train_schedule.h"

namespace {

struct Args {
  std::string data = "fashion-mnist", data_dir, device = "auto", precision = "fp16", amp;
  int64_t epochs = 1, batch_size = 128, limit = 0;
  uint64_t seed = 0;
  examples::OptimFlags optim;  // --opt, --lr, --momentum, --nesterov, --weight-decay, --sched and its knobs
  double clip_grad = 0, label_smoothing = 0, model_ema = 0;
  int64_t accum_steps = 1, save_every = 0, keep = 0;
  bool shuffle = true, augment = false, channels_last = false, skip_bad_images = false;
  std::string init, out = "model_fp16.pth", checkpoint, resume, log, tensorboard, reduce_dtype = "grad";
  int64_t image_size = 224, resize = 0, workers = 2;  // --data folder (examples/folder_data.h)
  std::string pretrained;
};

const char* kUsage =
    "usage: train_resnet18 [--data fashion-mnist|cifar10] [--data-dir DIR] [--epochs N] [--batch-size B]\n"
    "                      [--opt adam|adamw|sgd] [--lr X] [--momentum M] [--nesterov] [--weight-decay X]\n"
    "                      [--sched none|step|cosine|onecycle] [--warmup-epochs N] [--warmup-decay F]\n"
    "                      [--lr-step-size N] [--lr-gamma G] [--lr-min X]\n"
    "                      [--clip-grad NORM] [--accum-steps K] [--label-smoothing E] [--model-ema DECAY] [--limit N] [--no-shuffle] [--seed S] [--augment]\n"
    "                      [--device auto|cpu|cuda] [--precision fp16|bf16|fp32] [--amp float16|bfloat16]\n"
    "                      [--channels-last] [--init W.pth]\n"
    "                      [--out model_fp16.pth] [--checkpoint CK.pth] [--save-every N] [--keep K]\n"
    "                      [--resume CK.pth|auto] [--log LOG.jsonl] [--tensorboard DIR]\n"
    "                      [--reduce-dtype grad|fp32]\n"
    "       --data folder --data-dir DIR (DIR/train/<class>/*, DIR/val/<class>/*) [--image-size S] [--resize R]\n"
    "                      [--workers N] [--pretrained RESNET18.pth] [--skip-bad-images]\n"
    "Under scripts/launch -n N (or RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT) it trains on N processes;\n"
    "--batch-size is then per process.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Args parse(int argc, char** argv) {
  Args a;
  bool precision_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(k + " needs a value");
      return argv[++i];
    };
    auto number = [&](auto& dst) {
      std::string v = value();
      try {
        size_t used = 0;
        if constexpr (std::is_floating_point_v<std::decay_t<decltype(dst)>>) dst = std::stod(v, &used);
        else dst = static_cast<std::decay_t<decltype(dst)>>(std::stoll(v, &used));
        if (used != v.size()) throw std::invalid_argument(v);
      } catch (const std::logic_error&) {
        throw UsageError(k + " expects a number, got '" + v + "'");
      }
    };
    if (k == "--help" || k == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else if (k == "--data") a.data = value();
    else if (k == "--data-dir") a.data_dir = value();
    else if (k == "--epochs") number(a.epochs);
    else if (k == "--batch-size") number(a.batch_size);
    else if (k == "--opt") a.optim.opt = value();
    else if (k == "--lr") number(a.optim.lr);
    else if (k == "--momentum") number(a.optim.momentum);
    else if (k == "--nesterov") a.optim.nesterov = true;
    else if (k == "--weight-decay") number(a.optim.weight_decay);
    else if (k == "--sched") a.optim.sched = value();
    else if (k == "--warmup-epochs") number(a.optim.warmup_epochs);
    else if (k == "--warmup-decay") number(a.optim.warmup_decay);
    else if (k == "--lr-step-size") number(a.optim.lr_step_size);
    else if (k == "--lr-gamma") number(a.optim.lr_gamma);
    else if (k == "--lr-min") number(a.optim.lr_min);
    else if (k == "--clip-grad") number(a.clip_grad);
    else if (k == "--accum-steps") number(a.accum_steps);
    else if (k == "--label-smoothing") number(a.label_smoothing);
    else if (k == "--model-ema") number(a.model_ema);
    else if (k == "--limit") number(a.limit);
    else if (k == "--seed") number(a.seed);
    else if (k == "--no-shuffle") a.shuffle = false;
    else if (k == "--augment") a.augment = true;
    else if (k == "--device") a.device = value();
    else if (k == "--precision") {
      a.precision = value();
      precision_given = true;
    } else if (k == "--amp") a.amp = value();
    else if (k == "--channels-last") a.channels_last = true;
    else if (k == "--init") a.init = value();
    else if (k == "--out") a.out = value();
    else if (k == "--checkpoint") a.checkpoint = value();
    else if (k == "--resume") a.resume = value();
    else if (k == "--save-every") number(a.save_every);
    else if (k == "--keep") number(a.keep);
    else if (k == "--log") a.log = value();
    else if (k == "--tensorboard") a.tensorboard = value();
    else if (k == "--reduce-dtype") a.reduce_dtype = value();
    else if (k == "--image-size") number(a.image_size);
    else if (k == "--resize") number(a.resize);
    else if (k == "--workers") number(a.workers);
    else if (k == "--pretrained") a.pretrained = value();
    else if (k == "--skip-bad-images") a.skip_bad_images = true;
    else throw UsageError("unknown argument '" + k + "'");
  }
  if (a.precision != "fp16" && a.precision != "bf16" && a.precision != "fp32")
    throw UsageError("--precision must be fp16, bf16 or fp32");
  if (!a.amp.empty()) {
    if (a.amp != "float16" && a.amp != "bfloat16") throw UsageError("--amp must be float16 or bfloat16");
    if (precision_given && a.precision != "fp32")
      throw UsageError("--amp trains fp32 parameters under autocast; it cannot be combined with --precision " + a.precision);
    a.precision = "fp32";
  }
  if (a.reduce_dtype != "grad" && a.reduce_dtype != "fp32") throw UsageError("--reduce-dtype must be grad or fp32");
  const examples::OptimFlags& o = a.optim;
  if (o.opt != "adam" && o.opt != "adamw" && o.opt != "sgd") throw UsageError("--opt must be adam, adamw or sgd");
  if (o.nesterov && o.opt != "sgd") throw UsageError("--nesterov is an SGD option (--opt sgd)");
  if (o.sched != "none" && o.sched != "step" && o.sched != "cosine" && o.sched != "onecycle")
    throw UsageError("--sched must be none, step, cosine or onecycle");
  if (o.warmup_epochs < 0) throw UsageError("--warmup-epochs must be 0 or more");
  if (o.warmup_epochs > 0 && o.sched == "onecycle")
    throw UsageError("--sched onecycle warms up by itself (its first 30% of steps); drop --warmup-epochs");
  if (o.warmup_decay <= 0 || o.warmup_decay > 1) throw UsageError("--warmup-decay must be in (0, 1]");
  if (o.lr_step_size <= 0) throw UsageError("--lr-step-size must be positive");
  if (a.clip_grad < 0) throw UsageError("--clip-grad must be positive (0: no clipping)");
  if (a.save_every < 0 || a.keep < 0) throw UsageError("--save-every and --keep must be 0 or more");
  if ((a.save_every > 0 || a.keep > 0 || a.resume == "auto") && a.checkpoint.empty())
    throw UsageError("--save-every, --keep and --resume auto need --checkpoint FILE");
  if (a.model_ema < 0 || a.model_ema >= 1) throw UsageError("--model-ema must be a decay in [0, 1), e.g. 0.9998");
  if (a.accum_steps <= 0) throw UsageError("--accum-steps must be positive");
  if (a.label_smoothing < 0 || a.label_smoothing > 1) throw UsageError("--label-smoothing must be between 0 and 1");
  if (a.epochs < 0 || a.batch_size <= 0 || a.limit < 0) throw UsageError("--epochs, --batch-size and --limit must be positive");
  return a;
}

// Random crop (padding 4) and horizontal flip of a CIFAR batch, drawn from (seed, epoch, step).
ht::Tensor augment_batch(const ht::Tensor& x, uint64_t key) {
  int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  ht::Tensor out = ht::zeros(x.sizes());
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    uint64_t r = ht::splitmix64(key + uint64_t(i));
    int64_t dy = int64_t(r % 9) - 4, dx = int64_t((r >> 8) % 9) - 4;
    bool flip = (r >> 16) & 1;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          int64_t sy = y + dy, sx = (flip ? w - 1 - xx : xx) + dx;
          if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;  // zero padding
          dst[((i * c + ch) * h + y) * w + xx] = src[((i * c + ch) * h + sy) * w + sx];
        }
  }
  return out;
}

// The model's state_dict with every floating tensor in `dtype` (parameters from `weights` when given).
ht::StateDict state_dict_as(const ht::nn::Module& model, ht::DType dtype, const std::vector<ht::Tensor>* weights) {
  ht::StateDict sd = model.state_dict();
  auto params = model.named_parameters();
  size_t p = 0;
  for (auto& [name, t] : sd.tensors) {
    if (weights && p < params.size() && params[p].first == name) t = (*weights)[p++];
    if (t.is_floating_point()) t = t.to(ht::kCPU, dtype).clone(ht::MemoryFormat::Contiguous);
    else t = t.cpu().clone(ht::MemoryFormat::Contiguous);
  }
  return sd;
}

using examples::Progress;

namespace dist = ht::distributed;
int g_rank = 0;

// An integer entry of a resumed checkpoint, or `fallback` with a one-line note when the file has none (a
// checkpoint written in Python may hold only 'model' and 'optimizer'); a wrong type names the key.
int64_t checkpoint_int(const ht::Value& ck, const char* key, int64_t fallback, const std::string& path,
                       const char* what_then) {
  if (!ck.to_dict().contains(key)) {
    if (g_rank == 0) std::printf("note: %s has no '%s'; %s\n", path.c_str(), key, what_then);
    return fallback;
  }
  const ht::Value& v = ck[key];
  HT_CHECK(v.is_int(), path, ": expected '", key, "' to be an integer, got ", v.kind_name());
  return v.to_int();
}

int run(const Args& a) {
  std::shared_ptr<dist::ProcessGroup> pg;
  if (dist::launched_from_env()) {
    dist::init_process_group();
    pg = dist::default_group_ptr();
    g_rank = pg->rank();
  }
  const int world = pg ? pg->size() : 1;
  const bool lead = g_rank == 0;  // rank 0 alone prints, logs and writes files
  const bool folder = a.data == "folder";
  HT_CHECK(!folder || !a.data_dir.empty(), "--data folder needs --data-dir DIR");
  examples::DataSpec spec = folder ? examples::DataSpec{"folder", {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}, 3}
                                   : examples::data_spec(a.data);
  std::string dir = a.data_dir.empty() ? examples::default_data_dir(spec) : a.data_dir;
  ht::Device device = examples::pick_device(a.device);
  if (pg && device.is_cuda() && a.device.find(':') == std::string::npos) device = pg->cuda_device();
  // The model's dtype (fp32 under --amp), and whether losses are scaled: 16-bit float gradients need it, bf16's
  // fp32 exponent range does not.
  ht::DType dtype = examples::precision_dtype(a.precision);
  examples::Feed feed{device, dtype, a.channels_last};
  if (!a.amp.empty()) feed.autocast = examples::amp_dtype(a.amp);
  const bool scaled = dtype == ht::kFloat16 || feed.autocast == ht::kFloat16;
  const std::string recipe = a.amp.empty() ? a.precision : "fp32 + autocast " + a.amp;

  uint64_t seed = a.seed;
  int64_t start_epoch = 0, global_step = -1;  // -1: the checkpoint has none; derived from the epoch below
  ht::Value resume_state;
  // --resume auto: continue from --checkpoint when an earlier run (killed or finished) left one, else start
  std::string resume = a.resume;
  if (resume == "auto") resume = std::filesystem::exists(a.checkpoint) ? a.checkpoint : "";
  // loads the checkpoint's entry `key`; an error names the file and the entry
  auto resume_part = [&](const char* key, const auto& load) {
    try {
      load(resume_state[key]);
    } catch (const ht::Error& e) {
      ht::fail(resume, ": '", key, "': ", e.what());
    }
  };
  if (!resume.empty()) {
    if (lead && a.resume == "auto") std::printf("resuming from %s\n", resume.c_str());
    resume_state = ht::load(resume);
    HT_CHECK(resume_state.is_dict() && resume_state.to_dict().contains("model") &&
                 resume_state.to_dict().contains("optimizer"),
             resume, ": not a training checkpoint (expected a dict with 'model' and 'optimizer', as train_resnet18 "
             "writes or torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), ...}) does)");
    seed = uint64_t(checkpoint_int(resume_state, "seed", int64_t(a.seed), resume, "using --seed"));
    start_epoch = checkpoint_int(resume_state, "epoch", 0, resume, "starting at epoch 0");
    global_step = checkpoint_int(resume_state, "global_step", -1, resume, "counting steps from the epoch");
  }

  std::vector<std::string> classes;
  int64_t resize = a.resize ? a.resize : examples::default_resize(a.image_size);
  // folder images are decoded batch by batch as training and evaluation read them (examples/folder_data.h)
  examples::FolderSplitOptions fo{a.image_size, resize, false, seed, a.skip_bad_images, int(a.workers), a.limit};
  examples::SplitData train, test;
  if (folder) {
    test = examples::folder_split_data(dir, "val", fo);
    fo.augment = a.augment;
    train = examples::folder_split_data(dir, "train", fo);
    classes = train.folder->classes();
  } else {
    train.memory = examples::load_split(spec, dir, true, a.limit);
    test.memory = examples::load_split(spec, dir, false, a.limit);
  }
  const int64_t num_classes = folder ? int64_t(classes.size()) : 10;

  ht::manual_seed(seed);
  auto model = ht::nn::resnet18({.num_classes = num_classes, .in_channels = spec.channels});
  if (!a.pretrained.empty()) examples::load_pretrained(*model, a.pretrained, num_classes);
  if (!a.init.empty()) {
    try {
      model->load_state_dict(examples::read_weights(a.init));
    } catch (const ht::Error& e) {
      ht::fail("--init ", a.init, ": ", e.what());
    }
  }
  if (!resume_state.is_none())
    resume_part("model", [&](const ht::Value& v) { model->load_state_dict(ht::to_state_dict(v)); });
  model->to(device).to(dtype);
  if (a.channels_last) model->to(ht::MemoryFormat::ChannelsLast);
  model->train();
  // broadcasts rank 0's weights; from here on every rank's gradients are averaged during backward
  std::unique_ptr<dist::DistributedDataParallel> ddp;
  if (pg) {
    dist::DDPOptions ddp_options;
    if (a.reduce_dtype == "fp32") ddp_options.reduce_dtype = ht::kFloat32;
    ddp = std::make_unique<dist::DistributedDataParallel>(model, pg, ddp_options);
  }

  std::unique_ptr<ht::optim::Optimizer> optimizer = examples::make_optimizer(a.optim, model->parameters());
  ht::optim::Optimizer& opt = *optimizer;
  ht::amp::GradScaler scaler({.enabled = scaled});
  if (pg) dist::sync_grad_scaler(scaler, pg);
  dist::DistributedSampler sampler(train.size(), world, g_rank, a.shuffle, seed);
  int64_t steps_per_epoch = (sampler.num_samples() + a.batch_size - 1) / a.batch_size;  // batches
  int64_t opt_steps_per_epoch = (steps_per_epoch + a.accum_steps - 1) / a.accum_steps;
  // built before the states are loaded, as in PyTorch: a scheduler's constructor writes the param groups
  examples::Schedule schedule = examples::make_schedule(a.optim, opt, a.epochs, opt_steps_per_epoch);
  if (!resume_state.is_none()) {
    examples::check_resumed_optimizer(resume_state["optimizer"], a.optim.opt, resume);
    resume_part("optimizer", [&](const ht::Value& v) { opt.load_state_dict(v); });
    if (dtype != ht::kFloat32 && examples::rebuild_masters(opt, *model, resume_state) && lead)
      std::printf("note: %s has no 'master_param' in its optimizer state; fp32 masters rebuilt from 'model'\n", resume.c_str());
    if (schedule.scheduler) {
      if (resume_state.to_dict().contains("scheduler"))
        resume_part("scheduler", [&](const ht::Value& v) { schedule.scheduler->load_state_dict(v); });
      else if (lead) std::printf("note: %s has no 'scheduler'; the --sched %s schedule restarts\n", resume.c_str(), a.optim.sched.c_str());
    }
    if (scaled && resume_state.to_dict().contains("scaler"))
      resume_part("scaler", [&](const ht::Value& v) { scaler.load_state_dict(v); });
    else if (scaled && lead) std::printf("note: %s has no 'scaler'; the loss scale starts at %g\n", resume.c_str(), scaler.get_scale());
  }

  if (global_step < 0) global_step = start_epoch * steps_per_epoch;
  // a checkpoint saved mid-epoch (--save-every) resumes at the batch after its last optimizer step
  const int64_t resume_batch = global_step - start_epoch * steps_per_epoch;
  HT_CHECK(resume_batch >= 0 && resume_batch < std::max<int64_t>(steps_per_epoch, 1), resume, ": global_step ",
           global_step, " is not within epoch ", start_epoch + 1, " of ", steps_per_epoch,
           " batches; resume with the --batch-size, --limit and process count that wrote it");
  std::ofstream log;
  if (!a.log.empty() && lead) {
    // a resumed run drops the lines a killed run logged after its checkpoint, so the log reads as one run's
    if (!resume_state.is_none()) examples::truncate_log_after(a.log, start_epoch, global_step);
    log.open(a.log, resume_state.is_none() ? std::ios::trunc : std::ios::app);
    HT_CHECK(log.good(), "cannot open --log file ", a.log);
  }
  // --tensorboard DIR: the same values as the --log lines, as scalars TensorBoard plots (a resumed run adds a
  // new event file; TensorBoard merges a directory's files by step)
  std::optional<examples::TensorBoardWriter> tb;
  if (!a.tensorboard.empty() && lead) tb.emplace(a.tensorboard);
  if (lead) {
    std::printf("train_resnet18: %s, %lld train / %lld test images, %s%s on %s, batch %lld, %s lr %g",
                spec.name.c_str(), static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                recipe.c_str(), a.channels_last ? " channels_last" : "", device.str().c_str(),
                static_cast<long long>(a.batch_size), a.optim.opt.c_str(), a.optim.lr);
    if (a.optim.sched != "none") std::printf(", %s schedule", a.optim.sched.c_str());
    if (a.accum_steps > 1) std::printf(", %lld batches per step", static_cast<long long>(a.accum_steps));
    if (pg) std::printf(", %d processes (%s), batch per process", world, device.is_cuda() ? "nccl" : "gloo");
    std::printf("\n");
  }
  // --model-ema: the average starts at the (resumed) weights; a checkpoint's 'model_ema' continues it
  std::optional<examples::ModelEma> ema;
  ht::nn::ModulePtr ema_model;  // the average as a model, for evaluation
  if (a.model_ema > 0) {
    ema.emplace(a.model_ema);
    ema->reset(*model, opt.master_params());
    if (!resume_state.is_none() && resume_state.to_dict().contains("model_ema"))
      ema->load(ht::to_state_dict(resume_state["model_ema"]), device);
    else if (!resume_state.is_none() && lead)
      std::printf("note: %s has no 'model_ema'; the average starts at its weights\n", resume.c_str());
    ema_model = ht::nn::resnet18({.num_classes = num_classes, .in_channels = spec.channels});
    ema_model->to(device).to(dtype);
    if (a.channels_last) ema_model->to(ht::MemoryFormat::ChannelsLast);
  }
  // Top-1, top-5 and loss on the test split of rank 0's model (the one saved): its buffers go to every rank,
  // each evaluates a slice, the sums are added up.
  auto test_metrics = [&](ht::nn::Module& m, bool is_ddp_model) {
    if (!pg) return examples::evaluate_sums(m, test, 0, test.size(), feed, 256);
    if (is_ddp_model) ddp->sync_buffers();
    int64_t n = test.size(), begin = n * g_rank / world, end = n * (g_rank + 1) / world;
    examples::EvalSums s = examples::evaluate_sums(m, test, begin, end, feed, 256);
    ht::Tensor sums = ht::tensor<double>({s.top1, s.top5, s.loss, s.n});
    pg->all_reduce(sums);
    std::vector<double> v = sums.to_vector<double>();
    return examples::EvalSums{v[0], v[1], v[2], v[3]};
  };
  auto test_accuracy = [&]() { return test_metrics(*model, true).accuracy(); };
  // The whole training state after `epochs_done` epochs and global_step batches (rank 0 writes it).
  auto save_checkpoint = [&](int64_t epochs_done) {
    std::vector<ht::Tensor> masters = opt.master_params();
    ht::Value ck = ht::Value::dict();
    ck.to_dict().set("model", ht::to_value(state_dict_as(*model, ht::kFloat32, &masters)));
    ck.to_dict().set("optimizer", opt.state_dict());
    if (scaled) ck.to_dict().set("scaler", scaler.state_dict());
    if (schedule.scheduler) ck.to_dict().set("scheduler", schedule.scheduler->state_dict());
    if (ema) ck.to_dict().set("model_ema", ht::to_value(ema->saved(ht::kFloat32)));
    ck.to_dict().set("epoch", epochs_done);
    ck.to_dict().set("global_step", global_step);
    ck.to_dict().set("seed", int64_t(seed));
    examples::save_checkpoint_atomically(ck, a.checkpoint, a.keep);
  };
  double accuracy = -1;
  examples::RunProgress run_progress(start_epoch, a.epochs, resume_batch, steps_per_epoch, a.batch_size, sampler.num_samples(), world);
  for (int64_t epoch = start_epoch; epoch < a.epochs; ++epoch) {
    sampler.set_epoch(epoch);
    // this rank's share of the epoch's permutation (with one process, all of it)
    examples::EpochBatches batches(train, sampler.indices(), epoch == start_epoch ? resume_batch : 0, a.batch_size, epoch,
                                   device);
    Progress progress(steps_per_epoch);
    for (int64_t step = epoch == start_epoch ? resume_batch : 0; step < steps_per_epoch; ++step) {
      auto t0 = std::chrono::steady_clock::now();
      std::optional<examples::Rows> rows = batches.next();
      if (!rows) break;  // --skip-bad-images emptied whole batches
      ht::Tensor x = rows->images;
      if (a.augment && spec.name == "cifar10")
        x = augment_batch(x, ht::splitmix64(seed + 7919 * uint64_t(global_step)) + uint64_t(g_rank * a.batch_size));
      ht::Tensor y = rows->labels.to(device);
      ht::Tensor loss;
      {
        ht::amp::AutocastGuard autocast = feed.autocast_scope();
        ht::Tensor logits = ddp ? (*ddp)(feed.input(x)) : (*model)(feed.input(x));
        loss = ht::nn::functional::cross_entropy(logits, y, {.label_smoothing = a.label_smoothing});
      }
      // --accum-steps K: K batches' gradients add up before one optimizer step, each loss divided by the number
      // of batches in its group (the epoch's last group may be shorter, as in timm's train.py)
      int64_t group_begin = step / a.accum_steps * a.accum_steps;
      int64_t group_size = std::min(a.accum_steps, steps_per_epoch - group_begin);
      bool last_in_group = step + 1 == group_begin + group_size;
      scaler.scale(group_size > 1 ? ht::div(loss, double(group_size)) : loss).backward();
      double scale_used = scaler.get_scale(), lr_used = opt.lr(0);
      bool stepped = false;
      if (examples::kill_point("step")) examples::die_now();
      if (last_in_group) {
        if (a.clip_grad > 0) {  // PyTorch's AMP recipe: unscale, clip the true gradients, then step
          scaler.unscale_(opt);
          ht::nn::utils::clip_grad_norm_(opt.params(), a.clip_grad);
        }
        stepped = scaler.step(opt);
        scaler.update();
        if (ema) ema->update(*model, opt.master_params());
        opt.zero_grad();
        if (schedule.per_step) schedule.scheduler->step();
      }
      double loss_value = loss.item<double>();
      if (pg) {  // the logged loss is the mean over every rank's batch, as one process with the global batch
        ht::Tensor l = ht::full({1}, loss_value, {.dtype = ht::kFloat64});
        pg->all_reduce(l, dist::ReduceOp::Avg);
        loss_value = l.item<double>();
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double ips = double(x.size(0)) * world / secs;
      ++global_step;
      if (!lead) continue;
      progress.show(run_progress, epoch + 1, a.epochs, step + 1, loss_value, ips, scaled ? std::optional<double>(scale_used) : std::nullopt);
      if (log.is_open()) {
        nlohmann::json j = {{"epoch", epoch + 1}, {"step", global_step}, {"loss", loss_value},
                            {"lr", lr_used}, {"images_per_s", ips}};
        if (scaled && last_in_group) {
          j["scale"] = scale_used;
          j["skipped"] = !stepped;
        }
        log << j.dump() << "\n" << std::flush;
      }
      if (tb) {
        tb->add_scalar("train/loss", loss_value, global_step);
        tb->add_scalar("train/lr", lr_used, global_step);
        tb->add_scalar("train/images_per_s", ips, global_step);
        if (scaled && last_in_group) tb->add_scalar("train/loss_scale", scale_used, global_step);
      }
      // --save-every N optimizer steps inside an epoch (its end saves anyway, after evaluation)
      int64_t opt_steps = epoch * opt_steps_per_epoch + step / a.accum_steps + 1;
      if (last_in_group && a.save_every > 0 && opt_steps % a.save_every == 0 && step + 1 < steps_per_epoch)
        save_checkpoint(epoch);
    }
    if (schedule.scheduler && !schedule.per_step) schedule.scheduler->step();
    examples::EvalSums metrics = test_metrics(*model, true);
    accuracy = metrics.accuracy();
    examples::warn_skipped_images(train);
    examples::warn_skipped_images(test);
    std::optional<examples::EvalSums> ema_metrics;
    if (ema) {
      ema_model->load_state_dict(ema->state());
      ema_metrics = test_metrics(*ema_model, false);
    }
    if (!lead) continue;
    std::printf("epoch %lld: test accuracy %.4f  top-5 %.4f  loss %.4f", static_cast<long long>(epoch + 1), accuracy,
                metrics.top5_accuracy(), metrics.mean_loss());
    if (ema_metrics) std::printf("  (EMA: accuracy %.4f  top-5 %.4f)", ema_metrics->accuracy(), ema_metrics->top5_accuracy());
    std::printf("\n");
    run_progress.epoch_done(epoch + 1, accuracy);
    if (log.is_open()) {
      nlohmann::json j = {{"epoch", epoch + 1}, {"test_accuracy", accuracy}, {"test_top5", metrics.top5_accuracy()},
                          {"test_loss", metrics.mean_loss()}};
      if (ema_metrics) {
        j["ema_test_accuracy"] = ema_metrics->accuracy();
        j["ema_test_top5"] = ema_metrics->top5_accuracy();
      }
      log << j.dump() << "\n" << std::flush;
    }
    if (tb) {
      tb->add_scalar("val/accuracy", accuracy, global_step);
      tb->add_scalar("val/top5", metrics.top5_accuracy(), global_step);
      tb->add_scalar("val/loss", metrics.mean_loss(), global_step);
    }
    if (!a.checkpoint.empty()) save_checkpoint(epoch + 1);
  }
  if (accuracy < 0) accuracy = test_accuracy();
  if (!lead) return 0;
  ht::save(state_dict_as(*model, ht::kFloat16, nullptr), a.out);
  std::printf("saved %s\n", a.out.c_str());
  std::vector<std::string> files{a.out};  // for the summary
  if (ema) {  // beside --out: model_fp16.pth -> model_fp16_ema.pth
    std::string ema_out = a.out.size() > 4 && a.out.ends_with(".pth") ? a.out.substr(0, a.out.size() - 4) + "_ema.pth"
                                                                       : a.out + "_ema";
    ht::save(ema->saved(ht::kFloat16), ema_out);
    std::printf("saved %s (--model-ema %g)\n", ema_out.c_str(), a.model_ema);
    files.push_back(ema_out);
  }
  if (!a.checkpoint.empty() && start_epoch < a.epochs) files.push_back(a.checkpoint);  // this run wrote it
  if (log.is_open()) files.push_back(a.log);
  if (tb) files.push_back(tb->path());
  run_progress.print_summary(accuracy, files);
  std::printf("test accuracy: %.4f\n", accuracy);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int rc = run(parse(argc, argv));
    // as torch.distributed programs end: the communicators go while the CUDA runtime is still up
    if (dist::is_initialized()) dist::destroy_process_group();
    return rc;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    if (ht::distributed::launched_from_env()) std::fprintf(stderr, "error (rank %d): %s\n", g_rank, e.what());
    else std::fprintf(stderr, "error: %s\n", e.what());
    ht::distributed::report_failure(e);  // under torchrun, its failure summary shows this message
    return 1;
  }
}
