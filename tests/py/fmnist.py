"""Fashion-MNIST exactly as halftorch's examples read it: IDX gzip files, (x / 255 - 0.2860) / 0.3530 computed in
float64 and rounded to float32 (io/datasets.cpp does the same)."""
import gzip

import numpy as np
import torch

DIR = "/usr/share/datasets/fashion-mnist"


def load(train, limit):
    prefix = "train" if train else "t10k"
    with gzip.open(f"{DIR}/{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:limit]
    with gzip.open(f"{DIR}/{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:limit]
    x = torch.from_numpy(((images.astype(np.float64) / 255.0 - 0.2860) / 0.3530).astype(np.float32))
    return x, torch.from_numpy(labels.astype(np.int64))


def resnet18_1ch():
    import torchvision
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return m


def accuracy(model, x, y, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(y)
