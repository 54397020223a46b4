// What a library user must never see: a crash on an undefined tensor, silently wrong dtypes from type
// promotion, a pooling output that PyTorch refuses, gradients computed from tensors modified in place, modules
// with clashing names, an optimizer with nothing to optimize. Each case failed before and matches PyTorch now.
#include <nlohmann/json.hpp>

#include "nn/functional.h"
#include "nn/layers.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace ht;
using testing::run_python;

TEST_CASE("an undefined tensor throws, naming the op, instead of crashing") {
  Tensor u;
  REQUIRE_THROWS_WITH(u.dim(), Catch::Contains("the tensor is undefined"));
  REQUIRE_THROWS_WITH(u.sizes(), Catch::Contains("the tensor is undefined"));
  REQUIRE_THROWS_WITH(add(Tensor(), ones({2})), Catch::Contains("[add] expected a defined tensor as the first operand"));
  REQUIRE_THROWS_WITH(mul(ones({2}), Tensor()), Catch::Contains("[mul] expected a defined tensor as the second operand"));
  REQUIRE_THROWS_WITH(Tensor() * 2.0, Catch::Contains("[mul] expected a defined tensor"));
  REQUIRE_THROWS_WITH(exp(Tensor()), Catch::Contains("[exp] expected a defined tensor"));
  nn::Linear l(3, 2);
  REQUIRE_FALSE(l.weight.grad().defined());
  REQUIRE_THROWS_WITH(l.weight.grad().sizes(), Catch::Contains("grad() of a tensor before any backward"));
}

TEST_CASE("type promotion follows torch.result_type for scalars, 0-dim tensors and tensors") {
  // Each case: a tensor of `dtype` with values [100, 3] (bool: [true, false]) combined with a Python number or
  // a tensor; torch gives the result's dtype and values.
  struct ScalarCase {
    DType dtype;
    char op;
    const char* scalar;  // as written in Python and C++
  };
  const DType dtypes[] = {kUInt8, kInt8, kInt32, kInt64, kBool, kFloat16, kBFloat16, kFloat32, kFloat64};
  const char* scalars[] = {"2", "2.0", "0.5", "True"};
  std::vector<ScalarCase> cases;
  for (DType d : dtypes)
    for (char op : {'+', '*', '/'})
      for (const char* s : scalars)
        if (!(d == kBool && std::string(s) == "True" && op != '/')) cases.push_back({d, op, s});
  auto make = [](DType d) {
    return d == kBool ? from_vector(std::vector<uint8_t>{1, 0}, {2}).to(kBool)
                      : from_vector(std::vector<double>{100, 3}, {2}).to(d);
  };
  auto apply = [](const Tensor& t, char op, const std::string& s) -> Tensor {
    auto with = [&](auto v) { return op == '+' ? t + v : op == '*' ? t * v : t / v; };
    if (s == "2") return with(2);
    if (s == "2.0") return with(2.0);
    if (s == "0.5") return with(0.5);
    return with(true);
  };
  std::string py = "import torch, json\nrows = []\n";
  nlohmann::json got = nlohmann::json::array();
  for (const auto& c : cases) {
    std::string init = c.dtype == kBool ? "torch.tensor([True, False])"
                                        : std::string("torch.tensor([100., 3.]).to(torch.") + dtype_name(c.dtype) + ")";
    py += "r = " + init + " " + c.op + " " + c.scalar + "\nrows.append([str(r.dtype)[6:], r.double().tolist()])\n";
    Tensor r = apply(make(c.dtype), c.op, c.scalar);
    got.push_back({dtype_name(r.dtype()), r.to_vector<double>()});
  }
  // tensor-tensor: dimensioned with 0-dim, both ways, and with dimensioned
  struct PairCase {
    DType a, b;
    bool a_zero_dim, b_zero_dim;
  };
  std::vector<PairCase> pairs = {{kFloat16, kFloat32, false, true}, {kFloat32, kFloat16, true, false},
                                 {kInt64, kFloat64, false, true},   {kUInt8, kInt64, false, true},
                                 {kBool, kUInt8, false, true},      {kInt32, kInt64, true, true},
                                 {kFloat16, kBFloat16, false, false}, {kUInt8, kInt8, false, false},
                                 {kBFloat16, kFloat64, false, true}, {kInt8, kFloat16, true, false}};
  for (const auto& p : pairs) {
    auto side = [](DType d, bool zero) {
      std::string t = std::string("torch.tensor(") + (zero ? "3." : "[100., 3.]") + ")";
      return d == kBool ? "(" + t + " > 50)" : t + ".to(torch." + dtype_name(d) + ")";
    };
    py += "r = " + side(p.a, p.a_zero_dim) + " + " + side(p.b, p.b_zero_dim) +
          "\nrows.append([str(r.dtype)[6:], r.double().reshape(-1).tolist()])\n";
    auto make_side = [](DType d, bool zero) {
      Tensor t = zero ? full({}, 3.0) : from_vector(std::vector<double>{100, 3}, {2}).to(kFloat32);
      return d == kBool ? gt(t, full({}, 50.0)) : t.to(d);
    };
    Tensor r = make_side(p.a, p.a_zero_dim) + make_side(p.b, p.b_zero_dim);
    got.push_back({dtype_name(r.dtype()), r.reshape({-1}).to_vector<double>()});
  }
  py += "print(json.dumps(rows))\n";
  auto dir = testing::temp_dir("promotion");
  nlohmann::json want = nlohmann::json::parse(run_python(py, dir));
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("case " << i << (i < cases.size() ? std::string(": ") + dtype_name(cases[i].dtype) + " " + cases[i].op + " " +
                                                 cases[i].scalar
                                           : std::string(" (tensor pair)")));
    REQUIRE(got[i][0] == want[i][0]);
    REQUIRE(got[i][1].get<std::vector<double>>().size() == want[i][1].get<std::vector<double>>().size());
    for (size_t k = 0; k < got[i][1].size(); ++k)
      REQUIRE(got[i][1][k].get<double>() == Approx(want[i][1][k].get<double>()).epsilon(1e-2));
  }
  // the examples of the report: normalising uint8 pixels, and arange's dtype
  Tensor img = full({2}, 200, {.dtype = kUInt8});
  REQUIRE((img + 100.0).dtype() == kFloat32);
  REQUIRE((img + 100.0).to_vector<float>() == std::vector<float>{300, 300});
  REQUIRE(((img - 128.0) / 128.0).to_vector<float>() == std::vector<float>{0.5625f, 0.5625f});
  REQUIRE((arange(3) + 1.0).dtype() == kFloat32);
  REQUIRE(arange(0, 10).dtype() == kInt64);
  REQUIRE(arange(0, 10).to_vector<int64_t>().back() == 9);
  REQUIRE(arange(0.0, 1.0, 0.5).dtype() == kFloat32);
  REQUIRE(arange(0, 5, 1, {.dtype = kFloat64}).dtype() == kFloat64);
}

TEST_CASE("pooling refuses an output PyTorch calls too small") {
  Tensor x = randn({1, 1, 2, 2});
  REQUIRE_THROWS_WITH(nn::functional::max_pool2d(x, {3, 3}), Catch::Contains("Output size is too small"));
  REQUIRE_THROWS_WITH(nn::functional::max_pool2d(x, {4, 4}), Catch::Contains("calculated output size (0 x 0)"));
  // what PyTorch accepts stays accepted: a padded 5x5 window over 3x3 gives 1x1, ceil_mode keeps a last window
  REQUIRE(nn::functional::max_pool2d(randn({1, 1, 3, 3}), {5, 5}, {5, 5}, {2, 2}).sizes() == Shape{1, 1, 1, 1});
  REQUIRE(nn::functional::max_pool2d(randn({1, 1, 5, 5}), {2, 2}, {2, 2}, {0, 0}, {1, 1}, true).sizes() ==
          Shape{1, 1, 3, 3});
  REQUIRE_THROWS_WITH(nn::functional::conv2d(x, randn({1, 1, 3, 3})), Catch::Contains("conv2d"));
}

TEST_CASE("backward refuses a saved tensor that was modified in place, as PyTorch's version counter does") {
  Tensor w = ones({2}).requires_grad_();
  Tensor c = full({2}, 3.0);
  Tensor l = sum(w * c);
  uint64_t saved = c.version();
  c.fill_(5);
  REQUIRE(c.version() == saved + 1);
  REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("one of the variables needed for gradient computation has been "
                                                    "modified by an inplace operation") &&
                                        Catch::Contains("'mul'") && Catch::Contains("; expected version " + std::to_string(saved)));
  // a view shares the counter; an output a rule reads (exp keeps its result) counts too
  Tensor c2 = full({2, 2}, 3.0);
  Tensor l2 = sum(w * c2.select(0, 0));
  c2.select(0, 1).fill_(0);
  REQUIRE_THROWS_WITH(l2.backward(), Catch::Contains("modified by an inplace operation"));
  Tensor y = exp(w);
  Tensor l3 = sum(y);
  y.detach().fill_(0);
  REQUIRE_THROWS_WITH(l3.backward(), Catch::Contains("the output of 'exp'"));
  // what the rule does not read may change: add needs neither operand, so this backward runs and is right
  Tensor c4 = full({2}, 3.0);
  Tensor l4 = sum(w + c4);
  c4.fill_(7);
  l4.backward();
  REQUIRE(w.grad().to_vector<float>() == std::vector<float>{1, 1});
  // in-place writes on a leaf that requires grad need NoGradGuard
  REQUIRE_THROWS_WITH(w.fill_(2), Catch::Contains("a leaf Variable that requires grad is being used in an in-place"));
  {
    NoGradGuard no_grad;
    w.fill_(2);
  }
  REQUIRE(w.to_vector<float>() == std::vector<float>{2, 2});
}

namespace {
struct Clashing : nn::Module {
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Clashing"; }
  void add(const std::string& name, bool as_buffer) {
    if (as_buffer) register_buffer(name, zeros({1}));
    else register_parameter(name, zeros({1}));
  }
  void add_child_named(const std::string& name) { register_module(name, std::make_shared<nn::Linear>(1, 1)); }
};
}  // namespace

TEST_CASE("modules reject empty, dotted and repeated member names; optimizers an empty parameter list") {
  Clashing m;
  m.add("p", false);
  REQUIRE_THROWS_WITH(m.add("p", false), Catch::Contains("attribute 'p' already exists"));
  REQUIRE_THROWS_WITH(m.add("p", true), Catch::Contains("attribute 'p' already exists"));
  REQUIRE_THROWS_WITH(m.add_child_named("p"), Catch::Contains("attribute 'p' already exists"));
  REQUIRE_THROWS_WITH(m.add("", false), Catch::Contains("parameter name can't be empty string"));
  REQUIRE_THROWS_WITH(m.add("a.b", true), Catch::Contains("buffer name can't contain \".\""));
  REQUIRE(m.state_dict().size() == 1);

  REQUIRE_THROWS_WITH(optim::Adam(std::vector<Tensor>{}), Catch::Contains("optimizer got an empty parameter list"));
  REQUIRE_THROWS_WITH(optim::SGD(std::vector<Tensor>{}, {.lr = 0.1}),
                      Catch::Contains("optimizer got an empty parameter list"));
  REQUIRE_THROWS_WITH(optim::AdamW(std::vector<optim::ParamGroup<optim::AdamWOptions>>{}),
                      Catch::Contains("[AdamW] optimizer got an empty parameter list"));
}
