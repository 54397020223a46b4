// Memory formats (channels_last): contiguity, suggest_memory_format and the output strides of elementwise ops,
// copies and factories over some 800 layouts, all compared with Debian's python3-torch; then values, autograd,
// Module::to, the optimizers (Adam on a channels_last ResNet-18 equals Adam on the NCHW one, bit for bit) and
// torch.save / torch.load both ways.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <numeric>

#include "io/serialize.h"
#include "nn/resnet.h"
#include "optim/adam.h"
#include "optim/grad_scaler.h"
#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace ht;
using nlohmann::json;
using testing::check_equal;

namespace {

constexpr MemoryFormat kCL = MemoryFormat::ChannelsLast;

struct Layout {
  Shape sizes, strides;
};

// A view with exactly these strides over random values (random bools for a condition).
Tensor strided(const Layout& l, uint64_t seed, bool as_bool = false) {
  int64_t extent = 1;
  if (numel_of(l.sizes) > 0)
    for (size_t d = 0; d < l.sizes.size(); ++d) extent += (l.sizes[d] - 1) * l.strides[d];
  Generator g(seed);
  Tensor flat = randn({extent}, g);
  return (as_bool ? gt(flat, zeros({})) : flat).as_strided(l.sizes, l.strides, 0);
}

// Dense strides that lay the dims out in `order` (slowest first).
Shape dense_in_order(const Shape& sizes, const std::vector<int>& order) {
  Shape st(sizes.size());
  int64_t acc = 1;
  for (size_t k = order.size(); k-- > 0;) {
    st[size_t(order[k])] = acc;
    acc *= std::max<int64_t>(sizes[size_t(order[k])], 1);
  }
  return st;
}

// Every dense permutation of a few 4-D shapes (the degenerate ones too: C == 1, H == W == 1, N == 1, empty),
// each also with gaps (non-dense), with odd strides on its size-1 dims, and some expanded; plus 2-D and 3-D.
std::vector<Layout> layouts() {
  std::vector<Layout> out;
  const std::vector<Shape> shapes{{2, 3, 4, 5}, {2, 1, 4, 5}, {2, 3, 1, 1}, {1, 3, 4, 5}, {1, 1, 1, 1},
                                  {1, 3, 1, 4}, {2, 3, 4, 1}, {0, 3, 4, 5}, {3, 1, 1, 4}};
  for (const Shape& s : shapes) {
    std::vector<int> order{0, 1, 2, 3};
    do {
      Shape st = dense_in_order(s, order);
      out.push_back({s, st});
      Shape gapped = st;
      for (int64_t& v : gapped) v *= 2;
      out.push_back({s, gapped});
      Shape odd = st;
      for (size_t d = 0; d < 4; ++d)
        if (s[d] == 1) odd[d] = d == 1 ? 0 : 7;
      if (odd != st) out.push_back({s, odd});
      if (order == std::vector<int>{0, 1, 2, 3} || order == std::vector<int>{0, 2, 3, 1}) {
        for (size_t d = 0; d < 4; ++d) {
          if (s[d] < 2) continue;
          Shape ex = st;
          ex[d] = 0;
          out.push_back({s, ex});
        }
      }
    } while (std::next_permutation(order.begin(), order.end()));
  }
  for (const Layout& l : std::vector<Layout>{{{3, 4}, {4, 1}}, {{3, 4}, {1, 3}}, {{3, 4}, {8, 1}}, {{3, 4}, {1, 6}},
                                             {{3, 1}, {1, 5}}, {{5}, {1}}, {{5}, {2}}, {{}, {}}})
    out.push_back(l);
  for (std::vector<int> order{0, 1, 2}; std::next_permutation(order.begin(), order.end());)
    out.push_back({{2, 3, 4}, dense_in_order({2, 3, 4}, order)});
  return out;
}

json to_json(const Layout& l) { return json::array({l.sizes, l.strides}); }

// Pairs for binary ops (same shapes, and broadcasts both ways) and triples for where, over the 4-D layouts.
struct Combos {
  std::vector<std::pair<Layout, Layout>> pairs;
  std::vector<std::array<Layout, 3>> triples;
};

Combos combos(const std::vector<Layout>& all) {
  std::map<Shape, std::vector<Layout>> by_shape;
  for (const Layout& l : all)
    if (l.sizes.size() == 4) by_shape[l.sizes].push_back(l);
  const std::vector<Layout> partners{{{3, 1, 1}, {1, 1, 1}}, {{1, 3, 1, 1}, {3, 1, 1, 1}}, {{5}, {1}},
                                     {{4, 1}, {1, 1}},       {{}, {}},                     {{2, 3, 1, 1}, {3, 1, 1, 1}},
                                     {{2, 3, 1, 1}, {3, 1, 3, 3}}, {{1, 1, 4, 5}, {20, 20, 5, 1}},
                                     {{3, 4, 5}, {1, 15, 3}}};
  Combos c;
  for (auto& [shape, group] : by_shape) {
    size_t n = group.size();
    for (size_t i = 0; i < n; ++i) {
      const Layout& a = group[i];
      const Layout& b = group[(i * 7 + 3) % n];
      c.pairs.push_back({a, b});
      c.pairs.push_back({b, a});
      c.triples.push_back({a, b, group[(i * 5 + 1) % n]});
      if (shape != Shape{2, 3, 4, 5}) continue;
      for (const Layout& p : partners) {
        c.pairs.push_back({a, p});
        c.pairs.push_back({p, a});
      }
      c.triples.push_back({partners[1], a, b});
      c.triples.push_back({a, partners[0], b});
    }
  }
  return c;
}

// What PyTorch gives for every layout: contiguity flags, suggest_memory_format and the strides of the outputs of
// each op below ("error: ..." where it refuses).
const char* kTorchScript = R"PY(
import json, sys, torch
import torch._prims_common as prims
cl = torch.channels_last
cases = json.load(open(sys.argv[1]))

def make(c, as_bool=False):
    sizes, strides = c
    n = 1 if 0 in sizes else 1 + sum((s - 1) * st for s, st in zip(sizes, strides))
    flat = torch.randn(n)
    return (flat > 0 if as_bool else flat).as_strided(sizes, strides)

def st(f):
    try:
        return list(f().stride())
    except RuntimeError as e:
        return "error: " + str(e).split("\n")[0]

def unary(c):
    x = make(c)
    r = {"contig": x.is_contiguous(), "cl": x.is_contiguous(memory_format=cl),
         "dense": prims.is_non_overlapping_and_dense(x),
         "neg": st(lambda: x.neg()), "exp": st(lambda: x.exp()), "relu": st(lambda: torch.relu(x)),
         "pow": st(lambda: x.pow(2.5)), "clamp": st(lambda: x.clamp(0, 1)), "add_s": st(lambda: x + 2),
         "mul_s": st(lambda: x * 2), "div_s": st(lambda: x / 2), "rsub_s": st(lambda: 2 - x),
         "rdiv_s": st(lambda: 2 / x), "clone": st(lambda: x.clone()), "to64": st(lambda: x.to(torch.float64)),
         "to16": st(lambda: x.half()), "empty_like": st(lambda: torch.empty_like(x)),
         "zeros_like": st(lambda: torch.zeros_like(x)), "contiguous": st(lambda: x.contiguous()),
         "clone_c": st(lambda: x.clone(memory_format=torch.contiguous_format)),
         "to_c": st(lambda: x.to(memory_format=torch.contiguous_format))}
    if x.dim() == 4:
        r["suggest"] = "channels_last" if x.to(memory_format=cl) is x else "contiguous"
        r.update({"contig_cl": st(lambda: x.contiguous(memory_format=cl)), "to_cl": st(lambda: x.to(memory_format=cl)),
                  "clone_cl": st(lambda: x.clone(memory_format=cl)),
                  "empty_like_cl": st(lambda: torch.empty_like(x, memory_format=cl))})
    return r

def binary(p):
    a, b = make(p[0]), make(p[1])
    return {"add": st(lambda: a + b), "mul": st(lambda: a * b), "gt": st(lambda: a > b),
            "maximum": st(lambda: torch.maximum(a, b))}

def where(t):
    return {"where": st(lambda: torch.where(make(t[0], True), make(t[1]), make(t[2])))}

json.dump({"unary": [unary(c) for c in cases["unary"]], "binary": [binary(p) for p in cases["binary"]],
           "where": [where(t) for t in cases["where"]]}, open(sys.argv[2], "w"))
)PY";

json torch_reference(const std::vector<Layout>& unary, const Combos& c, const std::filesystem::path& dir) {
  json cases{{"unary", json::array()}, {"binary", json::array()}, {"where", json::array()}};
  for (const Layout& l : unary) cases["unary"].push_back(to_json(l));
  for (const auto& [a, b] : c.pairs) cases["binary"].push_back({to_json(a), to_json(b)});
  for (const auto& t : c.triples) cases["where"].push_back({to_json(t[0]), to_json(t[1]), to_json(t[2])});
  std::ofstream(dir / "cases.json") << cases.dump();
  std::ofstream(dir / "layouts.py") << kTorchScript;
  testing::run_python("import runpy, sys\nsys.argv = ['layouts.py', '" + (dir / "cases.json").string() + "', '" +
                          (dir / "torch.json").string() + "']\nrunpy.run_path('" + (dir / "layouts.py").string() +
                          "', run_name='__main__')\n",
                      dir);
  return json::parse(std::ifstream(dir / "torch.json"));
}

// Runs `f` and gives its result's strides, or "error" when halftorch refuses (PyTorch's answer starts with it).
json strides_of(const std::function<Tensor()>& f) {
  try {
    return f().strides();
  } catch (const Error&) {
    return "error";
  }
}

bool agrees(const json& got, const json& want) {
  if (want.is_string()) return got.is_string();
  return got == want;
}

std::string describe(const Layout& l) { return shape_str(l.sizes) + "@" + shape_str(l.strides); }

// Collects disagreements so that one failure lists them all (up to 30).
struct Mismatches {
  std::vector<std::string> lines;
  void check(const std::string& what, const json& got, const json& want) {
    if (!agrees(got, want)) lines.push_back(what + ": halftorch " + got.dump() + ", torch " + want.dump());
  }
  void require_none() const {
    std::string text;
    for (size_t i = 0; i < lines.size() && i < 30; ++i) text += lines[i] + "\n";
    INFO(lines.size() << " mismatches:\n" << text);
    REQUIRE(lines.empty());
  }
};

const char* format_word(MemoryFormat f) { return f == kCL ? "channels_last" : "contiguous"; }

}  // namespace

TEST_CASE("contiguity, suggest_memory_format and output strides match PyTorch over 800 layouts") {
  std::vector<Layout> all = layouts();
  Combos c = combos(all);
  auto dir = testing::temp_dir("memory-format");
  json ref = torch_reference(all, c, dir);
  Mismatches m;
  for (size_t i = 0; i < all.size(); ++i) {
    const json& want = ref["unary"][i];
    Tensor x = strided(all[i], i);
    std::string at = describe(all[i]) + " ";
    m.check(at + "is_contiguous", x.is_contiguous(), want["contig"]);
    m.check(at + "is_contiguous(channels_last)", x.is_contiguous(kCL), want["cl"]);
    m.check(at + "is_non_overlapping_and_dense", x.is_non_overlapping_and_dense(), want["dense"]);
    const std::vector<std::pair<std::string, std::function<Tensor()>>> ops{
        {"neg", [&] { return neg(x); }},
        {"exp", [&] { return exp(x); }},
        {"relu", [&] { return relu(x); }},
        {"pow", [&] { return pow(x, 2.5); }},
        {"clamp", [&] { return clamp(x, 0, 1); }},
        {"add_s", [&] { return x + 2.0; }},
        {"mul_s", [&] { return x * 2.0; }},
        {"div_s", [&] { return x / 2.0; }},
        {"rsub_s", [&] { return 2.0 - x; }},
        {"rdiv_s", [&] { return 2.0 / x; }},
        {"clone", [&] { return x.clone(); }},
        {"to64", [&] { return x.to(kFloat64); }},
        {"to16", [&] { return x.half(); }},
        {"empty_like", [&] { return empty_like(x); }},
        {"zeros_like", [&] { return zeros_like(x); }},
        {"contiguous", [&] { return x.contiguous(); }},
        {"clone_c", [&] { return x.clone(MemoryFormat::Contiguous); }},
        {"to_c", [&] { return x.to(MemoryFormat::Contiguous); }},
    };
    for (const auto& [name, f] : ops) m.check(at + name, strides_of(f), want[name]);
    if (x.dim() != 4) continue;
    m.check(at + "suggest_memory_format", format_word(x.suggest_memory_format()), want["suggest"]);
    m.check(at + "contiguous(channels_last)", strides_of([&] { return x.contiguous(kCL); }), want["contig_cl"]);
    m.check(at + "to(channels_last)", strides_of([&] { return x.to(kCL); }), want["to_cl"]);
    m.check(at + "clone(channels_last)", strides_of([&] { return x.clone(kCL); }), want["clone_cl"]);
    m.check(at + "empty_like(channels_last)", strides_of([&] { return empty_like(x, kCL); }), want["empty_like_cl"]);
  }
  for (size_t i = 0; i < c.pairs.size(); ++i) {
    const json& want = ref["binary"][i];
    Tensor a = strided(c.pairs[i].first, 2 * i), b = strided(c.pairs[i].second, 2 * i + 1);
    std::string at = describe(c.pairs[i].first) + " with " + describe(c.pairs[i].second) + " ";
    m.check(at + "add", strides_of([&] { return a + b; }), want["add"]);
    m.check(at + "mul", strides_of([&] { return a * b; }), want["mul"]);
    m.check(at + "gt", strides_of([&] { return gt(a, b); }), want["gt"]);
    m.check(at + "maximum", strides_of([&] { return maximum(a, b); }), want["maximum"]);
  }
  for (size_t i = 0; i < c.triples.size(); ++i) {
    const auto& t = c.triples[i];
    Tensor cond = strided(t[0], 3 * i, true);
    std::string at = describe(t[0]) + ", " + describe(t[1]) + ", " + describe(t[2]) + " where";
    m.check(at, strides_of([&] { return where(cond, strided(t[1], 1), strided(t[2], 2)); }), ref["where"][i]["where"]);
  }
  m.require_none();
}

TEST_CASE("channels_last tensors hold NHWC memory and give the values of their NCHW twins", "[cuda]") {
  for (Device dev : testing::test_devices()) {
    Tensor x = arange(0.0, 120.0, 1.0, {.device = dev}).view({2, 3, 4, 5});
    Tensor cl = x.contiguous(kCL);
    REQUIRE(cl.strides() == Shape{60, 1, 15, 3});
    REQUIRE(cl.is_contiguous(kCL));
    REQUIRE_FALSE(cl.is_contiguous());
    REQUIRE(cl.suggest_memory_format() == kCL);
    REQUIRE(cl.contiguous(kCL).same(cl));
    REQUIRE(cl.to(kCL).same(cl));
    check_equal(cl, x);
    // the storage, read flat, is the NHWC image
    Tensor flat = cl.as_strided({120}, {1}, 0);
    check_equal(flat, x.permute({0, 2, 3, 1}).contiguous().reshape({120}));
    Tensor back = cl.contiguous();
    REQUIRE(back.strides() == x.strides());
    check_equal(back, x);

    // elementwise ops on channels_last operands: right values, channels_last results
    Tensor y = rand({2, 3, 4, 5}, {.device = dev});
    Tensor ycl = y.contiguous(kCL);
    Tensor bias = arange(0.0, 3.0, 1.0, {.device = dev}).view({3, 1, 1});
    Tensor half = full({}, 0.5, {.device = dev});
    for (const auto& [name, got, want] : std::vector<std::tuple<std::string, Tensor, Tensor>>{
             {"add", add(cl, ycl), add(x, y)},
             {"mul mixed", mul(cl, y), mul(x, y)},
             {"sub broadcast", sub(cl, bias), sub(x, bias)},
             {"relu", relu(cl - 50.0), relu(x - 50.0)},
             {"where", where(gt(ycl, half), cl, ycl), where(gt(y, half), x, y)},
             {"to half", cl.half(), x.half()},
             {"clone", cl.clone(), x}}) {
      INFO(name << " on " << dev.str());
      REQUIRE(got.is_contiguous(kCL));
      check_equal(got, want, name);
    }
    REQUIRE(zeros_like(cl).is_contiguous(kCL));
    REQUIRE(ones_like(cl).to_vector<float>() == std::vector<float>(120, 1.f));
    REQUIRE(full_like(cl, 3.0, MemoryFormat::Contiguous).is_contiguous());
    Tensor e = empty({2, 3, 4, 5}, {.dtype = kFloat16, .device = dev, .memory_format = kCL});
    REQUIRE(e.strides() == Shape{60, 1, 15, 3});
    REQUIRE(e.dtype() == kFloat16);
    REQUIRE(zeros({2, 3, 4, 5}, {.device = dev, .memory_format = kCL}).is_contiguous(kCL));
    Generator g1(5), g2(5);
    Tensor r = randn({2, 3, 4, 5}, g1, {.device = dev, .memory_format = kCL});
    REQUIRE(r.is_contiguous(kCL));
    check_equal(r, randn({2, 3, 4, 5}, g2, {.device = dev}), "a channels_last draw holds the contiguous draw's values");
    // copy_ into a channels_last destination keeps it
    Tensor dst = empty({2, 3, 4, 5}, {.device = dev, .memory_format = kCL});
    dst.copy_(x);
    REQUIRE(dst.strides() == Shape{60, 1, 15, 3});
    check_equal(dst, x);
  }
}

TEST_CASE("memory format misuse fails with PyTorch's messages") {
  Tensor m = ones({2, 3});
  REQUIRE_THROWS_WITH(empty({2, 3}, {.memory_format = kCL}), Catch::Contains("required rank 4 tensor to use channels_last format"));
  REQUIRE_THROWS_WITH(m.contiguous(kCL), Catch::Contains("required rank 4 tensor"));
  REQUIRE_THROWS_WITH(m.to(kCL), Catch::Contains("required rank 4 tensor"));
  REQUIRE_THROWS_WITH(empty({2, 3}, {.memory_format = MemoryFormat::Preserve}), Catch::Contains("unsupported memory format"));
  REQUIRE(m.contiguous(MemoryFormat::Preserve).same(m));
  REQUIRE_THROWS_WITH(m.t().contiguous(MemoryFormat::Preserve), Catch::Contains("preserve memory format is unsupported"));
  // as x.to(memory_format=...) in PyTorch: a transposed matrix already suggests the contiguous format
  Tensor t = m.t();
  REQUIRE(t.to(MemoryFormat::Contiguous).same(t));
  REQUIRE(m.to(MemoryFormat::Preserve).same(m));
  std::ostringstream os;
  os << kCL;
  REQUIRE(os.str() == "torch.channels_last");
}

TEST_CASE("gradients keep the layout and a channels_last leaf gets a channels_last .grad") {
  Generator gen(3);
  Tensor x0 = randn({2, 3, 4, 5}, gen, {.dtype = kFloat64});
  Tensor w = randn({2, 3, 4, 5}, gen, {.dtype = kFloat64});
  Tensor a = x0.clone().requires_grad_();
  Tensor b = x0.contiguous(kCL).requires_grad_();
  auto f = [&](const Tensor& x) { return sum(mul(relu(add(mul(x, 2.0), x)), w)); };
  f(a).backward();
  f(b).backward();
  REQUIRE(b.grad().is_contiguous(kCL));
  check_equal(b.grad(), a.grad());
  // a gradient that arrives contiguous (through a contiguous() copy) is still stored channels_last, and a second
  // backward accumulates into it in place
  Tensor before = b.grad();
  sum(mul(b.contiguous(), w)).backward();
  REQUIRE(b.grad().same(before));
  REQUIRE(b.grad().is_contiguous(kCL));
  sum(mul(a.contiguous(), w)).backward();
  check_equal(b.grad(), a.grad());
  testing::check_gradients([](const std::vector<Tensor>& in) { return mul(in[0].contiguous(kCL), in[1]); },
                           {x0, w});
}

namespace {

using ModelPtr = std::shared_ptr<nn::ResNet>;

// Two ResNet-18s with equal weights, the second converted to channels_last.
std::pair<ModelPtr, ModelPtr> twin_resnets(DType dtype) {
  manual_seed(11);
  ModelPtr a = nn::resnet18({.num_classes = 10, .in_channels = 1});
  ModelPtr b = nn::resnet18({.num_classes = 10, .in_channels = 1});
  a->to(dtype);
  b->to(dtype);
  b->to(kCL);
  b->load_state_dict(a->state_dict());
  return {a, b};
}

// Equal gradients for both parameter sets, each laid out like its parameter.
void set_twin_grads(std::vector<Tensor> pa, std::vector<Tensor> pb, uint64_t seed, double scale = 1) {
  Generator gen(seed);
  NoGradGuard ng;
  for (size_t i = 0; i < pa.size(); ++i) {
    Tensor g = mul(randn(pa[i].sizes(), gen, {.dtype = pa[i].dtype()}), scale);
    Tensor gb = empty_like(pb[i]);
    gb.copy_(g);
    pa[i].set_grad(g.clone(MemoryFormat::Contiguous));
    pb[i].set_grad(gb);
  }
}

void require_bitwise_equal(const std::vector<Tensor>& pa, const std::vector<Tensor>& pb) {
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO("parameter " << i << " of shape " << shape_str(pa[i].sizes()));
    std::vector<float> va = pa[i].to_vector<float>(), vb = pb[i].to_vector<float>();
    REQUIRE(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0);
  }
}

}  // namespace

TEST_CASE("Module::to(ChannelsLast) converts 4-D tensors in place and load_state_dict keeps the layout") {
  auto [a, b] = twin_resnets(kFloat32);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  Tensor conv1 = b->conv1->named_parameters()[0].second;
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pb[i].first);
    REQUIRE(pb[i].second.is_contiguous(pb[i].second.dim() == 4 ? kCL : MemoryFormat::Contiguous));
    check_equal(pb[i].second, pa[i].second);
  }
  REQUIRE(conv1.is_contiguous(kCL));  // the handle the layer keeps saw the change
  b->to(MemoryFormat::Contiguous);
  REQUIRE(conv1.is_contiguous());
  b->to(kCL);
  REQUIRE(conv1.is_contiguous(kCL));
  REQUIRE_THROWS_WITH(b->to(MemoryFormat::Preserve), Catch::Contains("expects ChannelsLast or Contiguous"));
  // the model still runs, and gives the NCHW model's output
  Tensor x = randn({2, 1, 32, 32});
  a->eval();
  b->eval();
  testing::check_close(b->forward(x.contiguous(kCL)), a->forward(x), 1e-5, 1e-4);
}

TEST_CASE("Adam and SGD step a channels_last ResNet-18 bit for bit like the NCHW one") {
  for (DType dtype : {kFloat32, kFloat16}) {
    INFO(dtype_name(dtype));
    auto [a, b] = twin_resnets(dtype);
    std::vector<Tensor> pa = a->parameters(), pb = b->parameters();
    optim::Adam oa(pa, {.lr = 1e-2, .weight_decay = 1e-4, .amsgrad = true});
    optim::Adam ob(pb, {.lr = 1e-2, .weight_decay = 1e-4, .amsgrad = true});
    amp::GradScaler sa({.init_scale = 1024}), sb({.init_scale = 1024});
    sa.scale(ones({}));
    sb.scale(ones({}));
    for (int step = 0; step < 3; ++step) {
      set_twin_grads(pa, pb, 100 + step, 1024);
      sa.step(oa);
      sb.step(ob);
      sa.update();
      sb.update();
    }
    require_bitwise_equal(pa, pb);
    Value state = ob.state_dict();
    for (size_t i = 0; i < pb.size(); ++i) {
      const Value& st = state["state"].to_dict().at(int64_t(i));
      for (const char* key : {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) {
        INFO(key << " of parameter " << i);
        REQUIRE(st[key].to_tensor().strides() == pb[i].strides());
      }
    }
    // a saved state loads back in the parameters' layout, and stepping on from it stays equal
    optim::Adam oc(pb, {.lr = 1e-2, .weight_decay = 1e-4, .amsgrad = true});
    oc.load_state_dict(oa.state_dict());
    set_twin_grads(pa, pb, 200);
    oa.step();
    oc.step();
    require_bitwise_equal(pa, pb);

    optim::SGD ga(pa, {.lr = 1e-2, .momentum = 0.9, .nesterov = true});
    optim::SGD gb(pb, {.lr = 1e-2, .momentum = 0.9, .nesterov = true});
    for (int step = 0; step < 2; ++step) {
      set_twin_grads(pa, pb, 300 + step);
      ga.step();
      gb.step();
    }
    require_bitwise_equal(pa, pb);
  }
}

TEST_CASE("an optimizer refuses a gradient laid out unlike its parameter") {
  Tensor p = randn({4, 3, 2, 2}).contiguous(kCL).requires_grad_();
  optim::Adam opt(std::vector<Tensor>{p});
  p.set_grad(zeros({4, 3, 2, 2}));
  REQUIRE_THROWS_WITH(opt.step(), Catch::Contains("must be laid out like its parameter"));
  REQUIRE_THROWS_WITH(optim::Adam(std::vector<Tensor>{randn({4, 6}).slice(1, 0, 6, 2).requires_grad_()}),
                      Catch::Contains("expected dense parameters"));
}

TEST_CASE("torch.save and torch.load keep channels_last strides both ways") {
  auto dir = testing::temp_dir("memory-format-io");
  auto [a, b] = twin_resnets(kFloat16);
  ht::save(a->state_dict(), (dir / "nchw.pth").string());
  ht::save(b->state_dict(), (dir / "cl.pth").string());
  Tensor x = arange(0.0, 120.0, 1.0).view({2, 3, 4, 5}).contiguous(kCL);
  ht::save(Value(x), (dir / "x.pth").string());
  std::string d = dir.string();
  std::string out = testing::run_python(R"PY(
import torch
cl = torch.channels_last
d = ')PY" + d + R"PY('
a, b = torch.load(d + '/nchw.pth'), torch.load(d + '/cl.pth')
assert list(a.keys()) == list(b.keys())
for k in a:
    want = a[k].to(memory_format=cl) if a[k].dim() == 4 else a[k]
    # what torch.save writes for model.to(memory_format=torch.channels_last): the same strides, storage, values
    assert b[k].stride() == want.stride(), (k, b[k].stride(), want.stride())
    assert torch.equal(b[k], a[k]), k
    flat = lambda t: t.as_strided((t.numel(),), (1,), t.storage_offset())
    assert torch.equal(flat(b[k]), flat(want)), k
x = torch.load(d + '/x.pth')
assert x.stride() == (60, 1, 15, 3) and torch.equal(x, torch.arange(120.).view(2, 3, 4, 5))
y = torch.arange(120.).view(2, 3, 4, 5).to(memory_format=cl) * 2
torch.save({'y': y, 'w': torch.randn(8, 3, 3, 3).to(memory_format=cl).half()}, d + '/torch.pth')
print('ok')
)PY",
                                        dir);
  REQUIRE(out.find("ok") != std::string::npos);
  Value loaded = ht::load((dir / "torch.pth").string());
  Tensor y = loaded["y"].to_tensor();
  REQUIRE(y.strides() == Shape{60, 1, 15, 3});
  check_equal(y, mul(arange(0.0, 120.0, 1.0).view({2, 3, 4, 5}), 2.0));
  REQUIRE(loaded["w"].to_tensor().is_contiguous(kCL));
  // a channels_last model loads an NCHW file and stays channels_last; an NCHW model loads the channels_last file
  auto [c, e] = twin_resnets(kFloat16);
  e->load_state_dict(ht::load_state_dict_file((dir / "nchw.pth").string()));
  c->load_state_dict(ht::load_state_dict_file((dir / "cl.pth").string()));
  auto pc = c->parameters(), pe = e->parameters(), pa = a->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    REQUIRE(pc[i].is_contiguous());
    REQUIRE(pe[i].is_contiguous(pe[i].dim() == 4 ? kCL : MemoryFormat::Contiguous));
    check_equal(pc[i], pa[i]);
    check_equal(pe[i], pa[i]);
  }
}
