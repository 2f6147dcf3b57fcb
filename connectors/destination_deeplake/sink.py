"""`StreamSink`: the only code of the destination that touches a dataset.

One sink per stream, over the dataset at `<path>/[<namespace>/]<stream>`. It creates tensors
as fields appear, appends converted batches with one `ds.extend` per batch, flushes when the
writer asks (before a state is acknowledged) and, at the successful end of a sync, removes
superseded rows (dedup), rows of older generations (refreshes) and commits once.

Truncating syncs (`overwrite`, or a refresh whose minimum generation is its generation) of a
dataset that already has commits are built on a staging branch `airbyte-stage-g<generation>`
cut from the last commit, with every tensor dropped; `main` keeps serving the previous data
until the sync succeeds, when `main` is moved to the staging branch's commit. A retry of the
same generation finds the staging branch and goes on from the records it acknowledged.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

import lakeformat
from connectors.destination_deeplake import dedup as D
from connectors.destination_deeplake import files as F
from connectors.destination_deeplake import schema as S
from connectors.destination_deeplake.columnar import ColumnBatch, RowBatch
from lakeformat.core.text_codec import EncodedSamples, json_loads, json_samples
from lakeformat.errors import CommitConflictError, LakeFormatError, SampleError
from lakeformat.version_control.operations import read_version

logger = logging.getLogger("airbyte.destination_deeplake")

META_TENSORS = ("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_generation_id", "_airbyte_meta")
STAGE_PREFIX = "airbyte-stage-g"
STAGE_MARK = "airbyte_stage_cleared"  # dataset info key: the (generation, sync) that cleared a staging branch
DEFAULT_BRANCH = "main"
CACHE_BYTES = 16 * 1024 * 1024
# 8 MiB chunks (deeplake's usual size): with ~3 tensors per field, the open chunks of a wide
# stream stay well under the 1 GiB budget
MAX_CHUNK_BYTES = 8 * 1024 * 1024


def stream_url(base: str, namespace: str | None, name: str) -> str:
    base = base.rstrip("/")
    parts = [p for p in (namespace, name) if p]
    for p in parts:
        if p in (".", "..") or "/" in p or "\\" in p:
            raise ValueError(f"stream or namespace name {p!r} cannot be a path segment")
    return "/".join([base, *parts])


def uuid4_bytes(n: int) -> bytes:
    """n random UUID4 strings (36 ASCII bytes each, back to back), formatted in bulk."""
    if n == 0:
        return b""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18], out[:, 19:23], out[:, 24:36] = (
        hexed[:, 0:8], hexed[:, 8:12], hexed[:, 12:16], hexed[:, 16:20], hexed[:, 20:32])
    return out.tobytes()


def uuid4_strings(n: int) -> list[str]:
    """n random UUID4 strings, formatted in bulk (no per-row uuid.uuid4())."""
    text = uuid4_bytes(n).decode("ascii")
    return [text[i : i + 36] for i in range(0, 36 * n, 36)]


def _as_list(values: Any, kind: str) -> list[Any]:
    """Samples given to ds.extend in any form (list, array, masked array, encoded), as a list
    with None for nulls: so that one of them can be nulled."""
    if isinstance(values, list):
        return values
    if isinstance(values, EncodedSamples):
        data = bytes(values.data)
        ends = np.cumsum(values.sizes).tolist()
        nulls = values.nulls.tolist() if values.nulls is not None else [False] * len(ends)
        out, start = [], 0
        for end, null in zip(ends, nulls):
            part = data[start:end]
            start = end
            out.append(None if null else json_loads(part) if kind == S.JSON else part.decode("utf-8"))
        return out
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values).reshape(len(values), -1).any(axis=1).tolist()
        return [None if m else row for row, m in zip(np.asarray(values.data), mask)]
    return list(values)


class StreamSink:
    """Writes one configured stream into its dataset."""

    def __init__(self, url: str, creds: dict[str, Any] | None, *, stream_name: str, namespace: str | None,
                 json_schema: dict[str, Any], sync_mode: str, primary_key: Sequence[Sequence[str]],
                 cursor_field: Sequence[str], generation_id: int, minimum_generation_id: int,
                 sync_id: int | None, chunk_compression: str | None, overrides: dict[str, Any],
                 links: dict[str, Any], non_image_files: str = "binary", include_files: bool = False):
        self.url = url
        self.creds = creds
        self.stream_name = stream_name
        self.namespace = namespace
        self.sync_mode = sync_mode
        self.primary_key = [list(p) for p in primary_key or []]
        self.cursor_field = list(cursor_field or [])
        self.generation_id = int(generation_id or 0)
        self.minimum_generation_id = int(minimum_generation_id or 0)
        self.sync_id = sync_id
        self.chunk_compression = chunk_compression
        self.overrides = overrides
        self.links = links
        self.non_image_files = non_image_files  # files of file-based sources: "binary" or "link"
        self.include_files = include_files  # the catalog says this stream's records carry files
        self.file_tensors: dict[str, str] = {}  # role (files.py) -> tensor name
        self.truncate = sync_mode == "overwrite" or (self.minimum_generation_id > 0 and self.minimum_generation_id == self.generation_id)
        self.staged = False
        self.main_version: str | None = None  # main's version token when a staged truncate began
        self.ds: lakeformat.Dataset | None = None
        self.fields: dict[str, tuple[str, str]] = {}  # field -> (tensor name, kind)
        self.declared = {k: v for k, v in ((json_schema or {}).get("properties") or {}).items()}
        self.records_written = 0
        self.rows_nulled = 0
        self.rows_at_open = 0  # rows before this sync's first record
        self.notices: list[tuple[str, str]] = []  # (level, text): LOG messages for the platform
        self.meta_plain = {"sync_id": sync_id, "changes": []}
        self.meta_plain_bytes = bytes(json_samples([self.meta_plain]).data)  # as the json tensor stores it

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.stream_name}" if self.namespace else self.stream_name

    # ------------------------------------------------------------------------------ opening
    def open(self) -> None:
        # a small read cache: the destination writes, and every cached byte is resident memory
        ds = lakeformat.dataset(self.url, creds=self.creds, cache_size=CACHE_BYTES)
        if self.truncate and ds.commit_id is not None and not self._committed_by_this_sync(ds):
            stage = f"{STAGE_PREFIX}{self.generation_id}"
            if stage in ds.branches:
                logger.info("%s: resuming the staged truncate of generation %s", self.label, self.generation_id)
                ds.checkout(stage)
                if ds.info.get(STAGE_MARK) != self._stage_mark():
                    self._clear_stage(ds)  # the attempt that made the branch died before clearing it
            else:
                for b in [b for b in ds.branches if b.startswith(STAGE_PREFIX)]:
                    try:
                        ds.delete_branch(b)  # a truncate of an older generation that never finished
                    except LakeFormatError as e:
                        logger.warning("%s: could not delete stale branch %s: %s", self.label, b, e)
                if ds.has_head_changes:
                    ds.commit("airbyte: rows of an interrupted sync, kept before a truncating sync")
                ds.checkout(stage, create=True)
                self._clear_stage(ds)
            self.staged = True
            # main as this sync found it: the staged data replaces it only if no one wrote it since
            self.main_version = read_version(ds, DEFAULT_BRANCH)
        ds.__enter__()  # one flush when the writer asks, not one per call
        self.ds = ds
        self.rows_at_open = len(ds)
        self._load_fields()
        for name, kind in (("_airbyte_raw_id", S.TEXT), ("_airbyte_extracted_at", S.TIMESTAMP_TZ),
                           ("_airbyte_generation_id", S.INT), ("_airbyte_meta", S.JSON)):
            if name not in ds.tensors:
                self._create(name, name, kind)
        for fname, fschema in self.declared.items():
            self.ensure_field(fname, self._declared_kind(fname, fschema))
        if self.include_files:
            for role in (F.ROLE_PATH, F.ROLE_SIZE, F.ROLE_TYPE, F.ROLE_FILE):
                self.ensure_file_tensor(role)

    def _stage_mark(self) -> dict[str, Any]:
        return {"generation": self.generation_id, "sync_id": self.sync_id}

    def _clear_stage(self, ds: lakeformat.Dataset) -> None:
        """Drop every tensor of the staging branch and mark it cleared for this sync, in one
        flush (all or nothing): a retry that finds the branch without the mark clears it again,
        so no row of the previous data survives a kill in between."""
        with ds:
            for name in list(ds.tensors):
                ds.delete_tensor(name)
            ds.info[STAGE_MARK] = self._stage_mark()

    def _commit_prefix(self) -> str:
        return f"airbyte sync {self.sync_id}: stream {self.label} ({self.sync_mode}, generation {self.generation_id}); "

    def _committed_by_this_sync(self, ds: lakeformat.Dataset) -> bool:
        """Whether main's last commit is this sync's own (a truncate promoted, or a first sync
        committed, before a kill ended the attempt): a retry of the same sync and generation
        then goes on from it, as from a staging branch, instead of truncating it away."""
        if self.sync_id is None or ds.branch != DEFAULT_BRANCH:
            return False
        log = ds.log()
        return bool(log) and str(log[0]["message"] or "").startswith(self._commit_prefix())

    def _load_fields(self) -> None:
        assert self.ds is not None
        for tname, t in self.ds.tensors.items():
            info = dict(t.info)
            fname = info.get("airbyte_field")
            if fname is not None and tname not in META_TENSORS:
                self.fields[fname] = (tname, info.get("airbyte_kind", S.JSON))
            role = info.get(F.INFO_KEY)
            if role is not None:
                self.file_tensors[role] = tname
                if role == F.ROLE_FILE and info.get("file_storage", "binary") != self.non_image_files:
                    from connectors.destination_deeplake.errors import CONFIG, traced

                    raise traced(f"Stream {self.label!r}: tensor {tname!r} of {self.url!r} holds non-image files as "
                                 f"{info.get('file_storage', 'binary')}, but the config says non_image_files = "
                                 f"{self.non_image_files}: keep the setting, or sync the stream with overwrite.", CONFIG)

    def _declared_kind(self, fname: str, fschema: Any) -> str:
        if fname in self.links:
            return S.LINK
        if fname in self.overrides:
            return S.OVERRIDE
        return S.kind_of(fschema)

    def _create(self, tname: str, fname: str, kind: str) -> None:
        assert self.ds is not None
        ds = self.ds
        rows = max((t.num_samples for t in ds.tensors.values()), default=0)
        if kind == S.LINK:
            lf = self.links[fname]
            if lf.creds_key and lf.creds_key not in ds.get_creds_keys():
                ds.add_creds_key(lf.creds_key)
            ds.create_tensor(tname, htype=lf.htype, verify=False, create_shape_tensor=False, create_sample_info_tensor=False)
        elif kind == S.OVERRIDE:
            ov = self.overrides[fname]
            ds.create_tensor(tname, htype=ov.htype, dtype=ov.dtype, sample_compression=ov.sample_compression,
                             chunk_compression=ov.chunk_compression if ov.sample_compression is None else None)
        else:
            args = S.tensor_args(kind)
            ds.create_tensor(tname, chunk_compression=self.chunk_compression, max_chunk_size=MAX_CHUNK_BYTES, **args)
        ds[tname].info.update(S.tensor_info(kind, fname))
        if rows and ds[tname].num_samples < rows:
            ds[tname].extend([None] * rows)  # earlier rows hold no value for a new field: nulls
        if fname is not None and tname not in META_TENSORS:
            self.fields[fname] = (tname, kind)

    def ensure_file_tensor(self, role: str) -> str:
        """The tensor of a file role (files.py), made on first use; earlier rows are empty."""
        tname = self.file_tensors.get(role)
        if tname is not None:
            return tname
        assert self.ds is not None
        ds = self.ds
        taken = {f: t for f, (t, _) in self.fields.items()}
        reserved = set(dir(lakeformat.Dataset)) | set(META_TENSORS) | set(ds.meta.tensor_names)
        tname = S.tensor_name(F.TENSOR_NAMES[role], taken, reserved)
        rows = max((t.num_samples for t in ds.tensors.values()), default=0)
        info: dict[str, Any] = {F.INFO_KEY: role, "nullable": True}  # rows without a file: typed nulls
        if role in (F.ROLE_PATH, F.ROLE_TYPE):
            ds.create_tensor(tname, htype="text", chunk_compression=self.chunk_compression, max_chunk_size=MAX_CHUNK_BYTES)
        elif role == F.ROLE_SIZE:
            ds.create_tensor(tname, chunk_compression=self.chunk_compression, max_chunk_size=MAX_CHUNK_BYTES,
                             **S.tensor_args(S.INT))
        elif role in (F.ROLE_PNG, F.ROLE_JPEG):
            ds.create_tensor(tname, htype="image", sample_compression="png" if role == F.ROLE_PNG else "jpeg")
        elif self.non_image_files == "link":
            ds.create_tensor(tname, htype="link[generic]", verify=False, create_shape_tensor=False,
                             create_sample_info_tensor=False)
            info["file_storage"] = "link"
        else:
            ds.create_tensor(tname, htype="generic", dtype="uint8", chunk_compression=self.chunk_compression,
                             max_chunk_size=MAX_CHUNK_BYTES)
            info["file_storage"] = "binary"
            info["null_placeholder"] = "empty"  # a row without a file stays an empty sample (lakeformat.core.nulls)
        ds[tname].info.update(info)
        if rows and ds[tname].num_samples < rows:
            ds[tname].extend([None] * rows)
        self.file_tensors[role] = tname
        return tname

    def _file_columns(self, files: Sequence[Any]) -> dict[str, Any]:
        """The file tensors' samples of a batch whose rows carry staged files (or None)."""
        out: dict[str, Any] = {}
        col = self.ensure_file_tensor
        out[col(F.ROLE_PATH)] = [None if f is None else f.relative_path for f in files]
        out[col(F.ROLE_TYPE)] = [None if f is None else f.media_type for f in files]
        out[col(F.ROLE_SIZE)] = S.convert(S.INT, [None if f is None else f.size for f in files]).values
        for role in (F.ROLE_PNG, F.ROLE_JPEG):
            if any(f is not None and f.image_role == role for f in files):
                out[col(role)] = [f.image if f is not None and f.image_role == role else None for f in files]
        file_t = col(F.ROLE_FILE)
        if self.non_image_files == "link":
            out[file_t] = [lakeformat.link(f.link) if f is not None and f.link is not None else None for f in files]
        else:
            out[file_t] = [np.frombuffer(f.original, dtype=np.uint8) if f is not None and f.original is not None else None
                           for f in files]
        return out

    def ensure_field(self, fname: str, kind: str) -> None:
        """Make the tensor of a field; an existing int tensor widens to a declared float."""
        cur = self.fields.get(fname)
        if cur is None:
            taken = {f: t for f, (t, _) in self.fields.items()}
            reserved = set(dir(lakeformat.Dataset)) | set(META_TENSORS) | set(self.ds.meta.tensor_names if self.ds else ())
            self._create(S.tensor_name(fname, taken, reserved), fname, kind)
        elif S.WIDENS_TO.get(cur[1]) == kind:
            self.widen(fname, kind)

    def widen(self, fname: str, to_kind: str) -> None:
        """Rewrite a field's tensor as the wider kind (int64 -> float64), keeping every value."""
        assert self.ds is not None
        ds = self.ds
        tname, kind = self.fields[fname]
        values = S.widen_values(ds[tname].values(), to_kind)  # None for a null
        tmp = f"{tname}__widening"
        ds.create_tensor(tmp, chunk_compression=self.chunk_compression, max_chunk_size=MAX_CHUNK_BYTES, **S.tensor_args(to_kind))
        # the info first: it declares the tensor nullable, so a null becomes a placeholder plus
        # the mask (as in a tensor made as float), not deeplake 3's empty sample
        ds[tmp].info.update(S.tensor_info(to_kind, fname))
        ds[tmp].extend(values)
        ds.delete_tensor(tname)
        ds.rename_tensor(tmp, tname)
        self.fields[fname] = (tname, to_kind)
        logger.info("%s: field %r widened from %s to %s", self.label, fname, kind, to_kind)

    # ------------------------------------------------------------------------------ writing
    def write_batches(self, batches: Sequence[RowBatch | ColumnBatch]) -> None:
        """Append a stream's buffered batches, in order: the fields of every row batch are made
        first, as if all their records were one batch."""
        rows = [b.datas for b in batches if type(b) is RowBatch]
        if rows:
            self._ensure_fields(rows)
        for b in batches:
            if type(b) is RowBatch:
                self.write(b.datas, b.emitted, b.files)
            else:
                self.write_columns(b)

    def _ensure_fields(self, batches: Sequence[list[dict[str, Any]]]) -> set:
        """Make the tensors of fields that first appear in these records; their keys."""
        seen: set = set()
        last = None
        for datas in batches:
            for d in datas:
                if d.keys() != last:  # records of one stream mostly share their keys
                    seen.update(d)
                    last = d.keys()
        for fname in seen:
            if fname not in self.fields:
                first = next((d[fname] for datas in batches for d in datas if d.get(fname) is not None), None)
                self.ensure_field(fname, self._declared_kind(fname, self.declared.get(fname)) if fname in self.declared or fname in self.links or fname in self.overrides else S.kind_of_value(first))
        return seen

    def write(self, datas: list[dict[str, Any]], emitted_at: list[Any], files: Sequence[Any] | None = None) -> None:
        """Append one batch of record data (dicts) with their emitted_at (ms) and, for a
        file-based stream, each row's staged file (files.py; None for a row without)."""
        assert self.ds is not None
        n = len(datas)
        if n == 0:
            return
        seen = self._ensure_fields([datas])
        changes: dict[int, list[dict[str, str]]] = {}
        batch: dict[str, Any] = {}
        for fname, (tname, kind) in list(self.fields.items()):
            if fname not in seen:
                col = [None] * n
            else:
                try:
                    col = list(map(itemgetter(fname), datas))
                except KeyError:
                    col = [d.get(fname) for d in datas]
            batch[tname] = self._convert(fname, kind, col, changes)
        if files is not None:
            batch.update(self._file_columns(files))
        ems = np.asarray([0 if e is None else e for e in emitted_at], dtype=np.float64)
        self._append(batch, changes, n, ems)

    def write_columns(self, cb: ColumnBatch) -> None:
        """Append records the scanner took as columns (every value fits its field)."""
        assert self.ds is not None
        n = cb.n
        if n == 0:
            return
        changes: dict[int, list[dict[str, str]]] = {}
        batch: dict[str, Any] = {}
        for fname, (tname, kind) in list(self.fields.items()):
            col = cb.columns.get(fname)
            if col is None:
                batch[tname] = [None] * n  # a field made after these records were scanned
                continue
            values = col.samples(kind)
            if values is None:  # the field's tensor changed kind since: the Python conversion
                values = self._convert(fname, kind, col.raw_values(), changes)
            batch[tname] = values
        self._append(batch, changes, n, cb.emitted)

    def _convert(self, fname: str, kind: str, col: list[Any], changes: dict[int, list[dict[str, str]]]) -> Any:
        """One field's values of a batch, as samples of its tensor (nulled ones into changes)."""
        if kind == S.LINK:
            cred = self.links[fname].creds_key
            return [None if v is None else lakeformat.link(str(v), creds_key=cred) for v in col]
        if kind == S.OVERRIDE:
            res = S.convert_override(self.overrides[fname], col)
        else:
            res = S.convert(kind, col)
            if res.widen:
                self.widen(fname, res.widen)
                res = S.convert(res.widen, col)
        for i in res.nulled:
            changes.setdefault(i, []).append({"field": fname, "change": "NULLED", "reason": S.TYPECAST_ERROR})
        return res.values

    def _meta_column(self, changes: dict[int, list[dict[str, str]]], n: int) -> Any:
        if not changes:
            data = self.meta_plain_bytes
            return EncodedSamples(data * n, np.full(n, len(data), dtype=np.int64))
        plain = self.meta_plain
        return [plain if i not in changes else {"sync_id": self.sync_id, "changes": changes[i]} for i in range(n)]

    def _append(self, batch: dict[str, Any], changes: dict[int, list[dict[str, str]]], n: int, ems: np.ndarray) -> None:
        """The meta tensors, then one ds.extend of the batch."""
        batch["_airbyte_raw_id"] = EncodedSamples(uuid4_bytes(n), np.full(n, 36, dtype=np.int64))
        batch["_airbyte_extracted_at"] = np.rint(ems * 1000.0).astype(np.int64).reshape(-1, 1)
        batch["_airbyte_generation_id"] = np.full((n, 1), self.generation_id, dtype=np.int64)
        if changes:
            self.rows_nulled += len(changes)
        batch["_airbyte_meta"] = self._meta_column(changes, n)
        self._extend(batch, changes, n)
        self.records_written += n

    def _extend(self, batch: dict[str, Any], changes: dict[int, list[dict[str, str]]], n: int) -> None:
        """ds.extend; a sample the tensor rejects is nulled, named in its row's changes, and the
        (atomic) extend retried, so that one bad value never fails a sync."""
        assert self.ds is not None
        by_tensor = {t: (f, k) for f, (t, k) in self.fields.items()}
        for _ in range(n + 1):
            try:
                self.ds.extend(batch, append_empty=True)
                return
            except SampleError as e:
                tname = (e.tensor or "").split("/")[-1]
                if tname not in batch or tname not in by_tensor or e.index is None:
                    raise
                i = e.index - self.ds[tname].num_samples
                if not 0 <= i < n:
                    raise
                fname, kind = by_tensor[tname]
                values = _as_list(batch[tname], kind)
                if values[i] is None:
                    raise
                values = list(values)
                values[i] = None
                batch[tname] = values
                row_changes = changes.setdefault(i, [])
                row_changes.append({"field": fname, "change": "NULLED", "reason": S.TYPECAST_ERROR})
                batch["_airbyte_meta"] = self._meta_column(changes, n)
                self.rows_nulled += 1

    def flush(self) -> None:
        if self.ds is not None:
            self.ds.flush()

    # ------------------------------------------------------------------------------ the end
    def _tensor_of(self, fname: str) -> tuple[str, str] | None:
        if fname in META_TENSORS:
            return fname, {"_airbyte_extracted_at": S.TIMESTAMP_TZ, "_airbyte_generation_id": S.INT}.get(fname, S.JSON)
        if fname in self.fields:
            tname, kind = self.fields[fname]
            return tname, kind
        return None

    def _check_keys(self, keys: list[D.KeyColumn]) -> int:
        """Rows of this sync whose key (any part of it) is null or missing; a config error,
        raised before any row is removed, when that is every row of this sync."""
        n = len(self.ds)
        mine = n - self.rows_at_open
        missing = int(D.keyless_mask(keys, n)[self.rows_at_open :].sum())
        if mine > 0 and missing == mine:
            names = ", ".join(".".join(p) for p in self.primary_key)
            from connectors.destination_deeplake.errors import CONFIG, traced

            raise traced(f"Stream {self.label!r} is deduplicated on primary key [{names}], which none of its "
                         f"{mine} records of this sync has: check the configured primary key. Nothing was removed.",
                         CONFIG, f"{self.label}: primary key {self.primary_key} null or missing in all {mine} records")
        return missing

    def _remove_rows(self, rows: Sequence[int]) -> None:
        """Remove the rows in one bulk delete (each affected chunk rewritten once)."""
        assert self.ds is not None
        idx = np.asarray(rows, dtype=np.int64)  # sorted and unique (dedup.py): delete_rows checks
        if len(idx):
            self.ds.delete_rows(idx)

    def finish(self, last_state: dict[str, Any] | None, complete: bool = True) -> str:
        """Dedup, drop older generations, commit once (and move main to a staged truncate).
        A staged truncate replaces main only when the source reported the stream `complete`
        (STREAM_STATUS COMPLETE); otherwise main keeps its data and the staged rows wait on the
        staging branch for a retry of the same generation."""
        assert self.ds is not None
        ds = self.ds
        removed_old = removed_dup = keyless = 0
        reader = D.ColumnReader(ds, self._tensor_of)
        dedup = self.sync_mode == "append_dedup" and bool(self.primary_key)
        if dedup:
            keys = reader.keys(self.primary_key, len(ds))
            keyless = self._check_keys(keys)  # before anything is removed
        if self.minimum_generation_id > 0 and (not self.staged or self.minimum_generation_id != self.generation_id):
            old = D.rows_of_old_generations(reader, self.minimum_generation_id, len(ds))
            self._remove_rows(old)
            removed_old = len(old)
        if dedup:
            if removed_old:
                keys = reader.keys(self.primary_key, len(ds))
            dup = D.superseded(reader, keys, self.cursor_field, len(ds))
            self._remove_rows(dup)
            removed_dup = len(dup)
        if keyless:
            names = ", ".join(".".join(p) for p in self.primary_key)
            self.notices.append(("WARN", f"stream {self.label}: {keyless} records of this sync have no value for primary key "
                                         f"[{names}]; they are kept as they are, not deduplicated"))
        promote = self.staged and complete
        if self.staged and not complete:
            self.notices.append(("WARN", f"stream {self.label}: the source did not report the stream COMPLETE, so the "
                                         f"previous data stays on main; the {self.records_written} records of this sync "
                                         f"wait on branch {ds.branch} for a retry of generation {self.generation_id}"))
        ds.flush()
        state_text = orjson.dumps(last_state).decode() if last_state is not None else "none"
        if len(state_text) > 2000:
            state_text = state_text[:2000] + "..."
        message = (
            self._commit_prefix() +
            f"records: {self.records_written} written, {self.rows_nulled} with nulled values, "
            f"{keyless} without a primary key kept, "
            f"{removed_dup} superseded removed, {removed_old} of older generations removed, {len(ds)} rows; "
            + ("" if complete else "stream not reported complete; ")
            + f"last state: {state_text}"
        )
        ds.__exit__(None, None, None)
        commit = ds.commit(message, allow_empty=True)
        if promote:
            promote_branch(ds, self.url, self.creds, self.main_version)
        return commit

    def close(self) -> None:
        """Release this sink's dataset without committing (the data flushed so far stays)."""
        if self.ds is not None:
            try:
                from lakeformat.version_control.locks import release_lock

                release_lock(self.ds.session.storage, self.ds.branch)
            except Exception:  # noqa: BLE001 - the lock expires anyway
                pass
            self.ds = None


def promote_branch(ds: lakeformat.Dataset, url: str, creds: dict[str, Any] | None, main_version: str | None = None) -> None:
    """Move `main` to the last commit of the staging branch `ds` is on, as one write of the
    version tree (a `ResetBranch` commit operation), and forget the staging branch. `main`'s
    log then reads: the staged sync's commit, then the commits main had (the staging branch
    was cut from main's last commit). Until that write, readers of `main` see the previous
    data. `main_version`: main's version token when the staged sync began (None: now); a
    main that moved since raises CommitConflictError and the staged data stays."""
    from lakeformat.version_control.operations import ResetBranch, commit_operation

    stage = ds.branch
    assert stage is not None and stage != DEFAULT_BRANCH
    token = main_version if main_version is not None else read_version(ds, DEFAULT_BRANCH)
    try:
        commit_operation(ds, ResetBranch(DEFAULT_BRANCH, stage), token)
    except CommitConflictError:
        logger.warning("branch main of %r moved during the sync; the staged data stays on %r", url, stage)
        raise
