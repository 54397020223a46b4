"""Shared helpers for the io tests: walking checkpoints like halftorch does, and comparing two loaded objects."""
import collections
import math

import torch


def walk_tensors(obj, path=""):
    """Yields (path, tensor) in the order halftorch's for_each_tensor visits them."""
    join = (lambda k: k if not path else path + "/" + k)
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk_tensors(v, join(str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from walk_tensors(v, join(str(i)))


def describe(t):
    """What the C++ test checks for one tensor: layout, and values (all of them when small)."""
    d = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "stride": list(t.stride()),
         "offset": t.storage_offset()}
    flat = t.detach().reshape(-1).double()
    enc = (lambda x: x if math.isfinite(x) else str(x))  # JSON has no inf/nan: "inf", "-inf", "nan"
    d["sum"] = enc(float(flat.sum())) if t.numel() else 0.0
    if t.numel() <= 64:
        d["values"] = [enc(float(x)) for x in flat.tolist()]
    return d


def sharing_groups(obj):
    """Paths grouped by the storage they view (groups of 2 or more)."""
    groups = collections.OrderedDict()
    for p, t in walk_tensors(obj):
        key = (t.storage().data_ptr(), t.storage().size()) if t.numel() else ("empty", p)
        groups.setdefault(key, []).append(p)
    return [g for g in groups.values() if len(g) > 1]


def compare(a, b, path="<root>"):
    """Returns a list of differences between two unpickled checkpoints (types, values, layouts)."""
    diffs = []
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return [f"{path}: tensor vs {type(b).__name__}"]
        if a.dtype != b.dtype or a.shape != b.shape:
            return [f"{path}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"]
        if a.numel() and (a.stride() != b.stride() or a.storage_offset() != b.storage_offset()):
            diffs.append(f"{path}: layout {a.stride()}+{a.storage_offset()} vs {b.stride()}+{b.storage_offset()}")
        if not torch.equal(a, b) and not (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                          and torch.equal(a.nan_to_num(), b.nan_to_num())):
            diffs.append(f"{path}: values differ")
        return diffs
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, dict):
        if list(a.keys()) != list(b.keys()):
            return [f"{path}: keys {list(a.keys())[:8]} vs {list(b.keys())[:8]}"]
        for k in a:
            diffs += compare(a[k], b[k], f"{path}/{k}")
        if getattr(a, "_metadata", None) != getattr(b, "_metadata", None):
            diffs.append(f"{path}: _metadata {getattr(a, '_metadata', None)} vs {getattr(b, '_metadata', None)}")
        return diffs
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        for i, (x, y) in enumerate(zip(a, b)):
            diffs += compare(x, y, f"{path}/{i}")
        return diffs
    if a != b:
        diffs.append(f"{path}: {a!r} vs {b!r}")
    return diffs
