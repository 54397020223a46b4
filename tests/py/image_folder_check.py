"""torchvision's view of an ImageFolder tree: classes and samples (JSON), each sample as PIL's convert("RGB")
(uint8 HWC .npy), and Resize(R) + CenterCrop(S) + ToTensor() stacked (float32 .npy) for each R,S given.
usage: image_folder_check.py ROOT OUT R1,S1 [R2,S2 ...]"""
import json
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

root, out = sys.argv[1], sys.argv[2]
ds = datasets.ImageFolder(root)
with open(f"{out}/folder.json", "w") as f:
    json.dump({"classes": ds.classes, "samples": [[p, c] for p, c in ds.samples]}, f)
for i, (p, _) in enumerate(ds.samples):
    np.save(f"{out}/rgb{i}.npy", np.asarray(Image.open(p).convert("RGB")))
for arg in sys.argv[3:]:
    r, s = (int(v) for v in arg.split(","))
    t = transforms.Compose([transforms.Resize(r), transforms.CenterCrop(s), transforms.ToTensor()])
    ds = datasets.ImageFolder(root, transform=t)
    np.save(f"{out}/eval_{r}_{s}.npy", torch.stack([ds[i][0] for i in range(len(ds))]).numpy())
