"""`lakeformat verify`: check that a dataset is whole — every meta parses, every chunk the
encoders point at exists, parses and holds the samples they say, hidden tensors hold exactly
as many samples as their parents (a flush writes them together; checked at rest too, where a
reader would clamp a hidden tensor that runs ahead). Visible tensors may differ in length
(deeplake 3.x allows it: a dataset's length is its shortest tensor's).

Where our writers left checksums (`lakeformat.core.checksums`), every metadata object of a
tensor is checked against them, and with `deep` every byte of every chunk: a bad chunk is
named with its tensor and sample range. A side file another writer (deeplake) left stale is
reported as unverifiable, never as damage."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import numpy as np

from lakeformat.core import checksums as CS
from lakeformat.core import chunk_stats, keys, nulls
from lakeformat.core.meta import loads
from lakeformat.errors import CorruptDataError, LakeFormatError


@dataclass
class VerifyReport:
    url: str
    problems: List[str] = field(default_factory=list)
    checked: Dict[str, int] = field(default_factory=dict)
    # chunk keys read already: a chunk of an older commit is shared by every later version
    seen_chunks: Set[str] = field(default_factory=set, repr=False)

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
    except Exception as e:  # noqa: BLE001 - a dataset that does not open is the report
        report.problems.append(f"does not open: {type(e).__name__}: {e}")
        return report
    # checksums are checked below, one object at a time; opening a tensor must not stop at them
    ds.version_state.checksums_at_open = False
    _verify_commit_infos(ds, report)
    heads = [version] if version else list(ds.branches)
    done = set()
    for head in heads:
        try:
            if head != ds.branch or version:
                ds.checkout(head)
        except Exception as e:  # noqa: BLE001 - a branch that does not open is reported
            report.problems.append(f"branch {head!r} does not open: {e}")
            continue
        done.add(ds.version_state.commit_id)
        _verify_version(ds, head, deep, report)
    if not version:
        _verify_older_versions(ds, done, deep, report)
    return report


def _verify_older_versions(ds: Any, done: Set[str], deep: bool, report: VerifyReport) -> None:
    """Every committed version that no branch head is: its metadata, and the chunks it wrote
    (those of its ancestors were read already); the counts stay those of the heads."""
    n = 0
    for cid in list(ds.version_state.tree.commits):
        if cid in done:
            continue
        inner = VerifyReport(report.url, seen_chunks=report.seen_chunks)
        try:
            ds.checkout(cid)
        except Exception as e:  # noqa: BLE001 - a version that does not open is reported
            report.problems.append(f"version {cid} does not open: {e}")
            continue
        _verify_version(ds, f"commit {cid}", deep, inner)
        report.problems += inner.problems
        n += 1
    if n:
        _count(report, "older versions", n)


# what deeplake 3.9.52 (and our writers before checksums) put in a commit_info.json
_COMMIT_INFO_KEYS = ("branch", "children", "parent", "commit_message", "commit_time", "commit_user_name",
                     "is_checkpoint", "total_samples_processed", "merge_parent")


def _verify_commit_infos(ds, report: VerifyReport) -> None:
    """Each version's commit_info.json (a backup of its tree node) against the checksum our
    writers keep inside it. The tree itself (version_control_info.json) is checked when the
    dataset opens. A missing commit info is no damage: the tree is the record."""
    ids = list(ds.version_state.tree.commits)
    got = ds.storage.get_many([keys.commit_info_key(c) for c in ids], missing_ok=True)
    for k, raw in got.items():
        if raw is None:
            continue
        try:
            d = json.loads(bytes(raw).decode("utf-8"))
            if not isinstance(d, dict):
                raise CorruptDataError("is not a JSON object", k)
            checked = CS.check_embedded(raw, d, k, _COMMIT_INFO_KEYS)
        except (ValueError, CorruptDataError) as e:  # JSON and UTF-8 errors are ValueErrors
            report.problems.append(f"commit info {k}: {e}")
            continue
        _count(report, "commit infos checksummed" if checked else "commit infos without checksums")


def _count(report: VerifyReport, what: str, n: int = 1) -> None:
    report.checked[what] = report.checked.get(what, 0) + n


def _verify_version(ds, where: str, deep: bool, report: VerifyReport) -> None:
    meta = ds.meta
    verdict = CS.classify_dataset(ds.storage, ds.version_state.commit_id)
    report.problems += [f"[{where}] dataset: {p}" for p in verdict.problems]
    for name, key in meta.tensor_names.items():
        if key not in meta.tensors:
            report.problems.append(f"[{where}] tensor name {name!r} points at unknown key {key!r}")
    named = set(meta.tensor_names.values())
    for key in meta.tensors:
        if key not in named:
            report.problems.append(f"[{where}] tensor {key!r} has no name in the dataset meta")
    for key in meta.hidden_tensors:
        if key not in meta.tensors:
            report.problems.append(f"[{where}] hidden tensor {key!r} is not a tensor of the dataset meta")
    # parents first: opening one lines up its hidden tensors with it, as every reader does
    verdicts: Dict[str, str] = {}
    for key in sorted(meta.tensors, key=lambda k: k in meta.hidden_tensors):
        try:
            eng = ds.session.engine(key)
        except Exception as e:  # noqa: BLE001 - whatever a damaged meta breaks is reported
            report.problems.append(f"[{where}] tensor {key!r}: meta/encoders do not load: {e}")
            continue
        _count(report, "tensors")
        verdicts[key] = _verify_checksums(eng, where, report)
        try:
            names = [n for n, k in meta.tensor_names.items() if k == key]
            if names and eng.meta.name not in names:
                report.problems.append(f"[{where}] tensor {key!r}: its meta names it {eng.meta.name!r}, the dataset meta {names[0]!r}")
            _verify_tensor(ds, eng, where, deep, report)
            _verify_hidden(ds, eng, key, where, report)
        except Exception as e:  # noqa: BLE001 - a damaged meta may lack anything: report it, check the rest
            report.problems.append(f"[{where}] tensor {key!r} does not read: {type(e).__name__}: {e}")
    for key in verdicts:
        _verify_null_mask(ds, key, verdicts, where, report)


def _verify_null_mask(ds, key: str, verdicts: Dict[str, str], where: str, report: VerifyReport) -> None:
    """A tensor's validity tensor (`lakeformat.core.nulls`) holds one row per parent row.
    Our flushes keep the two in step (all-or-nothing), so where our checksums say we wrote
    both last, any difference is damage. A mask another writer left behind (deeplake 3.9.52
    appends or pops the parent alone: its rows then read as not null) is not checked."""
    try:
        eng = ds.session.engine(key)
        mkey = nulls.mask_key(ds, eng)
        if mkey is None:
            return
        n_mask, n = ds.session.engine(mkey).num_samples, eng.num_samples
    except Exception:  # noqa: BLE001 - a tensor that does not open is reported above
        return
    _count(report, "null masks")
    if n_mask != n and verdicts.get(key) == "ok" and verdicts.get(mkey) == "ok":
        report.problems.append(f"[{where}] null mask {mkey!r} has {n_mask} rows, its tensor {key!r} has {n}")


def _verify_hidden(ds, eng, key: str, where: str, report: VerifyReport) -> None:
    """Each hidden tensor of `eng` holds as many samples as it (items, for flattened ones)."""
    meta = ds.meta
    for hkey, link in (eng.meta.links or {}).items():
        if hkey not in meta.tensors:
            continue
        try:
            h = ds.session.engine(hkey)
        except Exception as e:  # noqa: BLE001 - whatever a damaged meta breaks is reported
            report.problems.append(f"[{where}] hidden tensor {hkey!r} of {key!r}: meta/encoders do not load: {e}")
            continue
        want = eng.num_items if link.get("flatten_sequence") else eng.num_samples
        if h.num_samples != want:
            report.problems.append(f"[{where}] hidden tensor {hkey!r} has {h.num_samples} samples, {key!r} has {want}")
        elif not link.get("flatten_sequence") and eng.seq is None:
            _check_lengths_at_rest(ds, key, hkey, where, report)


def _length_at_rest(ds, key: str) -> Optional[int]:
    try:
        return int(loads(ds.storage.get(keys.tensor_meta_key(key, ds.version_state.commit_id)))["length"])
    except (KeyError, ValueError, TypeError, LakeFormatError):
        return None


def _check_lengths_at_rest(ds, key: str, hkey: str, where: str, report: VerifyReport) -> None:
    """A hidden tensor and its parent hold as many samples at rest, unless a crashed flush's
    marker says a reader rolls them back (a reader clamps a hidden tensor that runs ahead,
    which would hide a parent's meta that lost samples)."""
    if ds.storage.exists(keys.flush_marker_key(ds.version_state.commit_id)):
        return
    a, b = _length_at_rest(ds, key), _length_at_rest(ds, hkey)
    if a is not None and b is not None and a != b:
        report.problems.append(f"[{where}] tensor {key!r} holds {a} samples at rest, its hidden tensor {hkey!r} {b}")


def _verify_checksums(eng, where: str, report: VerifyReport) -> str:
    """The tensor's metadata objects at this commit against its side file; returns the
    verdict (`lakeformat.core.checksums.Verdict.state`)."""
    # the side file, the objects it covers and the chunk statistics in one batched read
    skey = chunk_stats.stats_key(eng.key, eng.commit_id)
    wanted = [CS.side_key(eng.key, eng.commit_id), skey] + [CS.object_key(eng.key, eng.commit_id, f) for f in CS.OBJECT_FILES]
    got = eng.storage.get_many(wanted, missing_ok=True)
    table, verdict = CS.load_and_classify(eng.storage, eng.key, eng.commit_id, got)
    _count(report, {"ok": "checksummed tensors", "stale": "tensors with stale checksums (written by another writer)",
                    "absent": "tensors without checksums", "corrupt": "checksummed tensors"}[verdict.state])
    for p in verdict.problems:
        report.problems.append(f"[{where}] tensor {getattr(eng.meta, 'name', eng.key)!r}: {p}")
    # the chunk statistics TQL skips chunks by: reads no longer trust a damaged file (they read
    # every chunk), but it is damage all the same
    why = chunk_stats.damage(got.get(skey), skey)
    if why is not None:
        report.problems.append(f"[{where}] tensor {getattr(eng.meta, 'name', eng.key)!r}: {why}")
    if verdict.state == "corrupt" and table is not None:
        eng.sums.folders.set(eng.key, eng.commit_id, table)  # its chunks are checked all the same
    return verdict.state


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
        if k in report.seen_chunks:
            continue
        report.seen_chunks.add(k)
        try:
            raw = eng.storage.get(k) if deep else eng.storage.get_range(k, 0, 4096)
        except KeyError:
            report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} ({k}) is missing")
            continue
        _count(report, "chunks")
        if not deep:
            continue
        try:
            if eng.verify_chunk(cname, k, raw, force=True):
                _count(report, "chunks checksummed")
        except CorruptDataError as e:
            report.problems.append(f"[{where}] {e}")  # and what the parse below finds
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
            s, e = c.byte_ranges(np.arange(min(c.num_samples, want)))  # a damaged header may claim billions
            if len(e) and int(e.max()) > data_len:
                report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} byte positions run past its {data_len} data bytes")
        except LakeFormatError as e:
            report.problems.append(f"[{where}] tensor {name!r}: chunk {cname} does not parse: {e}")
