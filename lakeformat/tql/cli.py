"""`lakeformat query URL "SELECT ..." [--json] [--limit N] [--version V]`.

Runs a TQL query on the dataset at URL (read-only) and prints the selected rows: a table
(the row's position in the dataset, the tensors the query selects, or all of them for
`SELECT *`, then the computed columns), or with `--json` one JSON object per line. A query
that does not run prints its `TQLError` (with the caret under the position) and exits 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lakeformat.errors import LakeFormatError

TABLE_ROWS = 20  # rows a table shows without --limit (JSON lines: all of them)
TABLE_TEXT = 40  # characters of a text cell
SHORT_ARRAY = 4  # a table shows arrays of up to this many elements; longer ones as dtype[shape]
JSON_ARRAY = 1000  # --json writes arrays of up to this many elements as lists


def register(subparsers: Any) -> None:
    sp = subparsers.add_parser("query", help="run a TQL query and print the rows it selects (docs/tql.md, \"CLI\")")
    sp.add_argument("url")
    sp.add_argument("text", metavar="QUERY", help='the query: "SELECT * WHERE ... ORDER BY ... LIMIT ..."')
    sp.add_argument("--json", action="store_true", help="print one JSON object per row instead of a table")
    sp.add_argument("--limit", type=int, default=None, help=f"print at most N rows (a table: {TABLE_ROWS} by default; --json: all)")
    sp.add_argument("--version", help="a branch or commit id to query (default: the main branch's head)")
    sp.add_argument("--creds", help="JSON object of storage options (endpoint_url, key, secret...)")
    sp.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    import lakeformat
    from lakeformat import tql

    if args.limit is not None and args.limit < 0:
        raise LakeFormatError(f"--limit must be 0 or more, not {args.limit}")
    creds = json.loads(args.creds) if args.creds else None
    ds = lakeformat.load(args.url, read_only=True, creds=creds, version=args.version)
    res = tql.run(ds, args.text)
    total = len(res)
    limit = args.limit if args.limit is not None else (total if args.json else TABLE_ROWS)
    shown = min(total, limit)
    names, columns = _columns(res, shown)
    groups = getattr(res, "groups", None)
    # a GROUP BY result's row is its group: the rows it holds
    rows: List[Any] = [np.asarray(g) for g in groups[:shown]] if groups is not None else [int(r) for r in res.indices[:shown]]
    if args.json:
        for k, row in enumerate(rows):
            obj: Dict[str, Any] = {"row": _json_value(row)}
            obj.update({n: _json_value(col[k]) for n, col in zip(names, columns)})
            print(json.dumps(obj, ensure_ascii=False, allow_nan=False))
        return 0
    header = ["row"] + names
    cells = [[_cell(row)] + [_cell(col[k]) for col in columns] for k, row in enumerate(rows)]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    more = f"; showing {shown}, --limit N for more" if shown < total else ""
    print(f"({total} row{'s' if total != 1 else ''}{more})")
    sys.stdout.flush()
    return 0


def _columns(res: Any, shown: int) -> Tuple[List[str], List[List[Any]]]:
    """The printed columns' names and their first `shown` values, as Python values."""
    view = res.view[:shown]
    tensors = list(res.tensors) if res.tensors is not None else list(view.tensors)
    names: List[str] = []
    out: List[List[Any]] = []
    for name in tensors:
        if name in res.columns:  # a computed column of that name (a GROUP BY key) shows instead
            continue
        names.append(name)
        out.append(_tensor_values(view, name, shown))
    for name, col in res.columns.items():
        names.append(name)
        out.append([_plain(col[k]) for k in range(shown)])
    return names, out


def _tensor_values(view: Any, name: str, n: int) -> List[Any]:
    """One Python value per row (arrays as ndarrays of the tensor's dtype); tensors with no
    exact column (links, sequences, images) as a short description, read without decoding
    or fetching anything."""
    from lakeformat.core.arrow_export import ArrowExportError, to_arrow
    from lakeformat.core.dataset import Dataset

    t = view.tensors[name]
    if not isinstance(view, Dataset):  # GROUP BY / UNGROUP BY: each row is a list of samples
        return _derived_values(t, n)
    try:
        col = to_arrow(view, [name]).column(0).combine_chunks()
    except ArrowExportError:
        return [_describe(t, i) for i in range(n)]
    return _arrow_values(col, t.base_htype == "json", t.dtype)


def _derived_values(t: Any, n: int) -> List[Any]:
    """A grouped (or ungrouped) view's tensor: each row's samples as a list of values."""
    if getattr(t, "base_htype", "") in ("image", "video", "audio", "dicom", "nifti") or "image" in str(getattr(t, "htype", "")):
        return ["<samples>"] * n
    names = list(t.info.get("class_names") or []) if t.base_htype == "class_label" else []
    out: List[Any] = []
    for row in t.numpy(aslist=True):
        samples = row if isinstance(row, list) else [row]
        vals = [_plain(s) for s in samples]
        if names:
            vals = [names[int(v)] if isinstance(v, int) and 0 <= v < len(names) else v for v in vals]
        out.append(vals)
    return out


def _arrow_values(col: Any, is_json: bool, dtype: Any) -> List[Any]:
    import pyarrow as pa

    null = np.asarray(col.is_null().to_numpy(zero_copy_only=False), bool)
    if isinstance(col.type, pa.FixedShapeTensorType):
        arr = col.to_numpy_ndarray()
        return [None if z else a for a, z in zip(arr, null)]
    if pa.types.is_fixed_size_list(col.type) and not pa.types.is_dictionary(col.type.value_type):
        size = col.type.list_size  # .values keeps the slots of null rows: one row per `size` values
        flat = col.values.slice(col.offset * size, len(col) * size).to_numpy(zero_copy_only=False)
        arr = flat.reshape(len(col), size)
        return [None if z else a for a, z in zip(arr, null)]
    if pa.types.is_floating(col.type):  # NumPy scalars: a float32 prints as the float32 it is
        arr = col.to_numpy(zero_copy_only=False)
        return [None if z else a for a, z in zip(arr, null)]
    vals: List[Any] = col.to_pylist()
    if is_json:
        return [None if v is None else json.loads(v) for v in vals]
    if pa.types.is_list(col.type) and dtype is not None and not pa.types.is_dictionary(col.type.value_type):
        return [None if v is None else np.asarray(v, dtype) for v in vals]
    return vals


def _describe(t: Any, i: int) -> Any:
    """A sample of a tensor with no Arrow column: links and sequences by name, media by
    dtype and shape (never decoded), other arrays (ragged beyond their first axis) read."""
    from lakeformat.htypes import htype_of

    if t.is_link:
        return "<link>"
    if t.is_sequence:
        return "<sequence>"
    if not htype_of(t.base_htype).image_like and t.sample_compression in (None, "lz4", "zstd"):
        return np.asarray(t[i].numpy())
    shape = tuple(int(d) for d in t[i].shape)
    return f"{t.dtype}[{'x'.join(str(d) for d in shape)}]"


def _plain(v: Any) -> Any:
    """A computed column's value for one row as a Python value (an array of one element as
    its element)."""
    if isinstance(v, np.ndarray):
        if v.size == 1 and v.dtype != object:
            return v.reshape(-1)[0].item()
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def _summary(a: np.ndarray) -> str:
    return f"{a.dtype}[{'x'.join(str(d) for d in a.shape)}]"


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (list, tuple, np.ndarray)):
        try:
            a = np.asarray(v)
        except ValueError:  # ragged nested lists
            return f"list[{len(v)}]"
        if a.dtype == object:
            text = json.dumps(_json_value(v), ensure_ascii=False)
            return text if len(text) <= TABLE_TEXT else text[: TABLE_TEXT - 3] + "..."
        if a.size <= SHORT_ARRAY:
            return "[" + ", ".join(_cell(x) for x in a.reshape(-1).tolist()) + "]" if a.ndim <= 1 else str(a.tolist())
        return _summary(a)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dict):
        text = json.dumps(v, ensure_ascii=False, default=str)
        return text if len(text) <= TABLE_TEXT else text[: TABLE_TEXT - 3] + "..."
    text = str(v).replace("\n", "\\n")
    return text if len(text) <= TABLE_TEXT else text[: TABLE_TEXT - 3] + "..."


def _json_value(v: Any) -> Any:
    """A value JSON can hold: NaN and infinities as null, times as ISO text, arrays as
    lists (longer than JSON_ARRAY elements: their dtype and shape as text)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, np.floating) and v.dtype.itemsize < 8:
        return _json_value(float(str(v)))  # the shortest text that reads back as this float32
    if isinstance(v, np.generic):
        return _json_value(v.item())
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, np.ndarray):
        if v.dtype != object and v.size > JSON_ARRAY:
            return _summary(v)
        return [_json_value(x) for x in v.tolist()] if v.ndim else _json_value(v.item())
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    return str(v)


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m lakeformat.tql.cli URL QUERY ...` (the same as `lakeformat query`)."""
    p = argparse.ArgumentParser(prog="lakeformat")
    register(p.add_subparsers(dest="command", required=True))
    return int(run_command(p.parse_args(["query"] + list(argv if argv is not None else sys.argv[1:]))))
