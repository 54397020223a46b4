// index_select, gather, scatter, scatter_add, sort, argsort, topk and cumsum in float32, float64, float16,
// bfloat16 and int64 (with values beyond 2^53, which a float64 detour would round) against torch 2.x: values,
// index outputs and gradients, on a transposed (non-contiguous) input; and the same results on CUDA where a GPU
// is present.
#include <nlohmann/json.hpp>

#include "core/indexing.h"
#include "core/ops.h"
#include "tests/helpers.h"
#include "tests/json_compare.h"

using namespace ht;
using testing::require_close;
using testing::run_python;

namespace {
constexpr int64_t kBig = (int64_t(1) << 53) + 1;  // the first integer float64 cannot hold

struct Case {
  const char* python;  // a Python expression over x, y (and torch) giving a tuple of tensors
  std::function<std::vector<Tensor>(const Tensor&, const Tensor&)> cpp;
};

Tensor idx(std::initializer_list<std::initializer_list<int64_t>> rows) { return tensor(rows); }

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"(x.index_select(0, torch.tensor([2, 0, 2])), x.index_select(1, torch.tensor([3, 1], dtype=torch.int32)))",
       [](const Tensor& x, const Tensor&) {
         return std::vector<Tensor>{x.index_select(0, tensor<int64_t>({2, 0, 2})),
                                    x.index_select(1, tensor<int32_t>({3, 1}))};
       }},
      {"(x.gather(1, torch.tensor([[0, 3], [1, 1], [3, 0], [2, 2], [0, 1]])), x.gather(0, torch.tensor([[4, 0, 1, 1]])))",
       [](const Tensor& x, const Tensor&) {
         return std::vector<Tensor>{x.gather(1, idx({{0, 3}, {1, 1}, {3, 0}, {2, 2}, {0, 1}})),
                                    x.gather(0, idx({{4, 0, 1, 1}}))};
       }},
      {"(torch.scatter(x, 1, torch.tensor([[0, 3], [1, 2], [3, 0], [2, 1], [0, 1]]), y[:, :2]),"
       " torch.scatter(x, 0, torch.tensor([[4, 0, 1, 2]]), 7))",
       [](const Tensor& x, const Tensor& y) {
         return std::vector<Tensor>{scatter(x, 1, idx({{0, 3}, {1, 2}, {3, 0}, {2, 1}, {0, 1}}), y.slice(1, 0, 2)),
                                    scatter(x, 0, idx({{4, 0, 1, 2}}), 7)};
       }},
      {"(torch.scatter_add(x, 1, torch.tensor([[0, 0], [1, 1], [3, 3], [2, 0], [1, 1]]), y[:, 1:3]),)",
       [](const Tensor& x, const Tensor& y) {
         return std::vector<Tensor>{scatter_add(x, 1, idx({{0, 0}, {1, 1}, {3, 3}, {2, 0}, {1, 1}}), y.slice(1, 1, 3))};
       }},
      {"(*x.sort(stable=True, dim=1), *x.sort(stable=True, dim=0, descending=True), x.argsort(1))",
       [](const Tensor& x, const Tensor&) {
         auto [v1, i1] = x.sort(1);
         auto [v0, i0] = x.sort(0, true);
         return std::vector<Tensor>{v1, i1, v0, i0, x.argsort(1)};
       }},
      {"(*x.topk(2, 1), *x.topk(3, 0, largest=False))",
       [](const Tensor& x, const Tensor&) {
         auto [v1, i1] = x.topk(2, 1);
         auto [v0, i0] = x.topk(3, 0, false);
         return std::vector<Tensor>{v1, i1, v0, i0};
       }},
      {"(x.cumsum(0), x.cumsum(-1))",
       [](const Tensor& x, const Tensor&) { return std::vector<Tensor>{x.cumsum(0), x.cumsum(-1)}; }},
      {"(lambda z: (z.scatter_(1, torch.tensor([[2], [0], [1], [3], [0]]), y[:, 3:]), z)[1])(x * 1),",
       [](const Tensor& x, const Tensor& y) {
         Tensor z = x * 1;
         z.scatter_(1, idx({{2}, {0}, {1}, {3}, {0}}), y.slice(1, 3, 4));
         return std::vector<Tensor>{z};
       }},
  };
  return all;
}

// x is the transpose of a [4, 5] tensor of distinct values; y a contiguous [5, 4] source. In int64 both hold
// values beyond 2^53 (and their sums stay below 2^63).
std::vector<double> x_values(bool integral) {
  std::vector<double> v;
  for (int k = 0; k < 20; ++k) v.push_back(integral ? double((k * 7) % 20 - 10) : ((k * 7) % 20) * 0.25 - 2.5);
  return v;
}
std::vector<double> y_values(bool integral) {
  std::vector<double> v;
  for (int k = 0; k < 20; ++k) v.push_back(integral ? double((k * 3) % 20 + 1) : ((k * 3) % 20) * 0.5 + 1);
  return v;
}
Tensor make(const std::vector<double>& v, Shape shape, DType dtype, bool big, int64_t big_at, int64_t sign) {
  if (dtype != kInt64) return from_vector(v, shape).to(dtype);
  std::vector<int64_t> iv(v.begin(), v.end());
  if (big) iv[size_t(big_at)] = sign * (kBig + 2 * big_at);
  return from_vector(iv, shape);
}
Tensor x_base(DType dtype) {
  Tensor x = make(x_values(dtype == kInt64), {4, 5}, dtype, true, 3, 1);
  if (dtype == kInt64) {
    std::vector<int64_t> iv = x.to_vector<int64_t>();
    iv[11] = -(kBig + 2);
    iv[17] = (int64_t(1) << 60) + 7;
    x = from_vector(iv, {4, 5});
  }
  return x;
}
Tensor y_base(DType dtype) { return make(y_values(dtype == kInt64), {5, 4}, dtype, true, 5, 1); }

const char* kPythonHarness = R"(import json, torch
rows = []
def values(t):
    return t.tolist() if not t.is_floating_point() else t.double().reshape(-1).tolist()
def run(fn, dtype, xv, yv):
    floating = dtype.is_floating_point
    xb = torch.tensor(xv, dtype=torch.int64 if not floating else torch.float64).to(dtype).reshape(4, 5)
    y = torch.tensor(yv, dtype=torch.int64 if not floating else torch.float64).to(dtype).reshape(5, 4)
    if floating:
        xb.requires_grad_()
        y.requires_grad_()
    outs = fn(xb.t(), y)
    row = [[str(o.dtype)[6:], list(o.shape), o.reshape(-1).tolist() if not o.is_floating_point() else o.double().reshape(-1).tolist()] for o in outs]
    grads = [None, None]
    if floating:
        total = sum((o.double() * torch.arange(1, o.numel() + 1, dtype=torch.float64).reshape(o.shape)).sum()
                    for o in outs if o.requires_grad)
        total.backward()
        grads = [None if t.grad is None else t.grad.double().reshape(-1).tolist() for t in (xb, y)]
    rows.append([row, grads])
)";

nlohmann::json values_of(const Tensor& t) {
  if (t.is_floating_point()) return t.reshape({-1}).to_vector<double>();
  return t.reshape({-1}).to_vector<int64_t>();
}

nlohmann::json cpp_row(const Case& c, DType dtype, Device device) {
  bool floating = dtype != kInt64;
  Tensor xb = x_base(dtype).to(device), y = y_base(dtype).to(device);
  if (floating) {
    xb.requires_grad_();
    y.requires_grad_();
  }
  std::vector<Tensor> outs = c.cpp(xb.t(), y);
  nlohmann::json row = nlohmann::json::array();
  for (const Tensor& o : outs) row.push_back({dtype_name(o.dtype()), o.sizes(), values_of(o)});
  nlohmann::json grads = {nullptr, nullptr};
  if (floating) {
    Tensor total = zeros({}, {.dtype = kFloat64, .device = device});
    for (const Tensor& o : outs)
      if (o.requires_grad())
        total = total + sum(o.to(kFloat64) * arange(1, o.numel() + 1, 1, {.dtype = kFloat64, .device = device}).reshape(o.sizes()));
    total.backward();
    int k = 0;
    for (const Tensor& t : {xb, y}) {
      if (t.grad().defined()) grads[k] = t.grad().reshape({-1}).to_vector<double>();
      ++k;
    }
  }
  return {row, grads};
}


const std::vector<std::pair<const char*, DType>> kDTypes = {
    {"float32", kFloat32}, {"float64", kFloat64}, {"float16", kFloat16}, {"bfloat16", kBFloat16}, {"int64", kInt64}};
}  // namespace

TEST_CASE("index ops match torch 2.x in every dtype, int64 beyond 2^53 exactly, values and gradients") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  auto list = [](const Tensor& t) {
    std::string s = "[";
    if (t.dtype() == kInt64)
      for (int64_t v : t.to_vector<int64_t>()) s += std::to_string(v) + ",";
    else
      for (double v : t.to_vector<double>()) s += std::to_string(v) + ",";
    return s + "]";
  };
  std::string script = kPythonHarness;
  for (size_t i = 0; i < cases().size(); ++i)
    script += "def case" + std::to_string(i) + "(x, y):\n    return " + cases()[i].python + "\n";
  nlohmann::json got = nlohmann::json::array();
  for (const auto& [name, dtype] : kDTypes)
    for (size_t i = 0; i < cases().size(); ++i) {
      script += "run(case" + std::to_string(i) + ", torch." + name + ", " + list(x_base(dtype)) + ", " +
                list(y_base(dtype)) + ")\n";
      INFO("running case " << i << " in " << name << ": " << cases()[i].python);
      got.push_back(cpp_row(cases()[i], dtype, kCPU));
    }
  script += "print(json.dumps(rows))\n";
  nlohmann::json want = nlohmann::json::parse(run_python(script, testing::temp_dir("index-ops"), py));
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Case& c = cases()[i % cases().size()];
    DType dtype = kDTypes[i / cases().size()].second;
    INFO("case " << i % cases().size() << " in " << dtype_name(dtype) << ": " << c.python);
    const nlohmann::json& g = got[i][0];
    const nlohmann::json& w = want[i][0];
    REQUIRE(g.size() == w.size());
    double tol = testing::tol_for(dtype);
    for (size_t k = 0; k < g.size(); ++k) {
      INFO("output " << k);
      REQUIRE(g[k][0] == w[k][0]);
      REQUIRE(g[k][1] == w[k][1]);
      require_close(g[k][2], w[k][2], tol);
    }
    INFO("gradient of x");
    require_close(got[i][1][0], want[i][1][0], tol);
    INFO("gradient of y");
    require_close(got[i][1][1], want[i][1][1], tol);
  }
}

TEST_CASE("index ops: sort is stable with NaN last, bounds and shapes are checked as torch checks them") {
  Tensor t = tensor<float>({2, NAN, 1, 2, -1, 1});
  auto [v, i] = t.sort();
  REQUIRE(i.to_vector<int64_t>() == std::vector<int64_t>{4, 2, 5, 0, 3, 1});
  auto [vd, id] = t.sort(0, true);
  REQUIRE(id.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 3, 2, 5, 4});
  REQUIRE(std::isnan(vd.to_vector<float>()[0]));
  Tensor x = ones({2, 3});
  REQUIRE_THROWS_WITH(x.gather(1, idx({{3}})), Catch::Contains("[gather] index 3 is out of bounds for dimension with size 3"));
  REQUIRE_THROWS_WITH(x.index_select(0, tensor<int64_t>({-1})), Catch::Contains("index -1 is out of bounds"));
  REQUIRE_THROWS_WITH(x.gather(1, tensor<int64_t>({0})), Catch::Contains("same number of dimensions"));
  REQUIRE_THROWS_WITH(x.index_select(0, tensor<float>({0})), Catch::Contains("expected an int64 index, got float32"));
  REQUIRE_THROWS_WITH(scatter(x, 1, idx({{0, 1}}), ones({1, 1})), Catch::Contains("no larger than src"));
  REQUIRE_THROWS_WITH(x.topk(4, 1), Catch::Contains("[topk] k (4) is out of range"));
  // advanced indexing still takes negative indices, counting from the end
  REQUIRE(arange(5).index({tensor<int64_t>({-1, 0})}).to_vector<int64_t>() == std::vector<int64_t>{4, 0});
  // a scalar tensor sorts, gathers and sums as one element
  Tensor s = scalar_tensor(3.0);
  REQUIRE(std::get<0>(s.sort()).dim() == 0);
  REQUIRE(s.cumsum(0).item<double>() == 3.0);
  REQUIRE(s.index_select(0, tensor<int64_t>({0})).dim() == 0);
}

TEST_CASE("index ops give the CPU's results on CUDA, values and gradients") {
  for (Device dev : testing::test_devices()) {
    if (dev.is_cpu()) continue;
    for (const auto& [name, dtype] : kDTypes)
      for (size_t i = 0; i < cases().size(); ++i) {
        INFO("case " << i << " in " << name << ": " << cases()[i].python);
        REQUIRE(cpp_row(cases()[i], dtype, dev) == cpp_row(cases()[i], dtype, kCPU));
      }
  }
}
