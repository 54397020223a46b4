// ResNet-18 against torchvision (in_channels 1 and 3): PyTorch's state_dict loads, eval logits match in fp32
// and fp16, one train-mode batch gives PyTorch's loss, parameter gradients and running statistics, and the
// state_dict halftorch saves loads into torchvision with strict=True.
#include "nn/functional.h"
#include "nn/resnet.h"
#include "nn_test_util.h"

using namespace ht;
using namespace ht::testing;
namespace F = ht::nn::functional;

namespace {

struct Fixture {
  std::filesystem::path dir;
  StateDict model, ref;
};

const Fixture& fixture(int in_channels) {
  static std::map<int, Fixture> cache;
  auto it = cache.find(in_channels);
  if (it != cache.end()) return it->second;
  Fixture f;
  f.dir = nn_fixture("nn_resnet.py", std::to_string(in_channels));
  f.model = load_state_dict_file((f.dir / "model.pth").string());
  f.ref = load_state_dict_file((f.dir / "ref.pth").string());
  return cache[in_channels] = f;
}

Tensor get(const StateDict& sd, const std::string& key) {
  const Tensor* t = sd.find(key);
  INFO("key " << key);
  REQUIRE(t != nullptr);
  return *t;
}

std::shared_ptr<nn::ResNet> loaded(int in_channels) {
  auto m = nn::resnet18({.num_classes = 10, .in_channels = in_channels});
  m->load_state_dict(fixture(in_channels).model);
  return m;
}

}  // namespace

TEST_CASE("resnet18 has torchvision's 122 state_dict keys, order, shapes and _metadata", "[nn][resnet]") {
  auto m = nn::resnet18({.num_classes = 10, .in_channels = 3});
  StateDict mine = m->state_dict();
  const StateDict& theirs = fixture(3).model;
  REQUIRE(mine.size() == 122);
  REQUIRE(theirs.size() == 122);
  for (size_t i = 0; i < mine.size(); ++i) {
    INFO("entry " << i);
    CHECK(mine.tensors[i].first == theirs.tensors[i].first);
    CHECK(mine.tensors[i].second.sizes() == theirs.tensors[i].second.sizes());
    CHECK(mine.tensors[i].second.dtype() == theirs.tensors[i].second.dtype());
  }
  CHECK(mine.module_versions == theirs.module_versions);
  CHECK(m->named_parameters().size() == 62);
  CHECK(m->named_buffers().size() == 60);
  int64_t count = 0;
  for (auto& p : m->parameters()) count += p.numel();
  CHECK(count == 11181642);  // 11,689,512 for 1000 classes, minus 990 * 513
  auto m1 = nn::resnet18({.num_classes = 10, .in_channels = 1});
  CHECK(m1->conv1->weight.sizes() == Shape{64, 1, 7, 7});
}

TEST_CASE("resnet18 initialises like torchvision", "[nn][resnet][init]") {
  manual_seed(5);
  auto m = nn::resnet18({.num_classes = 10, .in_channels = 3, .zero_init_residual = true});
  auto stats = [](const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    double s = 0, s2 = 0, mx = 0;
    for (double x : v) s += x, s2 += x * x, mx = std::max(mx, std::fabs(x));
    double mean = s / double(v.size());
    return std::array<double, 3>{mean, std::sqrt(s2 / double(v.size()) - mean * mean), mx};
  };
  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (out * kh * kw))
  auto c = stats(m->layer3->named_parameters()[0].second);  // layer3.0.conv1.weight [256, 128, 3, 3]
  CHECK(std::fabs(c[1] - std::sqrt(2.0 / (256 * 9))) < 0.02 * std::sqrt(2.0 / (256 * 9)));
  CHECK(std::fabs(c[0]) < 1e-3);
  // fc keeps Linear's default: U(-1/sqrt(512), 1/sqrt(512)) for weight and bias
  auto fw = stats(m->fc->weight);
  CHECK(fw[2] <= 1.0 / std::sqrt(512.0));
  CHECK(std::fabs(fw[1] - 1.0 / std::sqrt(512.0) / std::sqrt(3.0)) < 0.05 / std::sqrt(512.0));
  CHECK(stats(m->fc->bias)[2] <= 1.0 / std::sqrt(512.0));
  check_equal(m->bn1->weight, ones({64}), "bn weight 1");
  check_equal(m->bn1->bias, zeros({64}), "bn bias 0");
  auto blk = std::dynamic_pointer_cast<nn::BasicBlock>((*m->layer2)[1]);
  REQUIRE(blk);
  check_equal(blk->bn2->weight, zeros({128}), "zero_init_residual zeroes bn2.weight");
  check_equal(blk->bn1->weight, ones({128}), "bn1.weight stays 1");
}

TEST_CASE("resnet18 eval logits match PyTorch in fp32 and fp16", "[nn][resnet][cuda]") {
  for (int ch : {1, 3}) {
    for (Device dev : test_devices()) {
      INFO("in_channels " << ch << " on " << dev.str());
      const Fixture& f = fixture(ch);
      auto m = loaded(ch);
      m->to(dev).eval();
      {
        NoGradGuard ng;
        Tensor logits = m->forward(get(f.ref, "x_eval").to(dev));
        check_rel(logits, get(f.ref, "logits_eval"), 1e-4, "fp32 eval logits");
      }
      m->half();
      NoGradGuard ng;
      Tensor want = get(f.ref, "logits_many");
      Tensor got = m->forward(get(f.ref, "x_many").to(dev).half()).to(kFloat32);
      CHECK(got.dtype() == kFloat32);
      check_rel(got, want, 2e-2, "fp16 eval logits");
      std::vector<int64_t> a = argmax(got.cpu(), 1).to_vector<int64_t>(), b = argmax(want, 1).to_vector<int64_t>();
      int64_t agree = 0;
      for (size_t i = 0; i < a.size(); ++i) agree += a[i] == b[i];
      INFO("argmax agreement " << agree << " / " << a.size());
      CHECK(double(agree) / double(a.size()) > 0.99);
    }
  }
}

TEST_CASE("eval under no_grad (batch norm, residual and ReLU folded into each convolution) equals the unfused "
          "forward",
          "[nn][resnet][layouts]") {
  // With grad mode on and parameters that require grad, conv_batch_norm runs conv2d, batch_norm, add and relu one
  // after another; under NoGradGuard it runs conv2d_batch_norm_inference, which skips the rounding of each
  // convolution's output: float32 within 1e-5 (the layouts tests' float32 tolerance), both memory formats.
  manual_seed(5);
  auto m = nn::resnet18({.num_classes = 10, .in_channels = 3});
  m->eval();
  {  // running statistics away from 0 / 1, so that the batch-norm arithmetic is exercised
    NoGradGuard ng;
    for (auto& [name, b] : m->named_buffers())
      if (b.is_floating_point()) b.copy_(add(mul(rand_like(b), 0.5), 0.5));
  }
  for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    INFO((format == MemoryFormat::ChannelsLast ? "channels_last" : "NCHW"));
    m->to(format);
    Tensor x = randn({2, 3, 40, 40}).contiguous(format);
    Tensor unfused = m->forward(x);
    REQUIRE(unfused.requires_grad());
    NoGradGuard ng;
    Tensor fused = m->forward(x);
    check_rel(fused, unfused.detach(), 1e-5, "fp32 logits");
  }
  // bfloat16 and float16 round once instead of after each op: close, not equal
  for (DType dtype : {kBFloat16, kFloat16}) {
    INFO(dtype_name(dtype));
    auto low = nn::resnet18({.num_classes = 10, .in_channels = 3});
    low->load_state_dict(m->state_dict());
    low->to(dtype).eval();
    Tensor x = randn({2, 3, 40, 40});
    Tensor unfused = low->forward(x.to(dtype)).to(kFloat32);
    NoGradGuard ng;
    Tensor fused = low->forward(x.to(dtype)).to(kFloat32);
    check_rel(fused, unfused.detach(), dtype == kBFloat16 ? 5e-2 : 1e-2, "16-bit logits");
  }
}

TEST_CASE("batch_norm_inference: values, checks, and no autograd history", "[nn][bn]") {
  namespace F = nn::functional;
  manual_seed(6);
  Tensor x = randn({2, 3, 4, 5}), r = randn({2, 3, 4, 5});
  Tensor rm = rand({3}), rv = add(rand({3}), 0.5), w = randn({3}), b = randn({3});
  Tensor want = relu(add(F::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-3), r));
  check_equal(F::batch_norm_inference(x, rm, rv, w, b, 1e-3, r, true), want, "fused = batch_norm, add, relu");
  check_equal(F::batch_norm_inference(x, rm, rv, w, b, 1e-3), F::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-3),
              "without residual and relu");
  Tensor wide = F::batch_norm_inference(x.to(kFloat64), rm.to(kFloat64), rv.to(kFloat64), w.to(kFloat64),
                                        b.to(kFloat64), 1e-3, r.to(kFloat64), true);
  check_rel(wide, want, 1e-6, "float64");
  CHECK_THROWS_WITH(F::batch_norm_inference(x, rm, rv, w, b, 1e-5, randn({2, 3, 4, 4}), true),
                    Catch::Contains("[batch_norm_inference] expected a residual like the input"));
  Tensor wg = w.clone().requires_grad_();
  CHECK_THROWS_WITH(F::batch_norm_inference(x, rm, rv, wg, b, 1e-5),
                    Catch::Contains("[batch_norm_inference] records no autograd history"));
  NoGradGuard ng;
  CHECK_FALSE(F::batch_norm_inference(x, rm, rv, wg, b, 1e-5).requires_grad());
}

TEST_CASE("resnet18 train mode matches PyTorch: loss, every parameter gradient, running stats", "[nn][resnet][cuda]") {
  for (int ch : {1, 3}) {
    for (Device dev : test_devices()) {
      INFO("in_channels " << ch << " on " << dev.str());
      const Fixture& f = fixture(ch);
      auto m = loaded(ch);
      m->to(dev).train();
      Tensor loss = F::cross_entropy(m->forward(get(f.ref, "x_train").to(dev)), get(f.ref, "y_train").to(dev));
      check_rel(loss, get(f.ref, "loss_train"), 1e-5, "loss");
      loss.backward();
      for (auto& [name, p] : m->named_parameters()) check_rel(p.grad(), get(f.ref, "grad." + name), 1e-4, "grad of " + name);
      for (auto& [name, b] : m->named_buffers()) check_rel(b, get(f.ref, "after." + name), 1e-5, "buffer " + name);
      m->zero_grad();
      for (auto& p : m->parameters()) CHECK_FALSE(p.grad().defined());
    }
  }
}

TEST_CASE("a halftorch-saved resnet18 state_dict loads into torchvision with strict=True", "[nn][resnet][io]") {
  for (int ch : {1, 3}) {
    INFO("in_channels " << ch);
    const Fixture& f = fixture(ch);
    auto m = loaded(ch);
    auto path = f.dir / "saved_by_halftorch.pth";
    save(m->state_dict(), path.string());
    auto [rc, out] = run_script("nn_resnet_check.py",
                                path.string() + " " + (f.dir / "model.pth").string() + " " + std::to_string(ch), f.dir);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("OK 122 tensors") != std::string::npos);
  }
}

TEST_CASE("load_state_dict reports missing, unexpected and mismatched keys in one error", "[nn][module]") {
  auto m = nn::resnet18({.num_classes = 10, .in_channels = 1});
  const StateDict& three = fixture(3).model;
  CHECK_THROWS_WITH(m->load_state_dict(three),
                    Catch::Contains("[load_state_dict] Error(s) in loading state_dict for ResNet") &&
                        Catch::Contains("size mismatch for conv1.weight: copying a param with shape "
                                        "torch.Size([64, 3, 7, 7]) from checkpoint, the shape in current model is "
                                        "torch.Size([64, 1, 7, 7])."));
  StateDict partial;
  for (auto& [k, t] : fixture(1).model.tensors)
    if (k != "fc.bias" && k != "layer1.0.bn1.running_mean") partial.add(k, t);
  partial.add("extra.weight", zeros({1}));
  CHECK_THROWS_WITH(m->load_state_dict(partial),
                    Catch::Contains("Missing key(s) in state_dict: \"layer1.0.bn1.running_mean\", \"fc.bias\".") &&
                        Catch::Contains("Unexpected key(s) in state_dict: \"extra.weight\"."));
  m->load_state_dict(partial, false);  // non-strict: the rest loads
  check_equal(m->fc->weight, get(fixture(1).model, "fc.weight"), "non-strict load copies what matches");
}

TEST_CASE("load_state_dict converts dtypes; to(dtype) keeps num_batches_tracked int64", "[nn][module]") {
  StateDict half;
  for (auto& [k, t] : fixture(1).model.tensors) half.add(k, t.is_floating_point() ? t.to(kFloat16) : t);
  half.module_versions = fixture(1).model.module_versions;
  auto m = nn::resnet18({.num_classes = 10, .in_channels = 1});
  m->load_state_dict(half);
  CHECK(m->fc->weight.dtype() == kFloat32);
  check_equal(m->fc->weight, get(half, "fc.weight").to(kFloat32), "fp16 file into an fp32 model");
  Tensor handle = m->fc->weight;
  m->half();
  CHECK(handle.dtype() == kFloat16);  // parameters keep their identity across to()
  CHECK(m->bn1->num_batches_tracked.dtype() == kInt64);
  CHECK(m->bn1->num_batches_tracked.item<int64_t>() == 3);
  CHECK(m->bn1->running_var.dtype() == kFloat16);
  m->float_();
  CHECK(handle.dtype() == kFloat32);
  CHECK(handle.requires_grad());
}

TEST_CASE("BatchNorm2d fills num_batches_tracked for pre-version-2 files; train/eval propagate", "[nn][module]") {
  nn::BatchNorm2d bn(3);
  StateDict old;
  old.add("weight", ones({3}));
  old.add("bias", zeros({3}));
  old.add("running_mean", zeros({3}));
  old.add("running_var", ones({3}));
  bn.num_batches_tracked.fill_(7);
  bn.load_state_dict(old);  // no _metadata: treated as version 1
  CHECK(bn.num_batches_tracked.item<int64_t>() == 0);
  old.module_versions = {{"", 2}};
  CHECK_THROWS_WITH(bn.load_state_dict(old), Catch::Contains("Missing key(s) in state_dict: \"num_batches_tracked\""));

  auto m = nn::resnet18({.num_classes = 10, .in_channels = 1});
  m->eval();
  for (auto& [n, c] : m->named_modules()) CHECK_FALSE(c->is_training());
  m->train();
  CHECK(m->layer4->is_training());
  auto seq = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.5),
      std::make_shared<nn::Identity>(), std::make_shared<nn::Linear>(3, 2)});
  auto names = seq->named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].first == "0.weight");
  CHECK(names[3].first == "4.bias");
  seq->eval();
  Tensor x = randn({5, 4});
  check_equal(seq->forward(x), (*seq)[4]->forward(relu((*seq)[0]->forward(x))), "Sequential chains its modules");
}

TEST_CASE("Flatten, MaxPool2d and AdaptiveAvgPool2d modules shape like PyTorch's", "[nn][module]") {
  Tensor x = randn({2, 3, 8, 8});
  CHECK(nn::Flatten().forward(x).sizes() == Shape{2, 192});
  CHECK(nn::MaxPool2d(3, 2, 1).forward(x).sizes() == Shape{2, 3, 4, 4});
  CHECK(nn::AdaptiveAvgPool2d({1, 1}).forward(x).sizes() == Shape{2, 3, 1, 1});
  nn::Conv2d conv(3, 6, 3, {.padding = 1, .groups = 3});
  CHECK(conv.weight.sizes() == Shape{6, 1, 3, 3});
  CHECK(conv.forward(x).sizes() == Shape{2, 6, 8, 8});
  CHECK_THROWS_WITH(nn::BatchNorm2d(3).forward(randn({2, 3})), Catch::Contains("[BatchNorm2d] expected 4D input"));
}
