"""Loads a halftorch-saved ResNet-18 state_dict into torchvision's resnet18 with strict=True and checks every
tensor against the state_dict PyTorch saved first. Usage: nn_resnet_check.py SAVED.pth ORIGINAL.pth IN_CHANNELS"""
import sys

import torch
import torchvision

saved_path, original_path, in_ch = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = torchvision.models.resnet18(num_classes=10)
if in_ch != 3:
    model.conv1 = torch.nn.Conv2d(in_ch, 64, kernel_size=7, stride=2, padding=3, bias=False)
saved = torch.load(saved_path)
model.load_state_dict(saved, strict=True)
original = torch.load(original_path)
assert list(saved.keys()) == list(original.keys()), "key order differs"
assert saved._metadata == original._metadata, f"_metadata differs: {saved._metadata} vs {original._metadata}"
for k, v in original.items():
    got = model.state_dict()[k]
    assert got.dtype == v.dtype and got.shape == v.shape, f"{k}: {got.dtype} {got.shape} vs {v.dtype} {v.shape}"
    assert torch.equal(got, v), f"{k}: values differ"
print(f"OK {len(saved)} tensors")
