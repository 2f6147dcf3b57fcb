"""`lakeformat verify`: check that a dataset is whole — every meta parses, every chunk the
encoders point at exists, parses and holds the samples they say, hidden tensors hold exactly
as many samples as their parents (a flush writes them together). Visible tensors may differ in
length (deeplake 3.x allows it: a dataset's length is its shortest tensor's)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from lakeformat.errors import LakeFormatError


@dataclass
class VerifyReport:
    url: str
    problems: List[str] = field(default_factory=list)
    checked: Dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> List[str]:
        out = [f"{self.url}: {'OK' if self.ok else 'BROKEN'} ({', '.join(f'{v} {k}' for k, v in self.checked.items())})"]
        out += [f"  problem: {p}" for p in self.problems]
        return out


def verify(url: str, creds: Optional[Dict[str, Any]] = None, deep: bool = True, version: Optional[str] = None) -> VerifyReport:
    """Check the dataset at `url` (every branch head, or only `version`)."""
    import lakeformat

    report = VerifyReport(url)
    try:
        ds = lakeformat.load(url, read_only=True, creds=creds, version=version)
    except (LakeFormatError, OSError, ValueError) as e:
        report.problems.append(f"does not open: {type(e).__name__}: {e}")
        return report
    heads = [version] if version else list(ds.branches)
    for head in heads:
        try:
            if head != ds.branch or version:
                ds.checkout(head)
        except (LakeFormatError, OSError) as e:
            report.problems.append(f"branch {head!r} does not open: {e}")
            continue
        _verify_version(ds, head, deep, report)
    return report


def _count(report: VerifyReport, what: str, n: int = 1) -> None:
    report.checked[what] = report.checked.get(what, 0) + n


def _verify_version(ds, where: str, deep: bool, report: VerifyReport) -> None:
    meta = ds.meta
    for name, key in meta.tensor_names.items():
        if key not in meta.tensors:
            report.problems.append(f"[{where}] tensor name {name!r} points at unknown key {key!r}")
    # parents first: opening one lines up its hidden tensors with it, as every reader does
    for key in sorted(meta.tensors, key=lambda k: k in meta.hidden_tensors):
        try:
            eng = ds._engine(key)
        except (LakeFormatError, OSError, ValueError) as e:
            report.problems.append(f"[{where}] tensor {key!r}: meta/encoders do not load: {e}")
            continue
        _count(report, "tensors")
        _verify_tensor(ds, eng, where, deep, report)
        for hkey, link in (eng.meta.links or {}).items():
            if hkey not in meta.tensors:
                continue
            try:
                h = ds._engine(hkey)
            except (LakeFormatError, OSError, ValueError) as e:
                report.problems.append(f"[{where}] hidden tensor {hkey!r} of {key!r}: meta/encoders do not load: {e}")
                continue
            want = eng.num_items if link.get("flatten_sequence") else eng.num_samples
            if h.num_samples != want:
                report.problems.append(f"[{where}] hidden tensor {hkey!r} has {h.num_samples} samples, {key!r} has {want}")


def _verify_tensor(ds, eng, where: str, deep: bool, report: VerifyReport) -> None:
    name = eng.meta.name
    n = eng.num_items
    rows = eng.chunk_ids.rows
    if eng.chunk_ids.num_samples < n:
        report.problems.append(f"[{where}] tensor {name!r}: meta says {n} samples, chunk index covers {eng.chunk_ids.num_samples}")
        return
    if eng.seq is not None and eng.seq.num_samples and eng.seq.num_items != n:
        report.problems.append(f"[{where}] tensor {name!r}: sequence index covers {eng.seq.num_items} items, meta says {n}")
    if not n:
        return
    names = eng.chunk_ids.names()
    first = eng.chunk_ids.first_indices()
    for r in range(len(rows)):
        if first[r] >= n:
            break
        cname = names[r]
        k = eng.chunk_key_of(cname)
        try:
            raw = eng.storage.get(k) if deep else eng.storage.get_range(k, 0, 4096)
        except KeyError:
            report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} ({k}) is missing")
            continue
        _count(report, "chunks")
        if not deep:
            continue
        try:
            from lakeformat.core.chunk import Chunk

            c = Chunk.parse(raw, eng.chunk_compression, k)
            data_len = len(c.data)
            if c.is_tile:
                continue
            last = int(rows[r, 1])
            want = last - int(first[r]) + 1
            if c.num_samples < min(want, n - int(first[r])):
                report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} holds {c.num_samples} samples, index says {want}")
                continue
            s, e = c.byte_ranges(np.arange(c.num_samples))
            if len(e) and int(e.max()) > data_len:
                report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} byte positions run past its {data_len} data bytes")
        except LakeFormatError as e:
            report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} does not parse: {e}")
