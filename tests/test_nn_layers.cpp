// The layers and loss modules a vision or small-model user reaches for (issue 14): state_dict keys and
// initial values as PyTorch's, forward through the functional forms (checked against torch in
// test_tensor_api), HT_MODULE handles, loss modules.
#include "nn/layers.h"
#include "nn/losses.h"
#include "nn/module_holder.h"
#include "tests/helpers.h"

using namespace ht;
using namespace ht::nn;

namespace {
std::vector<std::string> keys(const Module& m) {
  std::vector<std::string> k;
  for (const auto& [name, t] : m.state_dict().tensors) k.push_back(name);
  return k;
}

struct HeadImpl : Module {
  HeadImpl(int64_t in, int64_t out) {
    norm = register_module("norm", std::make_shared<LayerNorm>(Shape{in}));
    fc = register_module("fc", std::make_shared<Linear>(in, out));
  }
  Tensor forward(const Tensor& x) override { return fc->forward(norm->forward(x)); }
  std::string type_name() const override { return "Head"; }
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> fc;
};
HT_MODULE(Head);
}  // namespace

TEST_CASE("new layers register PyTorch's state_dict keys and initial values") {
  LayerNorm ln({3, 4});
  REQUIRE(keys(ln) == std::vector<std::string>{"weight", "bias"});
  REQUIRE(ln.weight.sizes() == Shape{3, 4});
  REQUIRE(sum(ln.weight).item<float>() == 12);
  REQUIRE(keys(LayerNorm({4}, 1e-5, false)).empty());
  GroupNorm gn(2, 6);
  REQUIRE(keys(gn) == std::vector<std::string>{"weight", "bias"});
  REQUIRE_THROWS_WITH(GroupNorm(4, 6), Catch::Contains("divisible"));
  Embedding emb(10, 3);
  REQUIRE(keys(emb) == std::vector<std::string>{"weight"});
  REQUIRE(emb.forward(tensor<int64_t>({1, 9, 1})).sizes() == Shape{3, 3});
  REQUIRE(keys(SiLU()).empty());
  REQUIRE(keys(GELU()).empty());
  REQUIRE_THROWS_AS(GELU("exact").forward(ones({2})), ht::ValueError);
  REQUIRE(LeakyReLU(0.2).forward(tensor<float>({-1, 2})).to_vector<float>() == std::vector<float>{-0.2f, 2});
  REQUIRE(AvgPool2d(2).forward(ones({1, 2, 4, 4})).sizes() == Shape{1, 2, 2, 2});
  REQUIRE_THROWS_WITH(AvgPool2d(5).forward(ones({1, 1, 4, 4})), Catch::Contains("Output size is too small"));
}

TEST_CASE("Dropout2d zeroes whole channels in training and nothing in eval") {
  manual_seed(1);
  Dropout2d d(0.5);
  Tensor x = ones({4, 8, 3, 3});
  Tensor y = d.forward(x);
  std::vector<float> v = y.to_vector<float>();
  int dropped = 0;
  for (int64_t c = 0; c < 32; ++c) {
    float first = v[size_t(c * 9)];
    REQUIRE((first == 0.0f || first == 2.0f));
    for (int64_t i = 1; i < 9; ++i) REQUIRE(v[size_t(c * 9 + i)] == first);  // one decision per channel
    dropped += first == 0.0f;
  }
  REQUIRE(dropped > 4);
  REQUIRE(dropped < 28);
  d.eval();
  REQUIRE(d.forward(x).same(x));
}

TEST_CASE("HT_MODULE makes a shared handle like TORCH_MODULE; loss modules take (input, target)") {
  Head head(4, 2);
  REQUIRE(head->fc->out_features == 2);
  Tensor y = head(randn({3, 4}));
  REQUIRE(y.sizes() == Shape{3, 2});
  Sequential seq{head, std::make_shared<ReLU>()};
  REQUIRE(keys(seq) == std::vector<std::string>{"0.norm.weight", "0.norm.bias", "0.fc.weight", "0.fc.bias"});
  Head copy = head;  // shares the module
  REQUIRE(copy.ptr() == head.ptr());
  Head empty(nullptr);
  REQUIRE(empty.is_empty());
  REQUIRE_THROWS_WITH(empty->train(), Catch::Contains("empty module holder"));

  MSELoss mse;
  REQUIRE(mse(tensor<float>({1, 3}), tensor<float>({0, 0})).item<float>() == 5);
  L1Loss l1(functional::Reduction::Sum);
  REQUIRE(l1(tensor<float>({1, -3}), tensor<float>({0, 0})).item<float>() == 4);
  CrossEntropyLoss ce;
  REQUIRE(ce(zeros({2, 4}), tensor<int64_t>({1, 3})).item<float>() == Approx(std::log(4.0)));
  REQUIRE_THROWS_WITH(mse.forward(ones({2})), Catch::Contains("a loss module takes (input, target)"));
}
