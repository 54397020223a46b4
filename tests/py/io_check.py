"""Checks files halftorch wrote, with real PyTorch. Exit 0 when they match, 1 with the differences on stdout.

  io_check.py same A B [--weights-only]     B (halftorch's) loads like A (torch's): values, types, layouts,
                                            storage sharing and _metadata
  io_check.py pairs A1 B1 A2 B2 ... [--mmap]
                                            `same` for every pair in one process, with torch.load's defaults
                                            (2.6+: weights_only=True), and again with mmap=True (torch 2.x)
  io_check.py case NAME FILE [--weights-only]
                                            FILE holds io_make.NAME() (e.g. all_dtypes, views)
  io_check.py layout FILE                   FILE has PyTorch 2.x's zip layout (prefix, records, alignment)
  (--allowlist-2x: load FILE with only the globals PyTorch 2.x's weights_only=True allows by default)
  io_check.py half ORIG FILE               FILE is ORIG with floating tensors cast by torch's .half()
  io_check.py safetensors PTH FILE          FILE (parsed by hand, no safetensors package) holds PTH's tensors
  io_check.py npy-make DIR                  writes NumPy reference arrays DIR/<name>.npy (C and Fortran order)
  io_check.py npy-same FILE REF             np.load(FILE) equals np.load(REF): dtype, shape, values, C order
  io_check.py resnet FILE                   torchvision resnet18().load_state_dict(FILE, strict=True) works
"""
import os
import pickle
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(__file__))
import io_make  # noqa: E402
from io_common import compare, sharing_groups  # noqa: E402


ALLOWED_2X = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
              ("torch._utils", "_rebuild_parameter"), ("torch", "device"), ("torch", "Size"), ("_codecs", "encode"),
              ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray")}


class Allowlist2xUnpickler(pickle.Unpickler):
    """Resolves only the globals PyTorch 2.x's weights_only=True allows by default (torch 1.13's own
    weights_only unpickler lacks BINFLOAT and _codecs.encode, so it cannot check files with floats or bytes)."""

    def find_class(self, module, name):
        ok = (module, name) in ALLOWED_2X or (module == "torch" and (
            name.endswith("Storage") or isinstance(getattr(torch, name, None), torch.dtype)))
        if not ok:
            raise RuntimeError(f"global {module}.{name} is not allowed by weights_only=True")
        return super().find_class(module, name)


def load(path, weights_only):
    if "--allowlist-2x" in sys.argv:
        # torch 1.13's torch.load replaces any pickle_module by its module global `pickle`: patch that.
        restricted = types.ModuleType("pickle")
        restricted.__dict__.update(pickle.__dict__)
        restricted.Unpickler = Allowlist2xUnpickler
        saved, torch.serialization.pickle = torch.serialization.pickle, restricted
        try:
            return torch.load(path)
        finally:
            torch.serialization.pickle = saved
    return torch.load(path, weights_only=True) if weights_only else torch.load(path)


def same(a, b):
    diffs = compare(a, b)
    if sharing_groups(a) != sharing_groups(b):
        diffs.append(f"storage sharing {sharing_groups(a)} vs {sharing_groups(b)}")
    return diffs


def pairs(paths, mmap):
    """Each halftorch file B loads like its torch-written A, by default and memory-mapped; diffs name B."""
    diffs = []
    for a_path, b_path in zip(paths[::2], paths[1::2]):
        a = torch.load(a_path, weights_only=False)  # torch wrote A; 2.x's weights_only=True refuses protocol 4's FRAME
        modes = [("default", {})] + ([("mmap=True", {"mmap": True})] if mmap else [])
        for mode, kwargs in modes:
            try:
                diffs += [f"{b_path} ({mode}): {d}" for d in same(a, torch.load(b_path, **kwargs))]
            except Exception as e:  # noqa: BLE001 - any failure to load is a finding, reported with the file
                diffs.append(f"{b_path} ({mode}): {type(e).__name__}: {e}")
    return diffs


def report(diffs):
    for d in diffs:
        print(d)
    sys.exit(1 if diffs else 0)


def check_layout(path):
    import struct
    import zipfile
    diffs = []
    with open(path, "rb") as f:
        raw = f.read()
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        storages = [n for n in names if n.startswith("archive/data/")]
        want = ["archive/data.pkl", "archive/.format_version", "archive/.storage_alignment", "archive/byteorder"] + \
            [f"archive/data/{k}" for k in range(len(storages))] + ["archive/version", "archive/.data/serialization_id"]
        if names != want:
            diffs.append(f"records {names}")
        for i in infos:
            name_len, extra_len = struct.unpack("<HH", raw[i.header_offset + 26:i.header_offset + 30])
            start = i.header_offset + 30 + name_len + extra_len
            if start % 64:
                diffs.append(f"{i.filename} data at {start}, not 64-byte aligned")
            if i.compress_type != zipfile.ZIP_STORED:
                diffs.append(f"{i.filename} is compressed")
            if i.file_size and z.read(i.filename) is None:
                diffs.append(f"{i.filename} unreadable")
        if z.read("archive/version") != b"3\n" or z.read("archive/byteorder") != b"little":
            diffs.append("version/byteorder records")
        if len(z.read("archive/.data/serialization_id")) != 40:
            diffs.append("serialization_id is not 40 characters")
        bad = z.testzip()
        if bad:
            diffs.append(f"CRC mismatch in {bad}")
    return diffs


def read_safetensors(path):
    import json
    import struct
    dtypes = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
    header = json.loads(raw[8:8 + n])
    assert header.pop("__metadata__") == {"format": "pt"}
    buf = raw[8 + n:]
    out, end = {}, 0
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = dtypes[info["dtype"]]
        assert b % torch.tensor([], dtype=dt).element_size() == 0, f"{name} misaligned"
        out[name] = torch.frombuffer(bytearray(buf[b:e]), dtype=dt).reshape(info["shape"]) if e > b else \
            torch.empty(info["shape"], dtype=dt)
        end = max(end, e)
    assert end == len(buf), "trailing bytes"
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    wo = "--weights-only" in sys.argv
    if args[0] == "same":
        report(same(torch.load(args[1]), load(args[2], wo)))
    elif args[0] == "pairs":
        report(pairs(args[1:], "--mmap" in sys.argv))
    elif args[0] == "case":
        report(same(getattr(io_make, args[1])(), load(args[2], wo)))
    elif args[0] == "resnet":
        import torchvision
        m = torchvision.models.resnet18()
        sd = torch.load(args[1], weights_only=True)
        result = m.load_state_dict(sd, strict=True)
        diffs = [f"load_state_dict: {result}"] if result.missing_keys or result.unexpected_keys else []
        for k, v in m.state_dict().items():
            if not torch.equal(v, sd[k].to(v.dtype)):
                diffs.append(f"{k}: differs after load_state_dict")
        report(diffs)
    elif args[0] == "half":
        want = {k: v.half() if v.is_floating_point() else v for k, v in torch.load(args[1]).items()}
        report(compare(want, dict(load(args[2], True))))
    elif args[0] == "safetensors":
        report(compare(dict(torch.load(args[1])), read_safetensors(args[2])))
    elif args[0] == "npy-make":
        import numpy as np
        a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        arrays = {"f32": a, "fortran": np.asfortranarray(a), "i64": np.arange(5, dtype=np.int64) - 2,
                  "bool": np.array([True, False, True]), "f16": np.array([0.5, -2, 65504], dtype=np.float16),
                  "scalar": np.array(3.5), "empty": np.zeros((0, 3), dtype=np.float32),
                  "u8": np.arange(7, dtype=np.uint8), "i8": np.array([-128, 127], dtype=np.int8)}
        for name, arr in arrays.items():
            np.save(os.path.join(args[1], name + ".npy"), arr)
        report([])
    elif args[0] == "npy-same":
        import numpy as np
        got, want = np.load(args[1]), np.load(args[2])
        diffs = []
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
            diffs.append(f"{got.dtype}{got.shape} {got.ravel()[:8]} vs {want.dtype}{want.shape} {want.ravel()[:8]}")
        if not got.flags.c_contiguous:
            diffs.append("not C order")
        report(diffs)
    elif args[0] == "layout":
        report(check_layout(args[1]))
    else:
        print("unknown command", args[0])
        sys.exit(2)


if __name__ == "__main__":
    main()
