# PyTorch's side of everyday.cpp: the same computations, printed the same way.
import torch
import torch.nn.functional as F

def show(name, t):
    dt = str(t.dtype)[6:]
    print(" ".join([name, dt] + [str(s) for s in t.shape]) + " :" + "".join(" %.5g" % v for v in t.double().reshape(-1).tolist()))

x = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
w = torch.ones(3).requires_grad_()
y = (x * w).sum(1)
loss = (y - 1).pow(2).mean()
loss.backward()
show("loss", loss)
show("w.grad", w.grad)
show("argmax", x.argmax(1))
show("positives", (x > 0).sum())
show("max", x.max(1)[0])
show("gram", x.t().matmul(x))
show("var", x.var(1))
show("softmax", x.softmax(1))
show("column", x[:, 1])
show("masked", x[x > 0])
show("uint8", (torch.full((2,), 200, dtype=torch.uint8) - 128.0) / 128.0)
show("arange", torch.arange(0, 5) * 2)
z = x.clone()
z += 1
z *= 2
z.clamp_(0, 5)
show("inplace", z)
show("eye", torch.eye(2, 3))
show("linspace", torch.linspace(0, 1, 5))
show("stack", torch.stack([x, x * 2], 0).sum(0))
show("topk", x.topk(2, 1)[1])
show("cumsum", x.cumsum(1))
show("mse", F.mse_loss(x, torch.zeros_like(x)))
show("bce", F.binary_cross_entropy_with_logits(x, torch.ones_like(x)))
show("nll", F.nll_loss(x.log_softmax(1), torch.tensor([2, 1])))
v = torch.ones(3).requires_grad_()
rows = x * v
rows[1].mul_(3)
rows.sum().backward()
show("view_write", v.grad)
show("scatter_add", torch.zeros(2, 3).scatter_add(1, torch.tensor([[0, 0], [2, 1]]), x[:, 0:2]))
class Net(torch.nn.Module):
    def __init__(self, i, h, o):
        super().__init__()
        self.fc1, self.norm, self.fc2 = torch.nn.Linear(i, h), torch.nn.LayerNorm(h), torch.nn.Linear(h, o)
    def forward(self, x):
        return self.fc2(F.silu(self.norm(self.fc1(x))))
net = Net(3, 4, 2)
show("net", torch.tensor([net(x).size(0), net(x).size(1), len(list(net.parameters()))]))
