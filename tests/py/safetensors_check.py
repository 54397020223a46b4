"""The `safetensors` library (PyPI, in the torch 2.x venv) against halftorch, for tests/test_io_formats.cpp.

  safetensors_check.py make DIR      DIR/lib.safetensors by safetensors.torch.save_file (every dtype halftorch
                                     has, a 0-dim and an empty tensor, metadata), and DIR/lib.pt: the same tensors
                                     by torch.save, for halftorch to compare with
  safetensors_check.py check DIR FILE
                                     safetensors.torch.load_file(FILE) holds DIR/lib.pt's tensors plus 'f32_t' (the
                                     transpose of 'f32'), and safe_open(FILE).metadata() is lib.safetensors' metadata
                                     with 'writer': 'halftorch'. Exit 1 with the differences on stdout.
"""
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

METADATA = {"format": "pt", "source": "safetensors " + __import__("safetensors").__version__}


def tensors():
    base = torch.arange(-6, 6).reshape(3, 4)
    out = {str(dt).replace("torch.", ""): base.to(dt) for dt in
           (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
            torch.int8)}
    out["uint8"] = (base + 6).to(torch.uint8)
    out["bool"] = base % 2 == 0
    out["f32"] = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    out["special"] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0, 65504.0, 1e-8])
    out["scalar"] = torch.tensor(2.5)
    out["empty"] = torch.zeros(0, 3)
    return out


def main():
    cmd, folder = sys.argv[1], sys.argv[2]
    if cmd == "make":
        save_file(tensors(), os.path.join(folder, "lib.safetensors"), metadata=METADATA)
        torch.save(tensors(), os.path.join(folder, "lib.pt"))
        return
    want = torch.load(os.path.join(folder, "lib.pt"))
    want["f32_t"] = want["f32"].t()
    got = load_file(sys.argv[3])
    diffs = []
    if sorted(got) != sorted(want):
        diffs.append(f"keys {sorted(got)} vs {sorted(want)}")
    for k in sorted(set(got) & set(want)):
        g, w = got[k], want[k]
        if g.dtype != w.dtype or g.shape != w.shape or not torch.equal(g.nan_to_num() if g.is_floating_point() else g,
                                                                       w.nan_to_num() if w.is_floating_point() else w):
            diffs.append(f"{k}: {g.dtype}{tuple(g.shape)} vs {w.dtype}{tuple(w.shape)} or values differ")
        elif g.is_floating_point() and not torch.equal(g.isnan(), w.isnan()):
            diffs.append(f"{k}: NaNs differ")
    with safe_open(sys.argv[3], framework="pt") as f:
        if f.metadata() != dict(METADATA, writer="halftorch"):
            diffs.append(f"metadata {f.metadata()}")
    for d in diffs:
        print(d)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
