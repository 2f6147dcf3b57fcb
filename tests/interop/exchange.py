"""Data exchange between our interpreter (numpy 2) and deeplake 3.9.52's (numpy 1).

A value tree of dicts, lists, tuples, str, bytes, int, float, bool, None and numpy arrays is
written as JSON, with every array moved into one .npz next to it (never pickled): both numpy
majors read and write that. This module imports only the standard library and numpy, so the
deeplake subprocess imports it too.
"""
from __future__ import annotations

import base64
import json
import os
from typing import Any

import numpy as np


def _encode(obj: Any, arrays: dict) -> Any:
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return {"__objarray__": [_encode(x, arrays) for x in obj.reshape(-1).tolist()], "shape": list(obj.shape)}
        if obj.dtype.kind == "U":
            return {"__strarray__": obj.reshape(-1).tolist(), "shape": list(obj.shape)}
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"__nd__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: _encode(v, arrays) for k, v in obj.items()}}
        return {"__items__": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(x, arrays) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x, arrays) for x in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(obj)).decode()}
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    return {"__repr__": f"{type(obj).__name__}: {obj!r}"}


def _decode(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(x, arrays) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "__nd__" in obj:
        return arrays[obj["__nd__"]]
    if "__objarray__" in obj:
        flat = [_decode(x, arrays) for x in obj["__objarray__"]]
        out = np.empty(len(flat), dtype=object)
        for i, x in enumerate(flat):
            out[i] = x
        return out.reshape(obj["shape"])
    if "__strarray__" in obj:
        return np.asarray(obj["__strarray__"], dtype=str).reshape(obj["shape"])
    if "__dict__" in obj:
        return {k: _decode(v, arrays) for k, v in obj["__dict__"].items()}
    if "__items__" in obj:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["__items__"]}
    if "__tuple__" in obj:
        return tuple(_decode(x, arrays) for x in obj["__tuple__"])
    if "__bytes__" in obj:
        return base64.b64decode(obj["__bytes__"])
    if "__repr__" in obj:
        return obj
    return obj


def dump(obj: Any, path: str) -> None:
    """Write `obj` to `path` (JSON) and `path`.npz (its arrays)."""
    arrays: dict = {}
    tree = _encode(obj, arrays)
    np.savez(path + ".npz", **arrays)
    with open(path, "w") as f:
        json.dump(tree, f)


def load(path: str) -> Any:
    """Read back what `dump` wrote."""
    with open(path) as f:
        tree = json.load(f)
    npz = path + ".npz"
    if os.path.exists(npz):
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    else:
        arrays = {}
    return _decode(tree, arrays)
