"""One list of dataset operations, applied by either library, and one reader of datasets.

lakeformat keeps deeplake 3.x's API names, so the same `apply_ops(lib, ds, ops)` writes a
dataset through `lakeformat` in our interpreter and through `deeplake` in the reference's, and
the same `dump_dataset(ds)` reads one back in either. Standard library and numpy only: the
deeplake subprocess imports this module as well.

An op is a list: ["create_tensor", name, kwargs], ["extend", {name: samples}],
["append", {name: sample}], ["t_extend", name, samples], ["t_append", name, sample],
["update", name, index, sample], ["pop", index], ["t_pop", name, index],
["rename", old, new], ["delete", name], ["ds_info", dict], ["t_info", name, dict],
["add_creds_key", key], ["populate_creds", key, creds]. A sample {"__link__": url,
"creds_key": key} becomes `lib.link(url, creds_key=key)`, {"__read__": path} `lib.read(path)`.
"""
from __future__ import annotations

import traceback
from typing import Any, Dict, List

import numpy as np

TEXT_READERS = {"text": "text", "json": "dict", "list": "list"}


def _sample(lib: Any, v: Any) -> Any:
    if isinstance(v, dict) and "__link__" in v:
        return lib.link(v["__link__"], creds_key=v.get("creds_key"))
    if isinstance(v, dict) and "__read__" in v:
        return lib.read(v["__read__"])
    if isinstance(v, list) and v and any(isinstance(x, dict) and ("__link__" in x or "__read__" in x) for x in v):
        return [_sample(lib, x) for x in v]
    return v


def _samples(lib: Any, vs: Any) -> Any:
    if isinstance(vs, np.ndarray):
        return vs
    return [_sample(lib, v) for v in vs]


def apply_ops(lib: Any, ds: Any, ops: List[list]) -> None:
    """Apply `ops` to `ds` through library `lib` (the lakeformat or deeplake module)."""
    for op in ops:
        kind = op[0]
        if kind == "create_tensor":
            ds.create_tensor(op[1], **op[2])
        elif kind == "extend":
            ds.extend({k: _samples(lib, v) for k, v in op[1].items()})
        elif kind == "append":
            ds.append({k: _sample(lib, v) for k, v in op[1].items()})
        elif kind == "t_extend":
            ds[op[1]].extend(_samples(lib, op[2]))
        elif kind == "t_append":
            ds[op[1]].append(_sample(lib, op[2]))
        elif kind == "update":
            ds[op[1]][op[2]] = _sample(lib, op[3])
        elif kind == "pop":
            ds.pop(op[1])
        elif kind == "t_pop":
            ds[op[1]].pop(op[2])
        elif kind == "rename":
            ds.rename_tensor(op[1], op[2])
        elif kind == "delete":
            ds.delete_tensor(op[1])
        elif kind == "ds_info":
            ds.info.update(op[1])
        elif kind == "t_info":
            ds[op[1]].info.update(op[2])
        elif kind == "add_creds_key":
            ds.add_creds_key(op[1])
        elif kind == "populate_creds":
            ds.populate_creds(op[1], op[2])
        else:
            raise ValueError(f"unknown op {kind!r}")


def _info_dict(info: Any) -> Dict[str, Any]:
    keys = list(info.keys())
    return {k: info[k] for k in keys}


def _plain(x: Any) -> Any:
    """Values as plain arrays/lists/str/dict, whatever container the library returned."""
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray) and x.dtype == object:
        return [_plain(v) for v in x.reshape(-1).tolist()] if x.ndim else _plain(x.item())
    return x


def _chunk_counts(t: Any):
    """(chunks, tiled samples) of a tensor, from deeplake's or lakeformat's chunk engine."""
    eng = getattr(t, "chunk_engine", None)
    if eng is not None:  # deeplake
        return int(eng.num_chunks), len(eng.tile_encoder.entries)
    eng = t.engine  # lakeformat
    return int(eng.chunk_ids.num_chunks), len(eng.tiles.entries)


def _shape(t: Any, i: int) -> Any:
    """t[i].shape as a tuple, or the error reading it raised, as a string."""
    try:
        return tuple(None if s is None else int(s) for s in t[i].shape)
    except Exception as e:  # noqa: BLE001 - deeplake 3.9.52 raises on empty sequences
        return f"{type(e).__name__}: {e}"


def dump_tensor(t: Any, singles: bool = True) -> Dict[str, Any]:
    """Everything the interop tests compare of one tensor, read through its public API
    (`singles`: also each sample on its own, `t[i]`, and its shape)."""
    out: Dict[str, Any] = {}
    try:
        meta = t.meta
        out["htype"] = str(t.htype)
        out["dtype"] = None if t.dtype is None else np.dtype(t.dtype).name
        out["meta_dtype"] = meta.dtype
        out["length"] = len(t)
        out["sample_compression"] = meta.sample_compression
        out["chunk_compression"] = meta.chunk_compression
        out["is_sequence"] = bool(meta.is_sequence)
        out["is_link"] = bool(meta.is_link)
        out["info"] = _info_dict(t.info)
        out["num_chunks"], out["num_tiled"] = _chunk_counts(t)
        base = out["htype"]
        for wrap in ("sequence[", "link["):
            if base.startswith(wrap):
                base = base[len(wrap):-1]
        reader = TEXT_READERS.get(base)
        if reader is not None:
            out["values"] = _plain(getattr(t, reader)())
            if singles:
                out["single"] = [_plain(getattr(t[i], reader)()) for i in range(len(t))]
        else:
            out["values"] = _plain(t.numpy(aslist=True))
            if singles:
                out["single"] = [_plain(t[i].numpy()) if not meta.is_sequence else _plain(t[i].numpy(aslist=True)) for i in range(len(t))]
                out["shapes"] = [_shape(t, i) for i in range(len(t))]
    except Exception as e:  # noqa: BLE001 - the test reports it
        out["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}"
    return out


def dump_dataset(ds: Any, singles: bool = True) -> Dict[str, Any]:
    """{"tensors": {name: dump_tensor}, "info": ..., "tensor_names": [...]} of `ds`."""
    names = sorted(ds.tensors)
    return {
        "tensor_names": names,
        "info": _info_dict(ds.info),
        "tensors": {n: dump_tensor(ds[n], singles) for n in names},
    }
