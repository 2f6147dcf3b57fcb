"""Compare what a reader returned (`ops.dump_tensor`) with what the plan wrote (`cases.Expect`)."""
from __future__ import annotations

from typing import Any, List

import numpy as np

from .cases import Expect

JPEG_MEAN_ABS_TOLERANCE = 8.0

# Tensor.dtype in deeplake 3.9.52 says str for text, json and list tensors
_DTYPE_ALIASES = {"str": ("str",), "Any": ("str",), "List": ("str",)}


def _expected_array(e: Expect, v: Any) -> Any:
    if v is None:
        return None
    a = np.asarray(v, dtype=e.dtype if e.dtype not in (None, "str", "Any", "List") else None)
    if a.ndim == 0:
        a = a.reshape(1)
    if e.htype.endswith("image.gray") and a.ndim == 2:
        a = a[..., None]  # deeplake 3.9.52 keeps a channel axis on image.gray samples
    return a


def _expected_shape(e: Expect, v: Any) -> Any:
    """t[i].shape as deeplake 3.9.52 defines it; None where it is not compared."""
    if e.kind in ("text", "json", "list"):
        return None
    if not e.sequence:
        want = _expected_array(e, v)
        return None if want is None else want.shape
    if not v:
        return None  # deeplake 3.9.52 raises on the shape of an empty sequence
    items = [_expected_array(e, x) for x in v]
    if any(x is None for x in items):
        return None
    dims = []
    for axis in range(items[0].ndim):
        sizes = {x.shape[axis] for x in items}
        dims.append(sizes.pop() if len(sizes) == 1 else None)
    return (len(items),) + tuple(dims)


def _same_value(e: Expect, want: Any, got: Any) -> str:
    """'' when `got` is `want` as the tensor's htype defines equality, else why not."""
    if e.kind == "text":
        if want is None:
            return "" if got in (None, "") else f"{got!r} != None/''"
        return "" if got == want else f"{got!r} != {want!r}"
    if e.kind == "json":
        if want is None:
            return "" if got in (None, {}) else f"{got!r} != None/{{}}"
        return "" if _json_eq(got, want) else f"{got!r} != {want!r}"
    if e.kind == "list":
        want = [] if want is None else list(want)
        got = list(got) if isinstance(got, (list, tuple, np.ndarray)) else got
        return "" if got == want else f"{got!r} != {want!r}"
    want_a = _expected_array(e, want)
    if not isinstance(got, np.ndarray):
        return f"got {type(got).__name__} {got!r}, want an array"
    if want_a is None:
        return "" if got.size == 0 else f"want an empty sample, got shape {got.shape}"
    if e.kind == "label":
        return "" if np.array_equal(got.reshape(-1), want_a.reshape(-1)) else f"labels {got.reshape(-1).tolist()} != {want_a.reshape(-1).tolist()}"
    if got.shape != want_a.shape:
        return f"shape {got.shape} != {want_a.shape}"
    if e.dtype and got.dtype != np.dtype(e.dtype):
        return f"sample dtype {got.dtype} != {e.dtype}"
    if e.kind == "jpeg":
        err = float(np.abs(got.astype(np.int32) - want_a.astype(np.int32)).mean()) if got.size else 0.0
        return "" if err <= JPEG_MEAN_ABS_TOLERANCE else f"jpeg mean abs error {err:.1f} > {JPEG_MEAN_ABS_TOLERANCE}"
    if want_a.dtype.kind == "f":
        return "" if np.array_equal(got, want_a, equal_nan=True) else "values differ"
    return "" if np.array_equal(got, want_a) else "values differ"


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _compare_samples(e: Expect, wants: List[Any], gots: Any, label: str) -> List[str]:
    errors: List[str] = []
    if not isinstance(gots, list):
        return [f"{label}: got {type(gots).__name__}, want a list"]
    if len(gots) != len(wants):
        return [f"{label}: {len(gots)} samples, want {len(wants)}"]
    for i, (want, got) in enumerate(zip(wants, gots)):
        if e.sequence:
            got_items = got if isinstance(got, list) else (list(got) if isinstance(got, np.ndarray) and got.ndim else got)
            if not isinstance(got_items, list) or len(got_items) != len(want):
                errors.append(f"{label}[{i}]: sequence of {len(got_items) if isinstance(got_items, list) else got_items!r} items, want {len(want)}")
                continue
            for j, (w, g) in enumerate(zip(want, got_items)):
                why = _same_value(e, w, g)
                if why:
                    errors.append(f"{label}[{i}][{j}]: {why}")
        else:
            why = _same_value(e, want, got)
            if why:
                errors.append(f"{label}[{i}]: {why}")
    return errors[:8] + ([f"... and {len(errors) - 8} more"] if len(errors) > 8 else [])


def compare_tensor(name: str, e: Expect, got: dict, check_layout: bool = True) -> List[str]:
    """Every difference between tensor `name` as read (`got`) and as planned (`e`)."""
    if got is None:
        return [f"{name}: missing from the dataset"]
    if "error" in got:
        return [f"{name}: reading failed: {got['error']}"]
    errs: List[str] = []
    if got["htype"] != e.htype:
        errs.append(f"htype {got['htype']!r} != {e.htype!r}")
    want_dt = _DTYPE_ALIASES.get(e.dtype, (e.dtype,))
    if got["dtype"] not in want_dt and not (e.dtype == "str" and str(got["dtype"]).startswith("str")):
        errs.append(f"dtype {got['dtype']!r} != {e.dtype!r}")
    if got["meta_dtype"] != e.dtype:
        errs.append(f"tensor_meta dtype {got['meta_dtype']!r} != {e.dtype!r}")
    if got["length"] != len(e.values):
        errs.append(f"length {got['length']} != {len(e.values)}")
    if got["sample_compression"] != e.sample_compression:
        errs.append(f"sample_compression {got['sample_compression']!r} != {e.sample_compression!r}")
    if got["chunk_compression"] != e.chunk_compression:
        errs.append(f"chunk_compression {got['chunk_compression']!r} != {e.chunk_compression!r}")
    info = got.get("info") or {}
    if e.kind == "label" and list(info.get("class_names") or []) != list(e.class_names or []):
        errs.append(f"class_names {info.get('class_names')!r} != {e.class_names!r}")
    for k, v in e.info.items():
        if not _json_eq(info.get(k), v):
            errs.append(f"info[{k!r}] {info.get(k)!r} != {v!r}")
    if check_layout:
        if got["num_chunks"] < e.min_chunks:
            errs.append(f"{got['num_chunks']} chunks, want at least {e.min_chunks}")
        if e.tiled and not got["num_tiled"]:
            errs.append("no tiled samples")
    errs += _compare_samples(e, e.values, got["values"], "numpy(aslist=True)")
    if "single" in got:
        errs += _compare_samples(e, e.values, got["single"], "t[i]")
    for i, (shape, v) in enumerate(zip(got.get("shapes") or [], e.values)):
        want = _expected_shape(e, v)
        if want is not None and (isinstance(shape, str) or tuple(shape) != want):
            errs.append(f"t[{i}].shape {shape if isinstance(shape, str) else tuple(shape)} != {want}")
            break
    return [f"{name}: {x}" for x in errs]
