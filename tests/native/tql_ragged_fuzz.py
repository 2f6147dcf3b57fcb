"""Fuzz target of the TQL numeric kernels (native/tql_ragged.c), in the form of
tests/fuzz/targets.py: `target_tql_ragged(data)` feeds arbitrary offsets, geometries, ops,
item types, k and masks to `segment_reduce`, `rows_vector` and `top_k` and lets through only
ValueError / IndexError / TypeError; where `segment_reduce`'s input is well formed, a SUM
must equal NumPy's row by row."""
from __future__ import annotations

from typing import List

import numpy as np

from lakeformat import _native

_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64, np.bool_, np.float16]


def target_tql_ragged(data: bytes) -> None:
    head = data[:6].ljust(6, b"\0")
    kernel, op, t, m, k, flags = head[0] % 3, head[1] % 14 - 1, head[2] % len(_TYPES), head[3] % 12, head[4], head[5]
    body = data[6:]
    raw = np.frombuffer(body[: 8 * m].ljust(8 * m, b"\0"), np.int64).copy()
    rest = body[8 * m:]
    dtype = np.dtype(_TYPES[t])
    values = np.frombuffer(rest[: len(rest) - len(rest) % dtype.itemsize], np.uint8).view(dtype) if dtype != np.bool_ else (np.frombuffer(rest, np.uint8) % 2).view(np.bool_)
    well_formed = not flags & 1
    if well_formed:  # offsets inside the values: sizes from the raw numbers
        sizes = np.abs(raw % 5)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        offsets = np.minimum(offsets, len(values))
    else:
        offsets = raw
    try:
        if kernel == 0:
            out = np.zeros(max(len(offsets) - 1, 0) + (flags >> 4) % 2, np.float64 if flags & 2 else np.int64)
            geom = None
            out_off = None
            if flags & 4:
                geom = np.frombuffer(rest[:24 * max(len(offsets) - 1, 0)].ljust(24 * max(len(offsets) - 1, 0), b"\0"), np.int64) % 7
                out_off = np.concatenate([[0], np.cumsum((geom.reshape(-1, 3)[:, 0] * geom.reshape(-1, 3)[:, 2]) if len(geom) else [])]).astype(np.int64)
                out = np.zeros(int(out_off[-1]) if len(out_off) else 0, out.dtype)
            _native.segment_reduce(values.data, offsets.data, op, out.data, None if geom is None else geom.data, None if out_off is None else out_off.data)
            if well_formed and geom is None and op == 0 and dtype.kind in "iu" and dtype.itemsize == 8 and out.dtype == np.int64:
                for i in range(len(offsets) - 1):
                    assert out[i] == values[offsets[i]:offsets[i + 1]].astype(np.int64).sum()
        elif kernel == 1:
            d = max(int(k % 9), 1) if not flags & 8 else int(k % 9)
            vec = np.frombuffer(rest[: d * dtype.itemsize].ljust(d * dtype.itemsize, b"\0"), dtype) if dtype != np.bool_ else np.zeros(d, bool)
            rows = len(values) // max(d, 1)
            out = np.zeros(rows + (flags >> 4) % 2, dtype if dtype.kind == "f" else np.float64)
            _native.rows_vector(values[: rows * d].data, vec.data, op, out.data)
        else:
            kk = int(k) - (128 if flags & 8 else 0)
            out = np.zeros(max(kk, 0) + (flags >> 4) % 2, np.int64)
            valid = None if flags & 2 else (np.frombuffer(rest[: len(values) + (flags >> 5) % 2].ljust(len(values), b"\0"), np.uint8))
            _native.top_k(values.data, kk, bool(flags & 4), out.data, None if valid is None else valid.data)
    except (ValueError, IndexError, TypeError) as e:
        if type(e) not in (ValueError, IndexError, TypeError):
            raise


def seeds_tql_ragged() -> List[bytes]:
    rng = np.random.default_rng(3)
    out = []
    for kernel in range(3):
        for t in range(len(_TYPES)):
            offs = rng.integers(0, 5, 6).astype(np.int64).tobytes()
            vals = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
            out.append(bytes([kernel, 1, t, 6, 5, 0]) + offs + vals)
            out.append(bytes([kernel, 3, t, 6, 200, 0x1F]) + offs + vals)
    return out
