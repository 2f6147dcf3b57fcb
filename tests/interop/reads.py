"""The public reads of every tensor of a dataset, described as plain trees, by either library.

`dump_reads(ds, names)` runs the same list of reads (`t[i].numpy()`, `t[a:b].numpy()`,
`t.numpy(aslist=True)`, `t[i].numpy(aslist=True)`, `t[i].data()`, `t[a:b].data()`, ...) on
`ds[name]` and returns, for each, `describe(result)`: type name, dtype, shape and values all
the way down, or the kind of error raised. lakeformat runs it in our interpreter and deeplake
3.9.52 in its own (standard library and numpy only: the subprocess imports this module too),
and the test compares the trees.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import numpy as np

# errors of the same meaning in the two libraries
_SAME_ERRORS = {
    "DynamicTensorNumpyError": "dynamic-shape",  # deeplake 3.9.52
    "DynamicShapeError": "dynamic-shape",  # lakeformat
}


def describe(x: Any) -> Any:
    """A value as a JSON-able tree that keeps what a caller sees: the Python type, an array's
    dtype and shape, and the values (object arrays and containers element by element)."""
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return {"t": "ndarray", "dtype": "object", "shape": list(x.shape), "v": [describe(v) for v in x.reshape(-1).tolist()]}
        return {"t": "ndarray", "dtype": x.dtype.str if x.dtype.kind == "U" else x.dtype.name, "shape": list(x.shape), "v": x.reshape(-1).tolist()}
    if isinstance(x, np.generic):
        return {"t": type(x).__name__, "v": x.item()}
    if isinstance(x, dict):
        return {"t": "dict", "v": {str(k): describe(v) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return {"t": type(x).__name__, "v": [describe(v) for v in x]}
    if x is None or isinstance(x, (bool, int, float, str)):
        return {"t": type(x).__name__, "v": x}
    return {"t": type(x).__name__, "v": repr(x)}


def reads(n: int) -> List[Tuple[str, Callable[[Any], Any]]]:
    """(label, read) pairs for a tensor of `n` samples (n >= 3)."""
    last = n - 1
    return [
        ("t[0].numpy()", lambda t: t[0].numpy()),
        (f"t[{last}].numpy()", lambda t: t[last].numpy()),
        ("t[-2].numpy()", lambda t: t[-2].numpy()),
        ("t[0:2].numpy()", lambda t: t[0:2].numpy()),
        (f"t[1:{n}].numpy()", lambda t: t[1:n].numpy()),
        ("t[[2, 0]].numpy()", lambda t: t[[2, 0]].numpy()),
        ("t.numpy()", lambda t: t.numpy()),
        ("t.numpy(aslist=True)", lambda t: t.numpy(aslist=True)),
        ("t[0].numpy(aslist=True)", lambda t: t[0].numpy(aslist=True)),
        (f"t[{last}].numpy(aslist=True)", lambda t: t[last].numpy(aslist=True)),
        ("t[0:2].numpy(aslist=True)", lambda t: t[0:2].numpy(aslist=True)),
        ("t[0].data()", lambda t: t[0].data()),
        (f"t[{last}].data()", lambda t: t[last].data()),
        ("t[0:2].data()", lambda t: t[0:2].data()),
        (f"t[1:{n}].data()", lambda t: t[1:n].data()),
        ("t[[2, 0]].data()", lambda t: t[[2, 0]].data()),
        ("t[0].data(aslist=True)", lambda t: t[0].data(aslist=True)),
        ("t[0:2].data(aslist=True)", lambda t: t[0:2].data(aslist=True)),
        ("t.data()", lambda t: t.data()),
    ]


def dump_reads(ds: Any, names: List[str]) -> Dict[str, Dict[str, Any]]:
    """{tensor: {read label: describe(result) or {"error": kind}}}."""
    out: Dict[str, Dict[str, Any]] = {}
    for name in names:
        t = ds[name]
        got: Dict[str, Any] = {}
        for label, fn in reads(len(t)):
            try:
                got[label] = describe(fn(t))
            except Exception as e:  # noqa: BLE001 - the kind of error is compared
                kind = type(e).__name__
                got[label] = {"error": _SAME_ERRORS.get(kind, kind), "message": str(e)[:300]}
        out[name] = got
    return out
