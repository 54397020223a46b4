// Pieces the example programs share: the datasets they know (with their normalisation), device choice, and
// batch assembly from a shuffled index list. Header-only so each example stays one program.
#pragma once
#include <algorithm>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <halftorch/halftorch.h>

#include "io/datasets.h"

namespace examples {

inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct DataSpec {
  std::string name;  // "fashion-mnist" or "cifar10"
  std::vector<double> mean, std;
  int64_t channels;
};

inline DataSpec data_spec(const std::string& name) {
  if (name == "fashion-mnist") return {name, {0.2860}, {0.3530}, 1};
  if (name == "cifar10") return {name, {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}, 3};
  ht::fail("unknown --data '", name, "' (expected fashion-mnist or cifar10)");
}

inline std::string default_data_dir(const DataSpec& spec) {
  return spec.name == "fashion-mnist" ? kFashionMnistDir : "/usr/share/datasets/cifar10";
}

// Normalised float32 images [N, C, H, W] and int64 labels [N], the first `limit` of the split (0: all).
struct Split {
  ht::Tensor images, labels;
  int64_t size() const { return labels.size(0); }
};
inline Split load_split(const DataSpec& spec, const std::string& dir, bool train, int64_t limit) {
  ht::io::ImageDataset d = spec.name == "fashion-mnist" ? ht::io::load_fashion_mnist(dir, train)
                                                        : ht::io::load_cifar10(dir, train);
  int64_t n = limit > 0 ? std::min(limit, d.labels.size(0)) : d.labels.size(0);
  return {ht::io::normalize_images(d.images.narrow(0, 0, n), spec.mean, spec.std).contiguous(),
          d.labels.narrow(0, 0, n).contiguous()};
}

// "auto" picks CUDA when a GPU is present; "cuda" without one is an error that says so.
// A state_dict file, or the "model" entry of a checkpoint dict (train_resnet18's, or torch.save({"model": ...})).
inline ht::StateDict read_weights(const std::string& path) {
  ht::Value v = ht::load(path);
  HT_CHECK(v.is_dict(), path, ": expected a state_dict or a checkpoint dict, got a ", v.kind_name());
  if (const ht::Value* m = v.to_dict().find(std::string("model")); m && m->is_dict()) return ht::to_state_dict(*m);
  return ht::to_state_dict(v);
}

inline ht::Device pick_device(const std::string& choice) {
  if (choice == "cpu") return ht::kCPU;
  bool gpu = ht::cuda::is_available();
  if (choice == "auto") return gpu ? ht::kCUDA : ht::kCPU;
  HT_CHECK(choice == "cuda" || choice.rfind("cuda:", 0) == 0, "unknown --device '", choice,
           "' (expected auto, cpu or cuda)");
  HT_CHECK(gpu, "--device ", choice, " was asked for, but no CUDA GPU is available on this machine",
           " (or halftorch was built without CUDA); use --device cpu");
  return ht::Device(choice);
}

// The flag loop of the small programs: --help prints `usage` (exit 0); each flag in `switches` is passed to
// `on(flag, "")`, every other one with the next argument as its value; a missing value or a flag `on` rejects
// (returns false) prints `usage` to stderr (exit 2). Returns the exit code to leave with, or nullopt to go on.
inline std::optional<int> parse_flags(int argc, char** argv, const char* usage,
                                      std::initializer_list<std::string_view> switches,
                                      const std::function<bool(const std::string& flag, const std::string& value)>& on) {
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (f == "--help" || f == "-h") {
      std::cout << usage;
      return 0;
    }
    bool is_switch = std::find(switches.begin(), switches.end(), f) != switches.end();
    if (!is_switch && i + 1 >= argc) {
      std::cerr << "error: " << f << " needs a value\n" << usage;
      return 2;
    }
    if (!on(f, is_switch ? std::string() : std::string(argv[++i]))) {
      std::cerr << "error: unknown flag " << f << "\n" << usage;
      return 2;
    }
  }
  return std::nullopt;
}

// Rows order[begin, end) of a contiguous CPU tensor, gathered into a new contiguous CPU tensor.
// A flag's value as a positive integer; otherwise an error naming the program, the flag and the value.
inline int64_t positive_integer(const char* program, const std::string& flag, const std::string& v) {
  size_t used = 0;
  long long n = -1;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
  }
  HT_CHECK(used == v.size() && n > 0, "[", program, "] expected a positive integer for ", flag, ", got '", v, "'");
  return n;
}

inline ht::Tensor gather_rows(const ht::Tensor& src, const std::vector<int64_t>& order, int64_t begin, int64_t end) {
  ht::Shape s = src.sizes();
  s[0] = end - begin;
  ht::Tensor out = ht::empty(s, {.dtype = src.dtype()});
  size_t row = size_t(src.numel() / std::max<int64_t>(src.size(0), 1)) * src.element_size();
  const char* from = static_cast<const char*>(src.raw_data());
  char* to = static_cast<char*>(out.raw_data());
  for (int64_t i = begin; i < end; ++i) std::memcpy(to + size_t(i - begin) * row, from + size_t(order[size_t(i)]) * row, row);
  return out;
}

// How a model is fed: where and in which dtype its inputs go, their memory format, and the autocast dtype when
// the model is run the way of PyTorch's AMP recipe (fp32 parameters under torch.autocast).
struct Feed {
  ht::Device device = ht::kCPU;
  ht::DType dtype = ht::kFloat32;
  bool channels_last = false;
  std::optional<ht::DType> autocast;

  ht::Tensor input(const ht::Tensor& x) const {
    ht::Tensor t = x.to(device, dtype);
    return channels_last ? t.contiguous(ht::MemoryFormat::ChannelsLast) : t;
  }
  // Enables autocast for this feed's device while it lives (and disables it when the feed has none).
  ht::amp::AutocastGuard autocast_scope() const {
    return ht::amp::AutocastGuard(device.type, autocast.value_or(ht::kFloat16), autocast.has_value());
  }
};

// The model's dtype for --precision fp16|bf16|fp32.
inline ht::DType precision_dtype(const std::string& precision) {
  if (precision == "fp16") return ht::kFloat16;
  if (precision == "bf16") return ht::kBFloat16;
  HT_CHECK(precision == "fp32", "unknown --precision '", precision, "' (expected fp16, bf16 or fp32)");
  return ht::kFloat32;
}

// The autocast dtype for --amp float16|bfloat16.
inline ht::DType amp_dtype(const std::string& amp) {
  if (amp == "float16") return ht::kFloat16;
  HT_CHECK(amp == "bfloat16", "unknown --amp '", amp, "' (expected float16 or bfloat16)");
  return ht::kBFloat16;
}

// How many of the split's images [begin, end) `model` classifies right, in eval mode, batch by batch.
inline int64_t count_correct(ht::nn::Module& model, const Split& split, int64_t begin, int64_t end, const Feed& feed,
                             int64_t batch_size, std::vector<float>* logits_out = nullptr) {
  bool was_training = model.is_training();
  model.eval();
  ht::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t start = begin; start < end; start += batch_size) {
    int64_t b = std::min(batch_size, end - start);
    ht::Tensor logits;
    {
      ht::amp::AutocastGuard autocast = feed.autocast_scope();
      logits = model(feed.input(split.images.narrow(0, start, b)));
    }
    logits = logits.to(ht::kCPU, ht::kFloat32);
    std::vector<int64_t> pred = ht::argmax(logits, 1).to_vector<int64_t>();
    std::vector<int64_t> want = split.labels.narrow(0, start, b).to_vector<int64_t>();
    for (int64_t i = 0; i < b; ++i) correct += pred[size_t(i)] == want[size_t(i)];
    if (logits_out) {
      std::vector<float> l = logits.to_vector<float>();
      logits_out->insert(logits_out->end(), l.begin(), l.end());
    }
  }
  model.train(was_training);
  return correct;
}

// Top-1 accuracy of `model` in eval mode over a split.
inline double evaluate(ht::nn::Module& model, const Split& split, const Feed& feed, int64_t batch_size,
                       std::vector<float>* logits_out = nullptr) {
  int64_t n = split.size();
  return n ? double(count_correct(model, split, 0, n, feed, batch_size, logits_out)) / double(n) : 0.0;
}

}  // namespace examples
