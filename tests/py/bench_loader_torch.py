"""torchvision's DataLoader + PIL over the same ImageFolder as examples/bench_loader (same transforms, batch
size and workers), best images/s over the epochs.
usage: bench_loader_torch.py --data-dir DIR [--image-size 224] [--workers N] [--batch-size 64] [--augment] [--epochs 2]"""
import argparse
import time

import torch
from torchvision import datasets, transforms

p = argparse.ArgumentParser()
p.add_argument("--data-dir", required=True)
p.add_argument("--image-size", type=int, default=224)
p.add_argument("--workers", type=int, default=0)
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--augment", action="store_true")
p.add_argument("--epochs", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(1)
norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
if a.augment:
    t = transforms.Compose([transforms.RandomResizedCrop(a.image_size), transforms.RandomHorizontalFlip(),
                            transforms.ToTensor(), norm])
else:
    t = transforms.Compose([transforms.Resize(round(a.image_size * 256 / 224)), transforms.CenterCrop(a.image_size),
                            transforms.ToTensor(), norm])
ds = datasets.ImageFolder(a.data_dir, transform=t)
loader = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers)
best = 0
for _ in range(a.epochs):
    start = time.perf_counter()
    n = sum(x.shape[0] for x, _ in loader)
    best = max(best, n / (time.perf_counter() - start))
print(f"torchvision loader: {'augment' if a.augment else 'eval'} {a.image_size}x{a.image_size}, {len(ds)} images, "
      f"{a.workers} workers: {best:.1f} images/s")
