"""A random torchvision ResNet-18 with non-trivial batch-norm statistics, and PyTorch's results on it, for
tests/test_nn_resnet.cpp. Usage: nn_resnet.py OUT_DIR IN_CHANNELS
Writes OUT_DIR/model.pth (the state_dict, as torch.save writes it) and OUT_DIR/ref.pth: inputs, eval logits,
and one train-mode batch's loss, parameter gradients and updated running statistics."""
import sys

import torch
import torchvision

out_dir, in_ch = sys.argv[1], int(sys.argv[2])
torch.manual_seed(100 + in_ch)
size = 28 if in_ch == 1 else 32
model = torchvision.models.resnet18(num_classes=10)
if in_ch != 3:
    model.conv1 = torch.nn.Conv2d(in_ch, 64, kernel_size=7, stride=2, padding=3, bias=False)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.2)
    model.train()
    for _ in range(3):  # running statistics away from (0, 1), num_batches_tracked = 3
        model(torch.randn(32, in_ch, size, size) * 1.5 + 0.3)
model.eval()
torch.save(model.state_dict(), out_dir + "/model.pth")

ref = {}
with torch.no_grad():
    ref["x_eval"] = torch.randn(32, in_ch, size, size)
    ref["logits_eval"] = model(ref["x_eval"])
    ref["x_many"] = torch.randn(256, in_ch, size, size)
    ref["logits_many"] = model(ref["x_many"])

model.train()
x = torch.randn(16, in_ch, size, size)
y = torch.randint(0, 10, (16,))
loss = torch.nn.functional.cross_entropy(model(x), y)
loss.backward()
ref.update(x_train=x, y_train=y, loss_train=loss.detach())
for name, p in model.named_parameters():
    ref["grad." + name] = p.grad
for name, b in model.named_buffers():
    ref["after." + name] = b
torch.save(ref, out_dir + "/ref.pth")
