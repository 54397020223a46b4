// libtorch's everyday spellings (issue 14): tensor methods, operators with numbers on either side, in-place
// ops recorded by autograd, backward(gradient, retain_graph), grad_fn names and bool printing, each checked
// against torch 2.x on a non-contiguous input, in float32 and float64: values, dtypes, shapes and gradients.
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/indexing.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/functional.h"
#include "tests/helpers.h"
#include "tests/json_compare.h"

using namespace ht;
using testing::require_close;
using testing::run_python;
using namespace ht::indexing;
namespace F = ht::nn::functional;

namespace {
const std::vector<double> kX = {0.5, -1.25, 2.0, 3.5, -0.75, 1.5, 0.25, -2.5, 1.0, 4.0, -3.0, 0.125};
const std::vector<double> kY = {1.5, 0.25, 2.0, 0.75, 3.0, 1.25, 0.5, 2.5, 1.75, 0.625, 1.0, 2.25};

struct Case {
  const char* python;  // a Python function body over x and y returning a tensor
  std::function<Tensor(Tensor, Tensor)> cpp;
};

// z = x * 1 and friends: in-place ops need a tensor that is not a leaf
Tensor chain_in_place(Tensor x, Tensor y) {
  Tensor z = x * 1;
  z.add_(y, 2);
  z.mul_(y);
  z.clamp_(-1, 6);
  z -= 0.5;
  z /= y;
  z *= 3;
  z += y;
  z.sub_(x);
  z.div_(2);
  return z;
}
Tensor copy_and_fill(Tensor x, Tensor y) {
  Tensor z = y * 2;
  z.copy_(x.sum(0));  // broadcast [4] into [3, 4]; the gradient goes to x
  Tensor w = y * 1;
  w.fill_(2);  // cuts y's history
  return z * w;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"return x.sum()", [](Tensor x, Tensor) { return x.sum(); }},
      {"return x.sum(1)", [](Tensor x, Tensor) { return x.sum(1); }},
      {"return x.sum((0, 1), keepdim=True)", [](Tensor x, Tensor) { return x.sum({0, 1}, true); }},
      {"return x.mean(0)", [](Tensor x, Tensor) { return x.mean(0); }},
      {"return x.mean(-1, keepdim=True)", [](Tensor x, Tensor) { return x.mean(-1, true); }},
      {"return x.max()", [](Tensor x, Tensor) { return x.max(); }},
      {"return x.min()", [](Tensor x, Tensor) { return x.min(); }},
      {"return x.max(1)[0]", [](Tensor x, Tensor) { return std::get<0>(x.max(1)); }},
      {"return x.min(0, keepdim=True)[1]", [](Tensor x, Tensor) { return std::get<1>(x.min(0, true)); }},
      {"return x.argmax(1)", [](Tensor x, Tensor) { return x.argmax(1); }},
      {"return x.argmax()", [](Tensor x, Tensor) { return x.argmax(); }},
      {"return x.argmin(0, keepdim=True)", [](Tensor x, Tensor) { return x.argmin(0, true); }},
      {"return x.abs()", [](Tensor x, Tensor) { return x.abs(); }},
      {"return x.exp()", [](Tensor x, Tensor) { return x.exp(); }},
      {"return y.log()", [](Tensor, Tensor y) { return y.log(); }},
      {"return y.sqrt()", [](Tensor, Tensor y) { return y.sqrt(); }},
      {"return x.pow(3)", [](Tensor x, Tensor) { return x.pow(3); }},
      {"return x.relu()", [](Tensor x, Tensor) { return x.relu(); }},
      {"return x.sigmoid() + x.tanh() + x.square()", [](Tensor x, Tensor) { return x.sigmoid() + x.tanh() + x.square(); }},
      // bounds that no input equals: torch 2.x gives a boundary value no gradient, halftorch (like torch 1.13) does
      {"return x.clamp(-0.9, 1.75)", [](Tensor x, Tensor) { return x.clamp(-0.9, 1.75); }},
      {"return x.matmul(y.t())", [](Tensor x, Tensor y) { return x.matmul(y.t()); }},
      {"return y.view(2, 6)", [](Tensor, Tensor y) { return y.view({2, 6}); }},
      {"return x.reshape(2, 6)", [](Tensor x, Tensor) { return x.reshape({2, 6}); }},
      {"return x.permute(1, 0)", [](Tensor x, Tensor) { return x.permute({1, 0}); }},
      {"return x.flatten()", [](Tensor x, Tensor) { return x.flatten(); }},
      {"return x.unsqueeze(1).squeeze(1)", [](Tensor x, Tensor) { return x.unsqueeze(1).squeeze(1); }},
      {"return x.unsqueeze(0).squeeze()", [](Tensor x, Tensor) { return x.unsqueeze(0).squeeze(); }},
      {"return x.to(torch.float16).to(torch.float64)", [](Tensor x, Tensor) { return x.to(kFloat16).to(kFloat64); }},
      {"return x.softmax(1)", [](Tensor x, Tensor) { return x.softmax(1); }},
      {"return x.log_softmax(0)", [](Tensor x, Tensor) { return x.log_softmax(0); }},
      {"return x.lt(y)", [](Tensor x, Tensor y) { return x.lt(y); }},
      {"return x.gt(0.5)", [](Tensor x, Tensor) { return x.gt(0.5); }},
      {"return x.le(1)", [](Tensor x, Tensor) { return x.le(1); }},
      {"return x.ge(y)", [](Tensor x, Tensor y) { return x.ge(y); }},
      {"return x.eq(0.5)", [](Tensor x, Tensor) { return x.eq(0.5); }},
      {"return x.ne(y)", [](Tensor x, Tensor y) { return x.ne(y); }},
      {"return x < y", [](Tensor x, Tensor y) { return x < y; }},
      {"return x <= 1", [](Tensor x, Tensor) { return x <= 1; }},
      {"return 0 < x", [](Tensor x, Tensor) { return 0 < x; }},
      {"return 1.5 >= x", [](Tensor x, Tensor) { return 1.5 >= x; }},
      {"return x > y", [](Tensor x, Tensor y) { return x > y; }},
      {"return x == x.abs()", [](Tensor x, Tensor) { return x == x.abs(); }},
      {"return x != 0.5", [](Tensor x, Tensor) { return x != 0.5; }},
      {"return 2 == x", [](Tensor x, Tensor) { return 2 == x; }},
      {"return (x * 4).to(torch.int32) > 2.5", [](Tensor x, Tensor) { return (x * 4).to(kInt32) > 2.5; }},
      {"return x + y - 2 * x * y / (1 + y)", [](Tensor x, Tensor y) { return x + y - 2 * x * y / (1 + y); }},
      {"return 2 - x + x / 4 - 1 / y", [](Tensor x, Tensor y) { return 2 - x + x / 4 - 1 / y; }},
      {"return -x * 3", [](Tensor x, Tensor) { return -x * 3; }},
      {"z = x * 1\n    z.add_(y, alpha=2)\n    z.mul_(y)\n    z.clamp_(-1, 6)\n    z -= 0.5\n    z /= y\n"
       "    z *= 3\n    z += y\n    z.sub_(x)\n    z.div_(2)\n    return z",
       chain_in_place},
      {"z = y * 2\n    z.copy_(x.sum(0))\n    w = y * 1\n    w.fill_(2)\n    return z * w", copy_and_fill},
      // creation
      {"return torch.eye(3, 4)", [](Tensor, Tensor) { return eye(3, 4); }},
      {"return torch.linspace(-1, 2, 7)", [](Tensor, Tensor) { return linspace(-1, 2, 7); }},
      {"return torch.tensor([[1, 2], [3, 4]])", [](Tensor, Tensor) { return tensor({{1, 2}, {3, 4}}); }},
      {"return torch.tensor([[1.5, 2.0], [3.0, 4.0]])", [](Tensor, Tensor) { return tensor({{1.5, 2.0}, {3.0, 4.0}}); }},
      {"return torch.tensor([[[1, 2]], [[3, 4]]])", [](Tensor, Tensor) { return tensor({{{1, 2}}, {{3, 4}}}); }},
      {"return torch.zeros_like(x) + torch.ones_like(y)", [](Tensor x, Tensor y) { return zeros_like(x) + ones_like(y); }},
      // joining, splitting, picking by index
      {"return torch.stack([x, y], 1)", [](Tensor x, Tensor y) { return stack({x, y}, 1); }},
      {"return x.chunk(3, 1)[1]", [](Tensor x, Tensor) { return x.chunk(3, 1)[1]; }},
      {"return x.split(3, 1)[1]", [](Tensor x, Tensor) { return x.split(3, 1)[1]; }},
      {"return torch.split(x, [1, 3], 1)[1]", [](Tensor x, Tensor) { return split(x, Shape{1, 3}, 1)[1]; }},
      {"return torch.narrow(x, 1, 1, 2)", [](Tensor x, Tensor) { return narrow(x, 1, 1, 2); }},
      {"return x.index_select(1, torch.tensor([3, 0, 3]))",
       [](Tensor x, Tensor) { return x.index_select(1, tensor<int64_t>({3, 0, 3})); }},
      {"return x.gather(1, torch.tensor([[0, 3], [1, 1], [2, 0]]))",
       [](Tensor x, Tensor) { return x.gather(1, tensor({{0, 3}, {1, 1}, {2, 0}})); }},
      {"z = y * 1\n    z.scatter_(1, torch.tensor([[0, 3], [1, 2], [2, 0]]), x[:, :2])\n    return z",
       [](Tensor x, Tensor y) {
         Tensor z = y * 1;
         z.scatter_(1, tensor({{0, 3}, {1, 2}, {2, 0}}), x.slice(1, 0, 2));
         return z;
       }},
      {"return x.masked_fill(x > 1, 0.5)", [](Tensor x, Tensor) { return x.masked_fill(x > 1, 0.5); }},
      {"return torch.where(x > 0, x, 0.0)", [](Tensor x, Tensor) { return where(x > 0, x, 0.0); }},
      {"return torch.where(x > 0, 1.0, y)", [](Tensor x, Tensor y) { return where(x > 0, 1.0, y); }},
      {"return x.topk(2, 1)[0]", [](Tensor x, Tensor) { return std::get<0>(x.topk(2, 1)); }},
      {"return x.topk(2, 0, largest=False)[1]", [](Tensor x, Tensor) { return std::get<1>(x.topk(2, 0, false)); }},
      {"return x.sort(0, descending=True)[0]", [](Tensor x, Tensor) { return std::get<0>(x.sort(0, true)); }},
      {"return x.sort(1)[1]", [](Tensor x, Tensor) { return std::get<1>(x.sort(1)); }},
      {"return x.argsort(1)", [](Tensor x, Tensor) { return x.argsort(1); }},
      {"return x.cumsum(1)", [](Tensor x, Tensor) { return x.cumsum(1); }},
      {"return (x * 4).to(torch.int32).cumsum(0)", [](Tensor x, Tensor) { return (x * 4).to(kInt32).cumsum(0); }},
      // statistics and tests
      {"return x.var()", [](Tensor x, Tensor) { return x.var(); }},
      {"return x.var(1)", [](Tensor x, Tensor) { return x.var(1); }},
      {"return x.var(1, unbiased=False, keepdim=True)", [](Tensor x, Tensor) { return x.var(1, false, true); }},
      {"return x.std(0)", [](Tensor x, Tensor) { return x.std(0); }},
      {"return x.std()", [](Tensor x, Tensor) { return x.std(); }},
      {"return x.norm()", [](Tensor x, Tensor) { return x.norm(); }},
      {"return torch.norm(x, 1, dim=1)", [](Tensor x, Tensor) { return norm(x, 1, {1}); }},
      {"return torch.norm(x, 3, dim=0, keepdim=True)", [](Tensor x, Tensor) { return norm(x, 3, {0}, true); }},
      {"return x.var(unbiased=False)", [](Tensor x, Tensor) { return x.var(false); }},
      {"return x.var((0, 1), keepdim=True)", [](Tensor x, Tensor) { return x.var({0, 1}, true, true); }},
      {"return x.std(1, unbiased=False, keepdim=True)", [](Tensor x, Tensor) { return x.std(1, false, true); }},
      {"return x.std((1, 0))", [](Tensor x, Tensor) { return x.std({1, 0}); }},
      {"return x.norm(1)", [](Tensor x, Tensor) { return x.norm(1); }},
      {"return x.norm(float('inf'))", [](Tensor x, Tensor) { return x.norm(INFINITY); }},
      {"return x.norm(1.5, 1, keepdim=True)", [](Tensor x, Tensor) { return x.norm(1.5, 1, true); }},
      {"return x.norm(0.5, 0)", [](Tensor x, Tensor) { return x.norm(0.5, 0); }},
      {"return torch.linalg.vector_norm(x, 4, dim=(0, 1))", [](Tensor x, Tensor) { return norm(x, 4, {0, 1}); }},
      // a tie for the largest magnitude: torch shares the gradient between the two (half to x, half detached)
      {"return torch.cat([x, x[:, :1].detach()], 1).norm(float('inf'), 1)",
       [](Tensor x, Tensor) { return cat({x, x.slice(1, 0, 1).detach()}, 1).norm(INFINITY, 1); }},
      // row 1 is all zeros, rows 0 and 2 have one zero each: torch's gradient of a zero norm (or std) is 0
      {"return torch.stack([(x * (x > 0.4)).norm(p, 1) for p in (1, 2, 3, 1.5, 0.5, float('inf'))])",
       [](Tensor x, Tensor) {
         std::vector<Tensor> rows;
         for (double p : {1.0, 2.0, 3.0, 1.5, 0.5, double(INFINITY)}) rows.push_back((x * (x > 0.4)).norm(p, 1));
         return stack(rows);
       }},
      {"return (x * (x > 0.4)).std(1)", [](Tensor x, Tensor) { return (x * (x > 0.4)).std(1); }},
      {"return (x / (x - 0.5)).isinf()", [](Tensor x, Tensor) { return (x / (x - 0.5)).isinf(); }},
      {"return x.log().isnan()", [](Tensor x, Tensor) { return x.log().isnan(); }},
      {"return (x / (x - 0.5)).isfinite()", [](Tensor x, Tensor) { return (x / (x - 0.5)).isfinite(); }},
      {"return torch.clamp(x, min=-y, max=y)", [](Tensor x, Tensor y) { return clamp(x, -y, y); }},
      // matrix products
      {"return x.mm(y.t())", [](Tensor x, Tensor y) { return x.mm(y.t()); }},
      {"return x.unsqueeze(0).bmm(y.t().unsqueeze(0))", [](Tensor x, Tensor y) { return x.unsqueeze(0).bmm(y.t().unsqueeze(0)); }},
      {"return x.mv(y[0])", [](Tensor x, Tensor y) { return x.mv(y.select(0, 0)); }},
      {"return (x * 4).long().matmul((y * 4).long().t())",
       [](Tensor x, Tensor y) { return (x * 4).to(kInt64).matmul((y * 4).to(kInt64).t()); }},
      // indexing
      {"return x[0:2, 1]", [](Tensor x, Tensor) { return x.index({Slice(0, 2), 1}); }},
      {"return x[None, ..., 1::2]", [](Tensor x, Tensor) { return x.index({None, Ellipsis, Slice(1, None, 2)}); }},
      {"return x[-1, :, None]", [](Tensor x, Tensor) { return x.index({-1, Slice(), None}); }},
      {"return x[x > 0]", [](Tensor x, Tensor) { return x.index({x > 0}); }},
      {"return x[:, torch.tensor([2, 0])]", [](Tensor x, Tensor) { return x.index({Slice(), tensor<int64_t>({2, 0})}); }},
      {"z = y * 1\n    z[0:2, 1] = x[0, 0:2]\n    z[y > 2] = 0.0\n    return z",
       [](Tensor x, Tensor y) {
         Tensor z = y * 1;
         z.index_put_({Slice(0, 2), 1}, x.index({0, Slice(0, 2)}));
         z.index_put_({y > 2}, 0.0);
         return z;
       }},
      // in-place writes and views, as PyTorch records them: a view taken before its base is written sees the
      // write (AsStridedBackward0); an op keeps its input's history from before a later write; a write into a
      // view gives its base a CopySlices history
      {"z = y * 1\n    v = z.view(12)\n    z.mul_(2)\n    return v * 3",
       [](Tensor, Tensor y) {
         Tensor z = y * 1;
         Tensor v = z.view({12});
         z.mul_(2);
         return v * 3;
       }},
      {"z = y * 2\n    l = z + x\n    z.mul_(3)\n    return l + z",
       [](Tensor x, Tensor y) {
         Tensor z = y * 2;
         Tensor l = z + x;
         z.mul_(3);
         return l + z;
       }},
      {"z = torch.zeros_like(y)\n    l = y + z\n    z.copy_(x * 5)\n    return l",
       [](Tensor x, Tensor y) {
         Tensor z = zeros_like(y);
         Tensor l = y + z;
         z.copy_(x * 5);
         return l;
       }},
      {"z = y * 1\n    z[1].mul_(x[1])\n    z[:, 0].add_(x[:, 2])\n    return z",
       [](Tensor x, Tensor y) {
         Tensor z = y * 1;
         z.select(0, 1).mul_(x.select(0, 1));
         z.select(1, 0).add_(x.select(1, 2));
         return z;
       }},
      {"z = y * 2\n    v = z[0:2]\n    w = v[:, 1:3]\n    w.mul_(x[0:2, 0:2])\n    return z + v.sum() + w.exp().sum()",
       [](Tensor x, Tensor y) {
         Tensor z = y * 2;
         Tensor v = z.slice(0, 0, 2);
         Tensor w = v.slice(1, 1, 3);
         w.mul_(x.slice(0, 0, 2).slice(1, 0, 2));
         return z + v.sum() + w.exp().sum();
       }},
      {"z = torch.zeros(3, 4, dtype=y.dtype)\n    z[1:3].copy_(x[0:2])\n    z[0].fill_(1)\n    return z * y",
       [](Tensor x, Tensor y) {
         Tensor z = zeros({3, 4}, {.dtype = y.dtype()});
         z.slice(0, 1, 3).copy_(x.slice(0, 0, 2));
         z.select(0, 0).fill_(1);
         return z * y;
       }},
      {"z = y * 1\n    z[2].zero_()\n    z[:, 1:3].masked_fill_(x[:, 1:3] > 1, 0.5)\n    z[0].scatter_(0, torch.tensor([3, 0]), x[0, 0:2])\n    return z",
       [](Tensor x, Tensor y) {
         Tensor z = y * 1;
         z.select(0, 2).zero_();
         z.slice(1, 1, 3).masked_fill_(x.slice(1, 1, 3) > 1, 0.5);
         z.select(0, 0).scatter_(0, tensor<int64_t>({3, 0}), x.select(0, 0).slice(0, 0, 2));
         return z;
       }},
      {"z = (y * 1).t()\n    z[1:3].clamp_(0.3, 1.6)\n    z[0:2, 1:3] /= x.t()[2:4, 0:2]\n    return z",
       [](Tensor x, Tensor y) {
         Tensor z = (y * 1).t();
         z.slice(0, 1, 3).clamp_(0.3, 1.6);
         Tensor part = z.slice(0, 0, 2).slice(1, 1, 3);
         part /= x.t().slice(0, 2, 4).slice(1, 0, 2);
         return z;
       }},
      {"z = y * 1\n    z[0:2][:, torch.tensor([1, 3])] = 0.0\n    z[1][z[1] > 1] = x[1, 0]\n    return z",
       [](Tensor x, Tensor y) {
         Tensor z = y * 1;
         z.slice(0, 0, 2).index_put_({Slice(), tensor<int64_t>({1, 3})}, 0.0);
         Tensor row = z.select(0, 1);
         row.index_put_({row > 1}, x.select(0, 1).select(0, 0));
         return z;
       }},
      // losses and layers' functions
      {"return F.mse_loss(x, y)", [](Tensor x, Tensor y) { return F::mse_loss(x, y); }},
      {"return F.l1_loss(x, y, reduction='sum')", [](Tensor x, Tensor y) { return F::l1_loss(x, y, F::Reduction::Sum); }},
      {"return F.smooth_l1_loss(x, y, reduction='none', beta=0.5)",
       [](Tensor x, Tensor y) { return F::smooth_l1_loss(x, y, F::Reduction::None, 0.5); }},
      {"return F.nll_loss(x.log_softmax(1), torch.tensor([0, 3, 1]))",
       [](Tensor x, Tensor) { return F::nll_loss(x.log_softmax(1), tensor<int64_t>({0, 3, 1})); }},
      {"return F.nll_loss(x.log_softmax(1), torch.tensor([0, -100, 1]), reduction='sum')",
       [](Tensor x, Tensor) { return F::nll_loss(x.log_softmax(1), tensor<int64_t>({0, -100, 1}), F::Reduction::Sum); }},
      {"return F.binary_cross_entropy(x.sigmoid(), y / 3)",
       [](Tensor x, Tensor y) { return F::binary_cross_entropy(x.sigmoid(), y / 3); }},
      {"return F.binary_cross_entropy_with_logits(x, y / 3)",
       [](Tensor x, Tensor y) { return F::binary_cross_entropy_with_logits(x, y / 3); }},
      {"return F.silu(x) + F.leaky_relu(x, 0.1)", [](Tensor x, Tensor) { return F::silu(x) + F::leaky_relu(x, 0.1); }},
      {"return F.gelu(x) + torch.erf(y)", [](Tensor x, Tensor y) { return F::gelu(x) + ht::erf(y); }},
      {"return F.gelu(x, approximate='tanh')", [](Tensor x, Tensor) { return F::gelu(x, "tanh"); }},
      {"return F.layer_norm(x, (4,), y[0], y[1])",
       [](Tensor x, Tensor y) { return F::layer_norm(x, {4}, y.select(0, 0), y.select(0, 1)); }},
      {"return F.group_norm(x.reshape(2, 6).unsqueeze(-1), 3, y.reshape(-1)[:6], y.reshape(-1)[6:])",
       [](Tensor x, Tensor y) {
         return F::group_norm(x.reshape({2, 6}).unsqueeze(-1), 3, y.reshape({-1}).slice(0, 0, 6), y.reshape({-1}).slice(0, 6, 12));
       }},
      {"return F.embedding(torch.tensor([[2, 0], [1, 2]]), x)",
       [](Tensor x, Tensor) { return F::embedding(tensor({{2, 0}, {1, 2}}), x); }},
      {"return F.avg_pool2d(x.reshape(1, 1, 3, 4), 2, 1)",
       [](Tensor x, Tensor) { return F::avg_pool2d(x.reshape({1, 1, 3, 4}), 2, 1); }},
      {"return F.avg_pool2d(x.reshape(1, 1, 3, 4), 2, 2, 1)",
       [](Tensor x, Tensor) { return F::avg_pool2d(x.reshape({1, 1, 3, 4}), 2, 2, 1); }},
  };
  return all;
}

// The rows both sides print: dtype, shape, values, then the gradients of x's base and of y (null if none).
const char* kPythonHarness = R"(import json, torch
import torch.nn.functional as F
rows = []
def run(fn, dtype):
    xb = torch.tensor(X, dtype=dtype).reshape(4, 3).requires_grad_()
    y = torch.tensor(Y, dtype=dtype).reshape(3, 4).requires_grad_()
    out = fn(xb.t(), y)
    row = [str(out.dtype)[6:], list(out.shape), out.double().reshape(-1).tolist()]
    if out.requires_grad:
        wt = torch.tensor([float(k % 5 + 1) for k in range(out.numel())], dtype=torch.float64).reshape(out.shape)
        (out.double() * wt).sum().backward()
    grad = lambda t: None if t.grad is None else t.grad.double().reshape(-1).tolist()
    rows.append(row + [grad(xb), grad(y)])
)";

nlohmann::json cpp_row(const Case& c, DType dtype) {
  Tensor xb = from_vector(kX, {4, 3}).to(dtype).requires_grad_();
  Tensor y = from_vector(kY, {3, 4}).to(dtype).requires_grad_();
  Tensor out = c.cpp(xb.t(), y);
  nlohmann::json row = {dtype_name(out.dtype()), out.sizes(), out.reshape({-1}).to_vector<double>()};
  if (out.requires_grad()) {
    std::vector<double> wt(size_t(out.numel()));
    for (size_t k = 0; k < wt.size(); ++k) wt[k] = double(k % 5 + 1);
    sum(out.to(kFloat64) * from_vector(wt, out.sizes())).backward();
  }
  auto grad = [](const Tensor& t) -> nlohmann::json {
    return t.grad().defined() ? nlohmann::json(t.grad().reshape({-1}).to_vector<double>()) : nlohmann::json();
  };
  row.push_back(grad(xb));
  row.push_back(grad(y));
  return row;
}

}  // namespace

TEST_CASE("tensor methods, operators and in-place ops match torch 2.x, values and gradients") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  auto list = [](const std::vector<double>& v) {
    std::string s = "[";
    for (double d : v) s += std::to_string(d) + ",";
    return s + "]";
  };
  std::string script = "X = " + list(kX) + "\nY = " + list(kY) + "\n" + kPythonHarness;
  for (size_t i = 0; i < cases().size(); ++i)
    script += "def case" + std::to_string(i) + "(x, y):\n    " + cases()[i].python + "\n";
  nlohmann::json got = nlohmann::json::array();
  for (const char* dt : {"float32", "float64"}) {
    for (size_t i = 0; i < cases().size(); ++i) {
      script += "run(case" + std::to_string(i) + ", torch." + dt + ")\n";
      INFO("running case " << i << " in " << dt << ": " << cases()[i].python);
      got.push_back(cpp_row(cases()[i], std::string(dt) == "float32" ? kFloat32 : kFloat64));
    }
  }
  script += "print(json.dumps(rows))\n";
  nlohmann::json want = nlohmann::json::parse(run_python(script, testing::temp_dir("tensor-api"), py));
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Case& c = cases()[i % cases().size()];
    INFO("case " << i % cases().size() << (i < cases().size() ? " (float32): " : " (float64): ") << c.python);
    REQUIRE(got[i][0] == want[i][0]);
    REQUIRE(got[i][1] == want[i][1]);
    double tol = i < cases().size() ? 1e-5 : 1e-10;
    INFO("values");
    require_close(got[i][2], want[i][2], tol);
    INFO("gradient of x");
    require_close(got[i][3], want[i][3], tol);
    INFO("gradient of y");
    require_close(got[i][4], want[i][4], tol);
  }
}

TEST_CASE("grad_fn names are PyTorch's") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  Tensor x = randn({2, 3}).requires_grad_(), y = randn({2, 3}).requires_grad_();
  std::vector<std::pair<const char*, Tensor>> made = {
      {"x + y", x + y}, {"x - 2", x - 2}, {"2 - x", 2 - x}, {"x * y", x * y}, {"x / y", x / y},
      {"-x", -x}, {"x.exp()", x.exp()}, {"x.abs()", x.abs()}, {"x.relu()", x.relu()}, {"x.pow(2)", x.pow(2)},
      {"x.sum()", x.sum()}, {"x.sum(1)", x.sum(1)}, {"x.mean()", x.mean()}, {"x.mean(0)", x.mean(0)},
      {"x.max()", x.max()}, {"x.max(1)[0]", std::get<0>(x.max(1))}, {"x.clamp(0, 1)", x.clamp(0, 1)},
      {"x.matmul(y.t())", x.matmul(y.t())}, {"x.softmax(1)", x.softmax(1)}, {"x.log_softmax(1)", x.log_softmax(1)},
      {"x.view(6)", x.view({6})}, {"x.reshape(3, 2)", x.reshape({3, 2})}, {"x.permute(1, 0)", x.permute({1, 0})},
      {"x.unsqueeze(0)", x.unsqueeze(0)}, {"x.to(torch.float64)", x.to(kFloat64)}, {"x.square()", x.square()},
      {"torch.cat([x, y])", cat({x, y})}, {"x.clone()", x.clone()},
      {"F.linear(x, y, y[:, 0])", F::linear(x, y, y.select(1, 0))}, {"F.linear(x, y)", F::linear(x, y)},
      {"x.sum((0, 1))", x.sum({0, 1})}, {"x.select(0, 1)", x.select(0, 1)}, {"x[1]", x.index({1})},
      {"x.transpose(0, 1)", x.transpose(0, 1)}, {"x.t()", x.t()}, {"x.unsqueeze(0).squeeze()", x.unsqueeze(0).squeeze()},
      {"x.squeeze(0)", x.unsqueeze(0).squeeze(0)}, {"torch.stack([x, y])", stack({x, y})},
      {"x.chunk(2, 1)[1]", x.chunk(2, 1)[1]}, {"x.split([1, 2], 1)[1]", split(x, Shape{1, 2}, 1)[1]},
      {"x.narrow(1, 1, 2)", x.narrow(1, 1, 2)}, {"x.masked_fill(x > 0, 0)", x.masked_fill(x > 0, 0)},
      {"torch.where(x > 0, x, y)", where(x > 0, x, y)}, {"x.expand(2, 2, 3)", x.expand({2, 2, 3})},
      {"x.flatten()", x.flatten()}, {"x.index_select(1, torch.tensor([2, 0]))", x.index_select(1, tensor<int64_t>({2, 0}))},
      {"x.gather(1, torch.tensor([[0], [2]]))", x.gather(1, tensor({{0}, {2}}))},
      {"torch.scatter(x, 1, torch.tensor([[0], [2]]), y)", scatter(x, 1, tensor({{0}, {2}}), y)},
      {"torch.scatter_add(x, 1, torch.tensor([[0], [2]]), y)", scatter_add(x, 1, tensor({{0}, {2}}), y)},
      {"x.sort(1)[0]", std::get<0>(x.sort(1))}, {"x.cumsum(1)", x.cumsum(1)},
      {"x.topk(2)[0]", std::get<0>(x.topk(2))}, {"x.var()", x.var()}, {"x.var(1, keepdim=True)", x.var(1, true, true)},
      {"x.std(0, unbiased=False)", x.std(0, false)}, {"x.std()", x.std()}, {"x.norm()", x.norm()}, {"x.norm(1)", x.norm(1)},
      {"x.norm(float('inf'), 1)", x.norm(INFINITY, 1)}, {"torch.norm(x, 3, dim=0, keepdim=True)", norm(x, 3, {0}, true)},
      {"torch.linalg.vector_norm(x, 0.5)", norm(x, 0.5)}};
  Tensor z = x * 1;
  z.add_(1);
  made.push_back({"(x * 1).add_(1)", z});
  Tensor f = x * 1;
  f.zero_();
  made.push_back({"(x * 1).zero_()", f});
  Tensor c = x * 1;
  c.copy_(y);
  made.push_back({"(x * 1).copy_(y)", c});
  Tensor p = x * 1;
  p.index_put_({1}, y.select(0, 0));
  made.push_back({"(x * 1).index_put_((torch.tensor(1),), y[0])", p});
  Tensor b = x * 1;
  Tensor row = b.select(0, 0);
  b.select(0, 1).mul_(2);
  made.push_back({"(lambda b: (b[1].mul_(2), b)[1])(x * 1)", b});
  made.push_back({"(lambda b: (b[0], b[1].mul_(2))[0])(x * 1)", row});
  std::string script = "import torch\nimport torch.nn.functional as F\nx = torch.randn(2, 3, requires_grad=True)\ny = torch.randn(2, 3, requires_grad=True)\n";
  std::string got;
  for (auto& [expr, t] : made) {
    script += "print((" + std::string(expr) + ").grad_fn.name())\n";
    got += t.grad_fn_name() + "\n";
  }
  REQUIRE(got == run_python(script, testing::temp_dir("grad-fn-names"), py));
  REQUIRE(x.is_leaf());
  REQUIRE((x * y).str().find("grad_fn=<MulBackward0>") != std::string::npos);
}

TEST_CASE("backward takes a gradient and retain_graph; item<T> reads one element") {
  Tensor x = tensor<float>({1, 2, 3}).requires_grad_();
  Tensor y = x * x;
  y.backward(tensor<float>({1, 0.5f, 2}), true);
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{2, 2, 12});
  y.backward(tensor<float>({1, 1, 1}));  // the graph was retained
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{4, 6, 18});
  REQUIRE_THROWS_WITH(y.backward(tensor<float>({1, 1, 1})), Catch::Contains("backward"));
  REQUIRE_THROWS_WITH((x * 2).backward(), Catch::Contains("grad can be implicitly created only for scalar outputs"));
  REQUIRE(x.sum().item<float>() == 6.0f);
  REQUIRE(x.argmax().item<int64_t>() == 2);
}

TEST_CASE("bool tensors print True/False as PyTorch's repr") {
  Tensor b = tensor<float>({1, -1, 2}) > 0;
  REQUIRE(b.dtype() == kBool);
  REQUIRE(b.str() == "tensor([ True, False,  True])");
  REQUIRE((tensor<float>({1}).sum() > 0).str() == "tensor(True)");
  REQUIRE(b.reshape({3, 1}).str() == "tensor([[ True],\n        [False],\n        [ True]])");
}

TEST_CASE("in-place ops: version counters, leaves, views and dtypes as PyTorch checks them") {
  Tensor w = tensor<float>({1, 2}).requires_grad_();
  SECTION("a saved operand written in place fails backward") {
    Tensor c = tensor<float>({3, 4});
    Tensor l = sum(w * c);
    c.mul_(5);
    REQUIRE(c.version() == 1);
    REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("modified by an inplace operation"));
  }
  SECTION("an op that saves nothing survives the write, and the written tensor carries on the graph") {
    Tensor h = w * 2;
    Tensor l = h + 1;  // add saves nothing
    h.add_(10);
    REQUIRE(h.grad_fn_name() == "AddBackward0");
    sum(l + h * 3).backward();
    REQUIRE(w.grad().to_vector<float>() == std::vector<float>{8, 8});
  }
  SECTION("a tensor updated with itself keeps an acyclic graph") {
    Tensor z = w * 3;
    z.add_(z);
    z.clamp_(0, 100);
    z.mul_(2);
    sum(z).backward();
    REQUIRE(z.to_vector<float>() == std::vector<float>{12, 24});
    REQUIRE(w.grad().to_vector<float>() == std::vector<float>{12, 12});
  }
  SECTION("leaves and views of leaves that require grad are refused in grad mode") {
    REQUIRE_THROWS_WITH(w.add_(1), Catch::Contains("a leaf Variable that requires grad"));
    REQUIRE_THROWS_WITH(w *= 2, Catch::Contains("a leaf Variable that requires grad"));
    REQUIRE_THROWS_WITH(w.slice(0, 0, 1).mul_(3), Catch::Contains("a view of a leaf Variable that requires grad"));
    REQUIRE_THROWS_WITH(w.view({2, 1}).zero_(), Catch::Contains("a view of a leaf Variable that requires grad"));
    // a tensor made on raw storage is not a view the history could reach through
    Tensor buf = zeros({4});
    Tensor raw(buf.storage(), kFloat32, {2}, {1}, 0);
    REQUIRE_THROWS_WITH(raw.copy_(w), Catch::Contains("part of a storage that is not a view"));
    {
      NoGradGuard g;
      w.mul_(2);  // what an optimizer does
    }
    REQUIRE(w.to_vector<float>() == std::vector<float>{2, 4});
  }
  SECTION("a view taken before its base is written in place shares the base's version counter") {
    Tensor x = w * 1;
    Tensor v = x.view({2, 1});
    Tensor l = sum(v * v);  // mul saves v
    x.mul_(2);
    REQUIRE(v.version() == x.version());
    REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("one of the variables needed for gradient computation has been "
                                                      "modified by an inplace operation"));
    Tensor base = full({2, 2}, 3.0);
    Tensor row = base.select(0, 1);
    Tensor l2 = sum(w * row);
    base.fill_(0);  // through the base, not the view
    REQUIRE_THROWS_WITH(l2.backward(), Catch::Contains("modified by an inplace operation"));
  }
  SECTION("var, std and norm save what torch saves: the input, and std's and norm's result") {
    Tensor h = w * 1;
    Tensor v = h.var();
    h.mul_(2);
    REQUIRE_THROWS_WITH(v.backward(), Catch::Contains("modified by an inplace operation: the input 0 of 'var'"));
    Tensor v2 = w.var();
    v2.add_(1);  // var's rule does not read its result
    v2.backward();
    REQUIRE(w.grad().defined());
    Tensor s = w.std();
    s.add_(1);
    REQUIRE_THROWS_WITH(s.backward(), Catch::Contains("modified by an inplace operation: the output of 'std'"));
    Tensor n = w.norm(1);
    n.mul_(2);
    REQUIRE_THROWS_WITH(n.backward(), Catch::Contains("the output of 'linalg_vector_norm'"));
  }
  SECTION("a new tensor is at version 0, as torch's factories give") {
    REQUIRE(ones({2}).version() == 0);
    REQUIRE(zeros_like(w).version() == 0);
    REQUIRE(full({3}, 2.0).version() == 0);
    REQUIRE((w * 2).version() == 0);
  }
  SECTION("every in-place op moves the version by one, on the tensor and on every view of its storage") {
    Tensor t = w * 1;
    Tensor v = t.view({2, 1});
    std::vector<std::pair<const char*, std::function<void()>>> writes = {
        {"add_", [&] { t.add_(v.view({2})); }}, {"sub_", [&] { t.sub_(1); }}, {"mul_", [&] { t.mul_(t); }},
        {"div_", [&] { t.div_(2); }}, {"clamp_", [&] { t.clamp_(-5, 5); }}, {"zero_", [&] { t.zero_(); }},
        {"fill_", [&] { t.fill_(3); }}, {"copy_", [&] { t.copy_(w); }},
        {"index_put_", [&] { t.index_put_({0}, 1.0); }},
        {"masked_fill_", [&] { t.masked_fill_(t > 2, 0.0); }},
        {"scatter_", [&] { t.scatter_(0, tensor<int64_t>({1}), 4.0); }}, {"+=", [&] { t += 1; }},
        {"-=", [&] { t -= w; }}, {"*=", [&] { t *= 2; }}, {"/=", [&] { t /= w; }},
        {"view add_", [&] { v.add_(1); }}, {"view copy_", [&] { v.copy_(w.view({2, 1})); }}};
    for (auto& [name, write] : writes) {
      INFO(name);
      uint64_t before = t.version();
      write();
      REQUIRE(t.version() == before + 1);
      REQUIRE(v.version() == t.version());
    }
  }
  SECTION("a result that cannot be cast back is refused, as torch's can_cast") {
    Tensor i = tensor<int64_t>({1, 2});
    REQUIRE_THROWS_WITH(i.div_(2), Catch::Contains("result type float32 can't be cast to the desired output type int64"));
    REQUIRE_THROWS_WITH(i.add_(0.5), Catch::Contains("can't be cast"));
    i.add_(3);
    i *= 2;
    REQUIRE(i.to_vector<int64_t>() == std::vector<int64_t>{8, 10});
    REQUIRE_THROWS_WITH(i.add_(ones({3, 2}, {.dtype = kInt64})),
                        Catch::Contains("output with shape [2] doesn't match the broadcast shape [3, 2]"));
    Tensor h = tensor<Half>({Half(1.0f), Half(2.0f)});
    h += tensor<float>({0.5f, 0.5f});  // float32 result cast back to float16
    REQUIRE(h.dtype() == kFloat16);
    REQUIRE(h.to_vector<float>() == std::vector<float>{1.5f, 2.5f});
  }
}

namespace {
// An in-place write whose memory overlaps, as a Python function body over nothing that returns the tensor
// written through, and the same in C++.
struct OverlapCase {
  const char* python;
  std::function<Tensor()> cpp;
};

Tensor arange_f(int64_t n) { return arange(n, {.dtype = kFloat32}); }

const std::vector<OverlapCase>& overlap_cases() {
  static const std::vector<OverlapCase> all = {
      // elements of the written tensor sharing memory (a dim of stride 0 and size > 1)
      {"b = torch.zeros(3); b.expand(2, 3).add_(1); return b", [] { Tensor b = zeros({3}); b.expand({2, 3}).add_(1); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).add_(torch.ones(2, 3)); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).add_(ones({2, 3})); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).sub_(1); return b", [] { Tensor b = zeros({3}); b.expand({2, 3}).sub_(1); return b; }},
      {"b = torch.ones(3); b.expand(2, 3).mul_(2); return b", [] { Tensor b = ones({3}); b.expand({2, 3}).mul_(2); return b; }},
      {"b = torch.ones(3); b.expand(2, 3).div_(torch.ones(2, 3)); return b",
       [] { Tensor b = ones({3}); b.expand({2, 3}).div_(ones({2, 3})); return b; }},
      {"b = torch.zeros(3); e = b.expand(2, 3); e += 1; return b", [] { Tensor b = zeros({3}); Tensor e = b.expand({2, 3}); e += 1; return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).clamp_(0.5, 1); return b", [] { Tensor b = zeros({3}); b.expand({2, 3}).clamp_(0.5, 1); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).copy_(torch.ones(2, 3)); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).copy_(ones({2, 3})); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).copy_(torch.ones(3)); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).copy_(ones({3})); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).scatter_(1, torch.tensor([[0], [1]]), 1.0); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).scatter_(1, tensor({{0}, {1}}), 1.0); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).uniform_(); return b",
       [] { Tensor b = zeros({3}); Tensor e = b.expand({2, 3}); uniform_(e, 0, 1); return b; }},
      {"b = torch.zeros(3, dtype=torch.long); b.expand(2, 3).div_(2); return b",
       [] { Tensor b = zeros({3}, {.dtype = kInt64}); b.expand({2, 3}).div_(2); return b; }},
      {"b = torch.zeros(3, requires_grad=True); b.expand(2, 3).add_(1); return b",
       [] { Tensor b = zeros({3}).requires_grad_(); b.expand({2, 3}).add_(1); return b; }},
      // what torch lets through: fill_ and zero_ (one value for every element), a stride-0 dim of size 1, no
      // elements, and strides that overlap without a stride of 0 (torch does not look further)
      {"b = torch.zeros(3); b.expand(2, 3).fill_(2); return b", [] { Tensor b = zeros({3}); b.expand({2, 3}).fill_(2); return b; }},
      {"b = torch.ones(3); b.expand(2, 3).zero_(); return b", [] { Tensor b = ones({3}); b.expand({2, 3}).zero_(); return b; }},
      {"b = torch.zeros(1, 3); b.expand(1, 3).add_(1); return b", [] { Tensor b = zeros({1, 3}); b.expand({1, 3}).add_(1); return b; }},
      {"b = torch.zeros(1, 0); b.expand(3, 0).add_(1); return b", [] { Tensor b = zeros({1, 0}); b.expand({3, 0}).add_(1); return b; }},
      {"b = torch.zeros(4); b.as_strided((2, 3), (1, 1)).fill_(1); return b",
       [] { Tensor b = zeros({4}); b.as_strided({2, 3}, {1, 1}, 0).fill_(1); return b; }},
      {"b = torch.zeros(4); b.as_strided((2, 3), (1, 1)).copy_(torch.ones(2, 3)); return b",
       [] { Tensor b = zeros({4}); b.as_strided({2, 3}, {1, 1}, 0).copy_(ones({2, 3})); return b; }},
      // masked_fill_ and index_put_ write an expanded tensor where they write (torch warns that it is
      // deprecated), the last write to a memory location staying; basic indices alone copy into their view,
      // which a number may fill when it is expanded but a tensor may not
      {"b = torch.zeros(3); b.expand(2, 3).masked_fill_(torch.tensor([[True, False, False], [False, False, True]]), 1.0); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).masked_fill_(tensor({{true, false, false}, {false, false, true}}), 1.0); return b; }},
      {"b = torch.zeros(3); e = b.expand(2, 3); e[torch.tensor([[True, False, False], [False, False, True]])] = 2.0; return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).index_put_({tensor({{true, false, false}, {false, false, true}})}, 2.0); return b; }},
      {"b = torch.zeros(3); e = b.expand(2, 3); e[torch.tensor([1, 0])] = torch.tensor(7.0); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).index_put_({tensor<int64_t>({1, 0})}, full({}, 7.0)); return b; }},
      {"b = torch.zeros(3); b.expand(2, 3).index_put_((torch.tensor([1, 0]),), torch.tensor([[1., 2, 3], [4, 5, 6]])); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).index_put_({tensor<int64_t>({1, 0})}, tensor<float>({{1, 2, 3}, {4, 5, 6}})); return b; }},
      {"b = torch.zeros(3); e = b.expand(2, 3); e[0] = torch.tensor([1., 2, 3]); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).index_put_({0}, tensor<float>({1, 2, 3})); return b; }},
      {"b = torch.zeros(3); e = b.expand(2, 3); e[:, 0] = 3; return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).index_put_({Slice(), 0}, 3); return b; }},
      {"b = torch.zeros(3); e = b.expand(2, 3); e[:, 0] = torch.tensor(5.0); return b",
       [] { Tensor b = zeros({3}); b.expand({2, 3}).index_put_({Slice(), 0}, full({}, 5.0)); return b; }},
      // an input sharing part of the written tensor's memory
      {"x = torch.arange(5.); x[1:].copy_(x[:-1]); return x", [] { Tensor x = arange_f(5); x.slice(0, 1, 5).copy_(x.slice(0, 0, 4)); return x; }},
      {"x = torch.arange(5.); x[1:].add_(x[:-1]); return x", [] { Tensor x = arange_f(5); x.slice(0, 1, 5).add_(x.slice(0, 0, 4)); return x; }},
      {"x = torch.arange(5.); x[1:].mul_(x[:-1]); return x", [] { Tensor x = arange_f(5); x.slice(0, 1, 5).mul_(x.slice(0, 0, 4)); return x; }},
      {"x = torch.arange(5.); v = x[:-1]; v -= x[1:]; return x", [] { Tensor x = arange_f(5); Tensor v = x.slice(0, 0, 4); v -= x.slice(0, 1, 5); return x; }},
      {"x = torch.arange(6.); x[:3].div_(x[2:5]); return x", [] { Tensor x = arange_f(6); x.slice(0, 0, 3).div_(x.slice(0, 2, 5)); return x; }},
      {"x = torch.arange(4.).reshape(2, 2); x.t().copy_(x); return x",
       [] { Tensor x = arange_f(4).reshape({2, 2}); x.t().copy_(x); return x; }},
      {"x = torch.arange(4.).reshape(2, 2); x.add_(x.t()); return x",
       [] { Tensor x = arange_f(4).reshape({2, 2}); x.add_(x.t()); return x; }},
      {"x = torch.arange(6.); x.view(2, 3).mul_(x[:3]); return x",
       [] { Tensor x = arange_f(6); x.view({2, 3}).mul_(x.slice(0, 0, 3)); return x; }},
      {"x = torch.arange(5.); x.scatter_(0, torch.tensor([2, 1, 0, 4, 3]), x); return x",
       [] { Tensor x = arange_f(5); x.scatter_(0, tensor<int64_t>({2, 1, 0, 4, 3}), x); return x; }},
      {"x = torch.arange(5.); x[1:].scatter_(0, torch.tensor([0, 1]), x[:2]); return x",
       [] { Tensor x = arange_f(5); x.slice(0, 1, 5).scatter_(0, tensor<int64_t>({0, 1}), x.slice(0, 0, 2)); return x; }},
      {"x = torch.arange(5.); x.index_put_((torch.tensor([3, 4]),), x[:2]); return x",
       [] { Tensor x = arange_f(5); x.index_put_({tensor<int64_t>({3, 4})}, x.slice(0, 0, 2)); return x; }},
      {"x = torch.arange(5.); x[1:3] = x[0:2]; return x",
       [] { Tensor x = arange_f(5); x.index_put_({Slice(1, 3)}, x.slice(0, 0, 2)); return x; }},
      // what torch lets through: the same memory, disjoint memory, and inputs that are not dense
      {"x = torch.arange(5.); x.add_(x); return x", [] { Tensor x = arange_f(5); x.add_(x); return x; }},
      {"x = torch.arange(6.); x.view(2, 3).add_(x.view(2, 3)); return x",
       [] { Tensor x = arange_f(6); x.view({2, 3}).add_(x.view({2, 3})); return x; }},
      {"x = torch.arange(6.); x[:3].add_(x[3:]); return x", [] { Tensor x = arange_f(6); x.slice(0, 0, 3).add_(x.slice(0, 3, 6)); return x; }},
      {"x = torch.arange(6.); x[::2].copy_(x[1::2]); return x",
       [] { Tensor x = arange_f(6); x.slice(0, 0, 6, 2).copy_(x.slice(0, 1, 6, 2)); return x; }},
      {"x = torch.arange(5.); x[1:].add_(x[0].expand(4)); return x",
       [] { Tensor x = arange_f(5); x.slice(0, 1, 5).add_(x.select(0, 0).expand({4})); return x; }},
      {"x = torch.arange(5.); x[1:3] = x[1:3]; return x", [] { Tensor x = arange_f(5); x.index_put_({Slice(1, 3)}, x.slice(0, 1, 3)); return x; }},
      {"x = torch.arange(6.).reshape(2, 3); x[0, torch.tensor([0, 2])] = x[1, 1:]; return x",
       [] {
         Tensor x = arange_f(6).reshape({2, 3});
         x.index_put_({0, tensor<int64_t>({0, 2})}, x.select(0, 1).slice(0, 1, 3));
         return x;
       }},
  };
  return all;
}
}  // namespace

TEST_CASE("in-place writes into memory that elements share are refused or let through as torch 2.x does") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  std::string script = "import json, torch, warnings\nwarnings.simplefilter('ignore')\nrows = []\n";
  for (size_t i = 0; i < overlap_cases().size(); ++i) {
    script += "def case" + std::to_string(i) + "():\n    " + overlap_cases()[i].python + "\n";
    script += "try:\n    rows.append(['ok', case" + std::to_string(i) + "().double().reshape(-1).tolist()])\n"
              "except RuntimeError as e:\n    rows.append(['error', str(e).split('\\n')[0]])\n";
  }
  script += "print(json.dumps(rows))\n";
  nlohmann::json want = nlohmann::json::parse(run_python(script, testing::temp_dir("overlap"), py));
  REQUIRE(want.size() == overlap_cases().size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("case " << i << ": " << overlap_cases()[i].python << "\ntorch: " << want[i].dump());
    if (want[i][0] == "ok") {
      Tensor got = overlap_cases()[i].cpp();
      REQUIRE(nlohmann::json(got.reshape({-1}).to_vector<double>()) == want[i][1]);
    } else {
      std::string message = want[i][1];
      if (!message.empty() && message.back() == '.') message.pop_back();  // ours goes on with a hint
      REQUIRE_THROWS_WITH(overlap_cases()[i].cpp(), Catch::Contains(message));
    }
  }
}

TEST_CASE("random factories draw in range, from_blob calls its deleter, allclose") {
  manual_seed(3);
  Tensor r = randint(-2, 5, {1000});
  REQUIRE(r.dtype() == kInt64);
  REQUIRE(min(r).item<int64_t>() == -2);
  REQUIRE(max(r).item<int64_t>() == 4);
  REQUIRE(randint(3, {2, 2}, {.dtype = kInt32}).dtype() == kInt32);
  REQUIRE_THROWS_WITH(randint(5, 5, {2}), Catch::Contains("expects 'from' to be less than 'to'"));
  std::vector<int64_t> p = randperm(50).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) REQUIRE(sorted[size_t(i)] == i);
  REQUIRE(p != sorted);  // a permutation of 50 that is the identity has probability 1/50!
  Tensor like = rand_like(ones({3, 2}, {.dtype = kFloat64}));
  REQUIRE(like.dtype() == kFloat64);
  REQUIRE(like.sizes() == Shape{3, 2});
  REQUIRE(randn_like(ones({4})).sizes() == Shape{4});

  int released = 0;
  {
    auto* data = new float[4]{1, 2, 3, 4};
    Tensor b = from_blob(data, {2, 2}, [&released](void* q) {
      delete[] static_cast<float*>(q);
      ++released;
    });
    Tensor view = b.t();
    b = Tensor();
    REQUIRE(released == 0);  // the view still holds the storage
    REQUIRE(view.to_vector<float>() == std::vector<float>{1, 3, 2, 4});
  }
  REQUIRE(released == 1);

  Tensor a = tensor<float>({1, 2, INFINITY, NAN});
  REQUIRE(allclose(a.slice(0, 0, 3), tensor<float>({1, 2.000001f, INFINITY})));
  REQUIRE_FALSE(allclose(a, a));
  REQUIRE(allclose(a, a, 1e-5, 1e-8, true));
  REQUIRE_FALSE(allclose(tensor<float>({1}), tensor<float>({1.1f})));
}

TEST_CASE("integer matmul is exact beyond 2^53 and wraps as torch's does") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  const int64_t big = (int64_t(1) << 40) + 1;
  Tensor a = tensor<int64_t>({{big, 3, -7}, {5, -(big + 2), 11}});
  Tensor b = tensor<int64_t>({{(int64_t(1) << 20) + 1, 2}, {5, -(int64_t(1) << 21)}, {-9, 13}});
  Tensor i32 = tensor({{70000, 3}, {-2, 46341}}).to(kInt32);
  Tensor u8 = tensor({{200, 100}, {3, 255}}).to(kUInt8);
  std::string got = a.matmul(b).str() + "\n" + a.t().matmul(a).str() + "\n" + i32.matmul(i32.t()).str() + "\n" +
                    u8.matmul(u8).str() + "\n" + a.unsqueeze(0).expand({2, 2, 3}).matmul(b).str() + "\n";
  std::string script = R"(import torch
big = (1 << 40) + 1
a = torch.tensor([[big, 3, -7], [5, -(big + 2), 11]])
b = torch.tensor([[(1 << 20) + 1, 2], [5, -(1 << 21)], [-9, 13]])
i32 = torch.tensor([[70000, 3], [-2, 46341]], dtype=torch.int32)
u8 = torch.tensor([[200, 100], [3, 255]], dtype=torch.uint8)
for t in (a.matmul(b), a.t().matmul(a), i32.matmul(i32.t()), u8.matmul(u8), a.unsqueeze(0).expand(2, 2, 3).matmul(b)):
    print(t)
)";
  REQUIRE(got == run_python(script, testing::temp_dir("int-matmul"), py));
}
