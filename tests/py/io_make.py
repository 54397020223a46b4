"""Writes the PyTorch-side fixtures of tests/test_io.cpp into DIR, plus DIR/expect.json describing every tensor.

Usage: io_make.py DIR
"""
import collections
import io
import json
import os
import pickle
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(__file__))
from io_common import describe, sharing_groups, walk_tensors  # noqa: E402

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool]


def all_dtypes():
    sd = collections.OrderedDict()
    for dt in DTYPES:
        base = torch.arange(-6, 6).reshape(3, 4)
        sd[str(dt).replace("torch.", "")] = (base % 2 == 0) if dt == torch.bool else base.to(dt) if dt != torch.uint8 else (base + 6).to(dt)
    sd["special"] = torch.tensor([float("inf"), float("-inf"), 0.1, -0.0, 65504.0, 1e-8])
    return sd


def views():
    a = torch.arange(12.0)
    return {"base": a, "slice": a[2:8].view(2, 3), "t": a.view(3, 4).t(), "row": a.view(3, 4)[1],
            "strided": a[::3], "other": torch.ones(2)}


def scalars():
    return {"zero_dim": torch.tensor(3.5), "long0": torch.tensor(7), "empty": torch.zeros(0, 3),
            "empty_i": torch.zeros(0, dtype=torch.int64), "param": torch.nn.Parameter(torch.full((2, 2), 0.25))}


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def checkpoint():
    torch.manual_seed(0)
    m = Small()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        m(torch.randn(2, 3, 6, 6)).sum().backward()
        opt.step()
    return {"model": m.state_dict(), "optimizer": opt.state_dict(),
            "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                       "_growth_tracker": 0},
            "epoch": 3, "lr": 1e-3, "names": ["a", "b"], "pair": (1, 2.5), "nothing": None, "flag": True,
            "off": False, "neg": -5, "big": 2 ** 40, "negbig": -(2 ** 40), "bytes": b"\x00\xff\x41",
            "nested": [[1, 2], {"k": (3,)}], "text": "h\u00e9llo", "ints": {1: "one", 2: "two"}}


def rezip(src, dst, prefix, extra, compression=zipfile.ZIP_STORED):
    """Re-packs a torch.save zip under another prefix with extra records (Python's zipfile: unaligned); torch 2.x
    writes most of those records itself, and those keep torch's content."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        written = set()
        for info in zin.infolist():
            name = prefix + "/" + info.filename.split("/", 1)[1]
            zout.writestr(name, zin.read(info.filename))
            written.add(name)
        for name, data in extra.items():
            if prefix + "/" + name not in written:
                zout.writestr(prefix + "/" + name, data)


def big_endian(src, dst, itemsize):
    """What a big-endian machine's torch.save (2.1+) writes: byteorder 'big' and byte-swapped storages (torch
    1.13 writes no byteorder record, 2.x a 'little' one that this replaces)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        byteorder = zin.infolist()[0].filename.split("/")[0] + "/byteorder"
        for info in zin.infolist():
            data = zin.read(info.filename)
            if "/data/" in info.filename:
                data = b"".join(data[i:i + itemsize][::-1] for i in range(0, len(data), itemsize))
            if info.filename != byteorder:
                zout.writestr(info.filename, data)
        zout.writestr(byteorder, "big")


def evil_pickle(path, cmd):
    class Evil:
        def __reduce__(self):
            return (os.system, (cmd,))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        z.writestr("evil/version", "3\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)  # noqa: E731
    objects = {"dtypes.pt": all_dtypes(), "views.pt": views(), "scalars.pt": scalars(),
               "checkpoint.pt": checkpoint()}
    for name, obj in objects.items():
        torch.save(obj, p(name))
    torch.save(views(), p("legacy.pt"), _use_new_zipfile_serialization=False)
    objects["legacy.pt"] = views()
    torch.save(all_dtypes(), p("legacy_dtypes.pt"), _use_new_zipfile_serialization=False)
    objects["legacy_dtypes.pt"] = all_dtypes()
    torch.save(all_dtypes(), p("proto4.pt"), pickle_protocol=4)
    objects["proto4.pt"] = all_dtypes()
    rezip(p("views.pt"), p("archive_layout.pt"), "archive",
          {"byteorder": "little", ".format_version": "1", ".storage_alignment": "64",
           ".data/serialization_id": "0" * 40})
    objects["archive_layout.pt"] = views()
    rezip(p("dtypes.pt"), p("deflated.pt"), "some_prefix", {}, zipfile.ZIP_DEFLATED)
    objects["deflated.pt"] = all_dtypes()
    big_endian(p("views.pt"), p("big_endian.pt"), 4)
    objects["big_endian.pt"] = views()
    import torchvision
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18()
    torch.save(resnet.state_dict(), p("resnet18.pt"))
    objects["resnet18.pt"] = resnet.state_dict()
    evil_pickle(p("evil.pt"), "touch " + p("pwned"))
    torch.save(Small(), p("whole_module.pt"))

    expect = {}
    for name, obj in objects.items():
        expect[name] = {"tensors": [dict(path=q, **describe(t)) for q, t in walk_tensors(obj)],
                        "shared": sharing_groups(obj)}
    with open(p("expect.json"), "w") as f:
        json.dump(expect, f)


if __name__ == "__main__":
    main()
