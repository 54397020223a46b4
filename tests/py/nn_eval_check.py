"""PyTorch's side of the eval_resnet18 test: evaluates MODEL.pth (a 1-channel torchvision resnet18 state_dict) on
the first LIMIT Fashion-MNIST test images, read and normalised independently here, and compares with the logits
halftorch wrote. Usage: nn_eval_check.py MODEL.pth LOGITS.npy LIMIT DATA_DIR [TOL]
Prints "max relative error E" and "accuracy A" (4 decimals); exits 1 when E > TOL (default 1e-4)."""
import gzip
import struct
import sys

import numpy as np
import torch
import torchvision

model_path, logits_path, limit, data_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


images = idx(data_dir + "/t10k-images-idx3-ubyte.gz")[:limit]
labels = idx(data_dir + "/t10k-labels-idx1-ubyte.gz")[:limit]
x = (torch.from_numpy(images.astype(np.float32)).unsqueeze(1) / 255.0 - 0.2860) / 0.3530
sd = torch.load(model_path)
model = torchvision.models.resnet18(num_classes=sd["fc.weight"].shape[0])
model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
model.load_state_dict(sd)
model.eval()
with torch.no_grad():
    want = model(x)
got = torch.from_numpy(np.load(logits_path))
assert got.dtype == torch.float32 and got.shape == want.shape, f"logits {got.dtype} {tuple(got.shape)}"
err = float((got - want).abs().max() / want.abs().max())
acc = float((want.argmax(1) == torch.from_numpy(labels.astype(np.int64))).float().mean())
print(f"max relative error {err:.3g}")
print(f"accuracy {acc:.4f}")
sys.exit(0 if err <= tol else 1)
