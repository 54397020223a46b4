"""Reference outputs and gradients of single layers, from real PyTorch, for tests/test_nn_functional.cpp.
Writes OUT_DIR/layers.pth: a flat dict "<case>.<name>" -> tensor, where each case holds its inputs, its
configuration ("<case>.cfg", int64) and PyTorch's outputs and gradients. Usage: nn_layers.py OUT_DIR"""
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(0)
out = {}


def put(case, **tensors):
    for k, v in tensors.items():
        out[f"{case}.{k}"] = v.detach().clone().contiguous()


def grads(y, inputs):
    gy = torch.randn_like(y)
    gs = torch.autograd.grad(y, inputs, gy)
    return gy, gs


# conv2d: (N, C_in, H, W, C_out, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, bias)
conv_cases = [
    (2, 3, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
    (2, 4, 11, 10, 6, 3, 2, 2, 1, 0, 1, 1, 1, 2, 1),
    (1, 6, 12, 12, 6, 3, 3, 1, 2, 2, 1, 2, 2, 3, 0),
    (3, 2, 7, 7, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0),
    (2, 8, 1, 1, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),   # 1x1 map: only the centre tap is live
    (2, 8, 2, 2, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0),
    (2, 4, 5, 5, 8, 1, 1, 2, 2, 0, 0, 1, 1, 4, 1),
]
for i, c in enumerate(conv_cases):
    n, ci, h, w, co, kh, kw, sh, sw, ph, pw, dh, dw, g, has_bias = c
    x = torch.randn(n, ci, h, w, requires_grad=True)
    wt = torch.randn(co, ci // g, kh, kw, requires_grad=True)
    b = torch.randn(co, requires_grad=True) if has_bias else None
    y = F.conv2d(x, wt, b, (sh, sw), (ph, pw), (dh, dw), g)
    ins = [x, wt] + ([b] if has_bias else [])
    gy, gs = grads(y, ins)
    put(f"conv{i}", cfg=torch.tensor(c), x=x, w=wt, y=y, gy=gy, gx=gs[0], gw=gs[1])
    if has_bias:
        put(f"conv{i}", b=b, gb=gs[2])

# batch_norm: (N, C, H, W, training)
for i, (n, c, h, w, training) in enumerate([(4, 3, 5, 6, 1), (4, 3, 5, 6, 0), (8, 5, 1, 1, 1), (2, 4, 3, 3, 0)]):
    x = (torch.randn(n, c, h, w) * 2 + 0.5).requires_grad_()
    wt = torch.randn(c, requires_grad=True)
    b = torch.randn(c, requires_grad=True)
    rm = torch.randn(c)
    rv = torch.rand(c) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm, rv, wt, b, training=bool(training), momentum=0.1, eps=1e-5)
    gy, gs = grads(y, [x, wt, b])
    put(f"bn{i}", cfg=torch.tensor([training]), x=x, w=wt, b=b, rm=rm0, rv=rv0, y=y, gy=gy, gx=gs[0], gw=gs[1],
        gb=gs[2], rm_after=rm, rv_after=rv)

# max_pool2d: (N, C, H, W, k, stride, pad, dil, ceil_mode)
for i, c in enumerate([(2, 3, 9, 9, 3, 2, 1, 1, 0), (2, 2, 8, 7, 2, 2, 0, 1, 0), (1, 3, 10, 9, 3, 2, 1, 2, 0),
                       (2, 2, 7, 8, 3, 2, 1, 1, 1)]):
    n, ch, h, w, k, s, p, d, cm = c
    x = torch.randn(n, ch, h, w)
    x[0, 0, 1, :3] = 5.0  # ties: the first maximum must win
    x.requires_grad_()
    y, idx = F.max_pool2d(x, k, s, p, d, ceil_mode=bool(cm), return_indices=True)
    gy, gs = grads(y, [x])
    put(f"maxpool{i}", cfg=torch.tensor(c), x=x, y=y, idx=idx, gy=gy, gx=gs[0])

# adaptive_avg_pool2d: (N, C, H, W, out_h, out_w)
for i, c in enumerate([(2, 3, 7, 7, 1, 1), (2, 2, 7, 5, 3, 2), (1, 2, 4, 6, 5, 4)]):
    n, ch, h, w, oh, ow = c
    x = torch.randn(n, ch, h, w, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    gy, gs = grads(y, [x])
    put(f"avgpool{i}", cfg=torch.tensor(c), x=x, y=y, gy=gy, gx=gs[0])

# linear
x = torch.randn(5, 7, requires_grad=True)
wt = torch.randn(3, 7, requires_grad=True)
b = torch.randn(3, requires_grad=True)
y = F.linear(x, wt, b)
gy, gs = grads(y, [x, wt, b])
put("linear0", x=x, w=wt, b=b, y=y, gy=gy, gx=gs[0], gw=gs[1], gb=gs[2])

# cross_entropy: (ignore_index, label_smoothing * 1000, probability targets)
for i, (ign, ls, prob) in enumerate([(-100, 0, 0), (-100, 100, 0), (2, 0, 0), (3, 250, 0), (-100, 0, 1),
                                     (-100, 200, 1)]):
    logits = (torch.randn(6, 5) * 3).requires_grad_()
    if prob:
        target = torch.softmax(torch.randn(6, 5), 1)
    else:
        target = torch.tensor([0, 2, 4, 3, 2, 1])
    loss = F.cross_entropy(logits, target, ignore_index=ign, label_smoothing=ls / 1000)
    (gl,) = torch.autograd.grad(loss, [logits])
    put(f"ce{i}", cfg=torch.tensor([ign, ls, prob]), logits=logits, target=target, loss=loss, glogits=gl)

torch.save(out, sys.argv[1] + "/layers.pth")
