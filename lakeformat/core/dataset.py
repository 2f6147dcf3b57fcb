"""`Dataset`: tensors (columns) under one storage root, at one commit, plus views of them.

A `Dataset` object is a handle: its index (all samples, or a selection) and group prefix, over
a `_DatasetState` that every view of the same open dataset shares.
"""
from __future__ import annotations

import base64
import json
import logging
import posixpath
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat.core import checksums as CS
from lakeformat.core import keys, nulls
from lakeformat.core.chunk_deletes import dedup_last, normalize_pop_indices, sequence_items
from lakeformat.core.chunk_engine import ChunkEngine
from lakeformat.core.dataset_schema import SchemaOps
from lakeformat.core.index import Index
from lakeformat.core.links import LinkCreds, LinkResolver
from lakeformat.core.meta import DatasetMeta, TensorMeta
from lakeformat.core.sample_ids import new_sample_ids
from lakeformat.core.serialize import Context, Serializer, SerializedBatch
from lakeformat.core.tensor import Tensor
from lakeformat.core.version_state import VersionState
from lakeformat.errors import (
    KeyNotFoundInStorageError,
    LakeFormatError,
    ReadOnlyError,
    SampleError,
    TensorDoesNotExistError,
)
from lakeformat.storage import StorageProvider
from lakeformat.version_control.objects import DatasetDiff

logger = logging.getLogger(__name__)

# sealed chunks are written early once this many bytes wait in memory (the metas still point
# at the old state, so an early write is invisible until the next flush)
STAGED_BYTES_LIMIT = 64 * 1024 * 1024


class JournalOverlay(StorageProvider):
    """A store seen as it was before an unfinished flush: the objects the flush's journal
    saved (None: absent then) hide what the flush wrote over them. Writes go through to the
    store and drop the saved copies they replace."""

    def __init__(self, base: StorageProvider, saved: Dict[str, Optional[bytes]]):
        self.base = base
        self.saved = dict(saved)
        for a in ("root", "read_only", "reads_into_cheaply", "concurrency", "request_latency_s", "bandwidth_bytes_s"):
            setattr(self, a, getattr(base, a))
        if hasattr(base, "set_parts"):
            self.set_parts = self._set_parts

    def __getattr__(self, name: str) -> Any:  # invalidate, ... of the store below
        base = self.__dict__.get("base")
        if base is None:
            raise AttributeError(name)
        return getattr(base, name)

    def get(self, key: str) -> bytes:
        if key in self.saved:
            v = self.saved[key]
            if v is None:
                raise KeyNotFoundInStorageError(key)
            return v
        return self.base.get(key)

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        if key in self.saved:
            return self.get(key)[start:end]
        return self.base.get_range(key, start, end)

    def get_ranges(self, key: str, starts: Any, ends: Any) -> List[bytes]:
        if key in self.saved:
            return [self.get(key)[a:b] for a, b in zip(starts, ends)]
        return self.base.get_ranges(key, starts, ends)

    def read_into(self, key: str, start: int, out: Any) -> None:
        if key in self.saved:
            return StorageProvider.read_into(self, key, start, out)
        return self.base.read_into(key, start, out)

    def get_many(self, keys_: Any, missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        keys_ = list(keys_)
        mine = [k for k in keys_ if k in self.saved]
        out = self.base.get_many([k for k in keys_ if k not in self.saved], missing_ok) if len(mine) < len(keys_) else {}
        for k in mine:
            if self.saved[k] is None and not missing_ok:
                raise KeyNotFoundInStorageError(k)
            out[k] = self.saved[k]
        return {k: out[k] for k in keys_}

    def set(self, key: str, value: bytes) -> None:
        self.saved.pop(key, None)
        self.base.set(key, value)

    def _set_parts(self, key: str, parts: Any) -> None:
        self.saved.pop(key, None)
        self.base.set_parts(key, parts)

    def set_many(self, items: Dict[str, bytes]) -> None:
        for k in items:
            self.saved.pop(k, None)
        self.base.set_many(items)

    def delete(self, key: str) -> None:
        self.saved.pop(key, None)
        self.base.delete(key)

    def delete_prefix(self, prefix: str) -> None:
        for k in [k for k in self.saved if k.startswith(prefix)]:
            self.saved.pop(k)
        self.base.delete_prefix(prefix)

    def clear(self) -> None:
        self.saved.clear()
        self.base.clear()

    def exists(self, key: str) -> bool:
        if key in self.saved:
            return self.saved[key] is not None
        return self.base.exists(key)

    def size(self, key: str) -> int:
        if key in self.saved:
            return len(self.get(key))
        return self.base.size(key)

    def list(self, prefix: str = "") -> List[str]:
        out = set(self.base.list(prefix))
        for k, v in self.saved.items():
            if k.startswith(prefix):
                if v is None:
                    out.discard(k)
                else:
                    out.add(k)
        return sorted(out)

    def flush(self) -> None:
        self.base.flush()

    def close(self) -> None:
        self.base.close()

    # shared objects (locks, the version tree) are never in a journal: the store's own
    # conditional writes, untouched
    @property
    def conditional_writes(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.base, "conditional_writes", False))

    def get_versioned(self, key: str) -> Any:
        return self.base.get_versioned(key)

    def set_if_absent(self, key: str, value: bytes) -> bool:
        self.saved.pop(key, None)
        return self.base.set_if_absent(key, value)

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        self.saved.pop(key, None)
        return self.base.set_if_match(key, value, version)

    def delete_if_match(self, key: str, version: str) -> bool:
        self.saved.pop(key, None)
        return self.base.delete_if_match(key, version)


def _encode_journal(saved: Dict[str, Optional[bytes]], lengths: Dict[str, int]) -> bytes:
    """A flush marker with a journal: the objects to restore, and the lengths a still
    earlier crashed flush left to roll back to (applied on top of them)."""
    restore = {k: (base64.b64encode(v).decode() if v is not None else None) for k, v in saved.items()}
    return json.dumps({"restore": restore, "lengths": lengths}).encode()


def _decode_journal(raw: bytes) -> Tuple[Dict[str, int], Optional[Dict[str, Optional[bytes]]]]:
    """(lengths to roll back to, objects to restore) from a flush marker."""
    try:
        d = json.loads(raw)
        lengths = {k: int(v) for k, v in d.get("lengths", {}).items()}
        if "restore" in d:
            return lengths, {k: (base64.b64decode(v) if v is not None else None) for k, v in d["restore"].items()}
        return lengths, None
    except (KeyError, ValueError, TypeError, AttributeError):
        return {}, None


class _DatasetState:
    def __init__(self, storage: StorageProvider, vs: VersionState, read_only: bool, path: str,
                 prefetched: Optional[Dict[str, Optional[bytes]]] = None):
        self.storage = storage
        self.base_storage = storage  # the store itself, under a JournalOverlay after a crash
        self.journal: Optional[Dict[str, Optional[bytes]]] = None
        self.vs = vs
        self.read_only = read_only
        self.path = path
        self.engines: Dict[str, ChunkEngine] = {}
        self.dropped: List[str] = []  # folders of deleted tensors, removed once the deletion is published
        self.schema_edited = False  # a tensor renamed or deleted, or the info changed, since the last flush
        self.preloaded: Dict[str, Optional[bytes]] = {}  # tensor metadata read ahead (open_tensors)
        self.hidden_parents: Dict[str, Tuple[ChunkEngine, Dict[str, Any]]] = {}  # hidden tensor -> parent, link, until opened
        self.lock = threading.RLock()
        self.with_depth = 0
        self.link_creds = LinkCreds.load(storage, prefetched)
        self.links = LinkResolver(self.link_creds)
        self.load_commit(vs.commit_id, prefetched)

    @staticmethod
    def opening_keys(commit_id: str) -> List[str]:
        """The dataset-level objects `load_commit` reads for a commit."""
        return [keys.dataset_meta_key(commit_id), keys.dataset_info_key(commit_id),
                keys.dataset_diff_key(commit_id), keys.flush_marker_key(commit_id)]

    def load_commit(self, commit_id: str, prefetched: Optional[Dict[str, Optional[bytes]]] = None) -> None:
        self.vs.commit_id = commit_id
        self._use_storage(self.base_storage)
        self.journal = None
        self.dropped = []
        self.schema_edited = False
        self.engines = {}
        self.preloaded = {}
        self.hidden_parents = {}
        wanted = self.opening_keys(commit_id)
        mk, ik, dk, fk = wanted
        if prefetched is not None and all(k in prefetched for k in wanted):
            got = prefetched
        else:
            got = self.storage.get_many(wanted, missing_ok=True)  # one round trip
        self.rollback: Dict[str, int] = {}
        if got[fk] is not None:
            # a marker left by a flush that did not finish: its tensors grew only (roll them
            # back to the lengths it holds), or it holds a journal of every object the flush
            # overwrote: read through it, as if the flush never began
            self.rollback, self.journal = _decode_journal(got[fk])
            if self.journal is not None:
                CS.accept_rewritten_chunks(self.base_storage, self.journal)
                self._use_storage(JournalOverlay(self.base_storage, self.journal))
                got = {**got, **{k: self.journal[k] for k in (mk, ik, dk) if k in self.journal}}
        self.meta = DatasetMeta.from_bytes(got[mk], mk) if got[mk] is not None else DatasetMeta()
        self.meta_dirty = False
        self.info: Dict[str, Any] = json.loads(got[ik]) if got[ik] is not None else {}
        self.info_dirty = False
        self.diff = DatasetDiff.from_bytes(got[dk]) if got[dk] is not None else DatasetDiff()
        self.tree_dirty = False
        self.sums = CS.DatasetChecksums({f: got[k] for f, k in zip(CS.DATASET_FILES, (mk, ik, dk))})

    def _use_storage(self, storage: StorageProvider) -> None:
        self.storage = storage
        self.vs.storage = storage
        self.vs.forget_chunk_sets()


class Dataset(SchemaOps):
    """A dataset of tensors.

    >>> ds = lakeformat.empty("./animals", overwrite=True)        # doctest: +SKIP
    >>> with ds:                                                   # doctest: +SKIP
    ...     ds.create_tensor("images", htype="image", sample_compression="png")
    ...     ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    ...     ds.append({"images": np.zeros((32, 32, 3), np.uint8), "labels": "dog"})
    """

    def __init__(self, state: _DatasetState, index: Optional[Index] = None, group: str = ""):
        self.__dict__["_state"] = state
        self.__dict__["index"] = index or Index()
        self.__dict__["group"] = group

    # ==========================================================================================
    # basic properties
    @property
    def path(self) -> str:
        return self._state.path

    @property
    def storage(self) -> StorageProvider:
        return self._state.storage

    @property
    def read_only(self) -> bool:
        return self._state.read_only or not self._state.vs.is_head

    @property
    def meta(self) -> DatasetMeta:
        return self._state.meta

    @property
    def version_state(self) -> VersionState:
        return self._state.vs

    @property
    def is_view(self) -> bool:
        return self.index.samples is not None

    @property
    def _links(self) -> LinkResolver:
        return self._state.links

    def _engine(self, key: str) -> ChunkEngine:
        st = self._state
        eng = st.engines.get(key)
        if eng is None:
            with st.lock:
                eng = st.engines.get(key)
                if eng is None:
                    eng = self._open_engine(key, st.preloaded)
                    parent = st.hidden_parents.pop(key, None)
                    if parent is not None:
                        self._clamp_hidden(eng, *parent)
                    self._align_hidden(eng)
        return eng

    def _open_engine(self, key: str, stored: Dict[str, Optional[bytes]]) -> ChunkEngine:
        st = self._state
        eng = ChunkEngine(key, st.storage, st.vs, stored=stored or None)
        st.engines[key] = eng
        for k in ChunkEngine.stored_keys(key, st.vs.commit_id):
            st.preloaded.pop(k, None)  # read-ahead serves one opening only
        if key in st.rollback:
            eng.clamp(int(st.rollback[key]))
        return eng

    @staticmethod
    def _clamp_hidden(h: ChunkEngine, parent: ChunkEngine, link: Dict[str, Any]) -> None:
        want = parent.num_items if link.get("flatten_sequence") else parent.num_samples
        if h.num_samples > want and h.seq is None:
            h.clamp(want)

    def _align_hidden(self, eng: ChunkEngine) -> None:
        """Hidden tensors are flushed before their parent; after a crash one may be ahead of
        it. The parent's meta is the commit point: clamp them to it. A read-only dataset
        opens them when they are first read (a reader rarely needs them); a writable one
        now, since every write touches them."""
        st = self._state
        links = eng.meta.links or {}
        hidden = [h for h in links if h in st.meta.tensors and h not in st.engines]
        if self.read_only:
            for h in hidden:
                st.hidden_parents[h] = (eng, links[h])
            return
        stored = dict(st.preloaded)
        wanted = [h for h in hidden if any(k not in stored for k in ChunkEngine.stored_keys(h, st.vs.commit_id))]
        if wanted:
            stored.update(self._read_metadata(wanted))  # one round trip
        for hkey in hidden:
            self._clamp_hidden(self._open_engine(hkey, stored), eng, links[hkey])

    def _read_metadata(self, tensor_keys: List[str]) -> Dict[str, Optional[bytes]]:
        """What these tensors' engines read when they open, in as few round trips as their
        metas allow: metas, chunk ids and tiles in one; the encoders of the sequence and
        link tensors among them in a second, only if there are any."""
        st = self._state
        c = st.vs.commit_id
        got = st.storage.get_many([x for k in tensor_keys for x in ChunkEngine.stored_keys(k, c)], missing_ok=True)
        extra: List[str] = []
        for k in tensor_keys:
            raw = got.get(keys.tensor_meta_key(k, c))
            try:
                meta = TensorMeta.from_bytes(raw, k) if raw is not None else None
            except Exception:  # noqa: BLE001 - the engine reports a bad meta when it opens
                meta = None
            if meta is not None:
                extra += ChunkEngine.index_keys(k, c, meta)
        if extra:
            got.update(st.storage.get_many(extra, missing_ok=True))
        return got

    def open_tensors(self, names: List[str]) -> None:
        """Read the metadata of these tensors (and, when the dataset is writable, of their
        hidden tensors) in one batched storage call (one round trip on an object store),
        before their first use."""
        st = self._state
        tensor_keys = [self.meta.tensor_names.get(self._full_name(n)) for n in names]
        todo = []
        for key in [k for k in tensor_keys if k is not None]:
            todo.append(key)
            if not self.read_only:
                todo += [h for h in (keys.hidden_key(key, kind) for kind in ("id", "shape", "info")) if h in st.meta.tensors]
        todo = [k for k in todo if k not in st.engines]
        if todo:
            with st.lock:
                st.preloaded.update(self._read_metadata(todo))

    def _full_name(self, name: str) -> str:
        name = name.strip("/")
        return posixpath.join(self.group, name) if self.group else name

    # ==========================================================================================
    # tensors and groups
    @property
    def tensors(self) -> Dict[str, Tensor]:
        """Visible tensors of this dataset (or group), by name relative to it."""
        out = {}
        prefix = self.group + "/" if self.group else ""
        for name, key in self.meta.tensor_names.items():
            if key in self.meta.hidden_tensors or not name.startswith(prefix):
                continue
            out[name[len(prefix):]] = Tensor(name, key, self, self.index)
        return out

    @property
    def _all_tensors(self) -> Dict[str, Tensor]:
        return {name: Tensor(name, key, self, self.index) for name, key in self.meta.tensor_names.items()}

    @property
    def groups(self) -> Dict[str, "Dataset"]:
        prefix = self.group + "/" if self.group else ""
        out = {}
        for g in self.meta.groups:
            if g.startswith(prefix) and "/" not in g[len(prefix):]:
                out[g[len(prefix):]] = Dataset(self._state, self.index, g)
        return out

    def _tensor(self, name: str) -> Tensor:
        full = self._full_name(name)
        key = self.meta.tensor_names.get(full)
        if key is None:
            raise TensorDoesNotExistError(full)
        return Tensor(full, key, self, self.index)

    def __getitem__(self, item: Any) -> Union[Tensor, "Dataset"]:
        if isinstance(item, str):
            full = self._full_name(item)
            if full in self.meta.tensor_names:
                return self._tensor(item)
            if full in self.meta.groups:
                return Dataset(self._state, self.index, full)
            raise TensorDoesNotExistError(full)
        if isinstance(item, (list, tuple)) and item and all(isinstance(x, str) for x in item):
            raise LakeFormatError("selecting several tensors by name is not supported; index them one by one")
        return Dataset(self._state, self.index.compose(item, self._base_length()), self.group)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except TensorDoesNotExistError:
            raise AttributeError(f"Dataset has no attribute, tensor or group {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"cannot set {name!r}: assign samples with ds.{name}.append(...) or ds.{name}[i] = ...")

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _base_length(self) -> int:
        # a tensor whose metadata is damaged is left out (with a warning) rather than making
        # every other tensor unreadable; `lakeformat verify` reports it
        lengths = []
        for t in self._visible_full_tensors():
            try:
                lengths.append(t.num_samples)
            except LakeFormatError as e:
                logger.warning("tensor %r does not open, left out of the dataset's length: %s", t.name, e)
        return min(lengths) if lengths else 0

    def _visible_full_tensors(self) -> List[Tensor]:
        return [Tensor(n, k, self, Index()) for n, k in self.meta.tensor_names.items() if k not in self.meta.hidden_tensors and (not self.group or n.startswith(self.group + "/"))]

    def __len__(self) -> int:
        return self.index.length(self._base_length())

    @property
    def num_samples(self) -> int:
        return len(self)

    @property
    def max_len(self) -> int:
        lengths = [t.num_samples for t in self._visible_full_tensors()]
        return max(lengths) if lengths else 0

    def _check_writable(self) -> None:
        if self._state.read_only:
            raise ReadOnlyError(f"Dataset {self.path!r} was opened read-only.")
        if not self._state.vs.is_head:
            raise ReadOnlyError(
                f"Dataset {self.path!r} is at commit {self._state.vs.commit_id}, which is read-only; "
                "check out a branch to write (ds.checkout('main'), or ds.checkout('new', create=True))."
            )

    def _check_writable_view(self) -> None:
        self._check_writable()
        if self.is_view:
            raise ReadOnlyError("A view of a dataset is read-only; write through the dataset itself.")

    def append(self, sample: Dict[str, Any], skip_ok: bool = False, append_empty: bool = False) -> None:
        self.extend({k: [v] for k, v in sample.items()}, skip_ok=skip_ok, append_empty=append_empty)

    def extend(self, samples: Dict[str, Any], skip_ok: bool = False, append_empty: bool = False, progressbar: bool = False) -> None:
        """Append a batch to several tensors at once; all of it lands or none of it does."""
        self._check_writable_view()
        if not isinstance(samples, dict):
            raise LakeFormatError("ds.extend takes a dict of tensor name -> samples")
        resolved: Dict[str, Any] = {}
        lengths = set()
        for name, vals in samples.items():
            t = self._tensor(name)
            resolved[t.key] = vals
            lengths.add(len(vals))
        if len(lengths) > 1:
            raise SampleError(f"ds.extend got different numbers of samples per tensor: { {k: len(v) for k, v in samples.items()} }")
        n = lengths.pop() if lengths else 0
        missing = [t for name, t in self.tensors.items() if t.key not in resolved]
        if missing and not (skip_ok or append_empty):
            raise SampleError(
                "ds.append/extend needs a value for every tensor; missing: "
                + ", ".join(t.name for t in missing) + " (pass skip_ok=True or append_empty=True)"
            )
        if append_empty:
            for t in missing:
                resolved[t.key] = [None] * n
        self._extend_tensors(resolved, progressbar=progressbar)

    def _serialize(self, key: str, values: Any, start: Optional[int] = None) -> SerializedBatch:
        eng = self._engine(key)
        m = eng.meta
        info = eng.info
        ctx = Context(
            name=m.name,
            start_index=eng.num_samples if start is None else start,
            class_names=list(info.get("class_names", []) or []),
            class_names_fixed=bool(m.d.get("class_names_fixed", False)),
            creds_lookup=self._state.link_creds.encode,
            shape_of_link=self._state.links.shape_of,
            tiling_threshold=eng.tiling_threshold,
        )
        return Serializer(m, ctx).serialize(values)

    def _hidden_batches(self, key: str, batch: SerializedBatch, values: Any = None, start: Optional[int] = None,
                        new_ids: bool = True) -> Dict[str, SerializedBatch]:
        """The batches of `key`'s hidden companions for `batch`: sample ids (`new_ids`: only
        new samples get ids; a replaced one keeps its own), shapes and infos, serialized for
        items from `start` (None: appended)."""
        eng = self._engine(key)
        out: Dict[str, SerializedBatch] = {}
        for hkey, link in (eng.meta.links or {}).items():
            if hkey not in self.meta.tensors:
                continue
            kind = link.get("extend")
            if kind == "extend_id" and new_ids:
                # random from the OS per batch (forked writers never share ids), about one
                # byte each in an lz4 chunk (sample_ids.py)
                ids = new_sample_ids(batch.num_samples).reshape(-1, 1)
                out[hkey] = self._serialize(hkey, ids)
            elif kind in ("extend_shape", "extend_len"):
                shapes = batch.real_shapes if batch.real_shapes is not None else batch.shapes
                out[hkey] = self._serialize(hkey, np.ascontiguousarray(shapes, dtype=np.int64), start=start)
            elif kind == "extend_info":
                infos = batch.infos if batch.infos else [{} for _ in range(batch.num_items)]
                out[hkey] = self._serialize(hkey, infos, start=start)
        return out

    def _extend_tensors(self, values: Dict[str, Any], progressbar: bool = False) -> None:
        st = self._state
        with st.lock:
            # 1. serialize (and so validate) everything before touching any state
            batches: List[Tuple[str, SerializedBatch]] = []
            null_writes = []
            for key, vals in values.items():
                vals, nw = nulls.split(self, key, vals)  # nulls: placeholders + validity rows
                b = self._serialize(key, vals)
                batches.append((key, b))
                batches.extend(self._hidden_batches(key, b, vals).items())
                if nw is not None:
                    null_writes.append((nw, self._engine(key).num_samples))
            # 2. apply: in-memory only, cannot fail on bad input
            for key, b in batches:
                self._engine(key).extend(b)
            for nw, before in null_writes:
                nulls.apply_extend(self, nw, before)
            self._after_write()

    def _after_write(self) -> None:
        st = self._state
        staged = sum(e.staged_nbytes() for e in st.engines.values())
        if staged > STAGED_BYTES_LIMIT:
            for e in st.engines.values():
                e.write_chunks()
        self._autoflush()

    def _update(self, key: str, items: List[int], values: List[Any]) -> None:
        self._check_writable_view()
        st = self._state
        with st.lock:
            values, nw = nulls.split(self, key, values)
            st.with_depth += 1  # the data and its validity rows in one flush
            try:
                self._update_values(key, items, values)
            finally:
                st.with_depth -= 1
            nulls.apply_update(self, nw, items)
            self._after_write()

    def _update_values(self, key: str, items: List[int], values: List[Any]) -> None:
        st = self._state
        with st.lock:
            eng = self._engine(key)
            if (len(items) > 1 or isinstance(values, np.ndarray)) and eng.seq is None:
                self._update_many(key, items, values)
                return
            prepared = []
            for item, value in zip(items, values):
                if eng.seq is not None:
                    raise LakeFormatError(f"tensor {eng.meta.name!r}: replace a whole sequence by popping and appending")
                b = self._serialize(key, [value], start=item)
                prepared.append((item, b, self._hidden_batches(key, b, start=item, new_ids=False)))
            for item, b, hidden in prepared:
                eng.update_item(item, b)
                eng.commit_diff.update_data(item)
                for hkey, hb in hidden.items():
                    self._engine(hkey).update_item(item, hb)
            self._after_write()

    def _pop_tensor(self, key: str, index: Any) -> None:
        self._check_writable_view()
        st = self._state
        if isinstance(index, (list, tuple, np.ndarray)):  # deeplake's Tensor.pop([i, j, ...])
            with st.lock:
                eng = self._engine(key)
                idx = normalize_pop_indices(index, eng.num_samples, f"tensor {eng.meta.name!r}")
                self._pop_tensor_many(key, idx)
                self._after_write()
            return
        with st.lock:
            eng = self._engine(key)
            n = eng.num_samples
            if index < 0:
                index += n
            if not 0 <= index < n:
                raise IndexError(f"pop index {index} out of range for tensor {eng.meta.name!r} of length {n}")
            sample_id = self._sample_id(key, index)
            # hidden tensors linked with flatten_sequence hold one row per item of a sequence
            item_range = eng.seq.item_ranges(np.array([index])) if eng.seq is not None else None
            eng.pop_sample(index, sample_id)
            for hkey in (eng.meta.links or {}):
                if hkey in self.meta.tensors:
                    h = self._engine(hkey)
                    if item_range is not None and eng.meta.links[hkey].get("flatten_sequence"):
                        for item in range(int(item_range[1][0]) - 1, int(item_range[0][0]) - 1, -1):
                            if item < h.num_samples:
                                h.pop_sample(item, None)
                    elif h.num_samples > index:
                        h.pop_sample(index, None)
            nulls.pop_rows(self, eng, np.array([index]))
            self._after_write()

    def _sample_id(self, key: str, index: int) -> Optional[int]:
        eng = self._engine(key)
        for hkey, link in (eng.meta.links or {}).items():
            if link.get("extend") == "extend_id" and hkey in self.meta.tensors:
                h = self._engine(hkey)
                if h.num_samples > index:
                    return int(Tensor(hkey, hkey, self, Index(index)).numpy().reshape(-1)[0])
        return None

    def pop(self, index: Optional[Union[int, List[int], np.ndarray]] = None) -> None:
        """Remove sample `index` (default: the last) from every tensor; a list of indices
        removes them all at once (see `delete_rows`)."""
        self._check_writable_view()
        if isinstance(index, (list, tuple, np.ndarray)):
            self.delete_rows(index)
            return
        if index is None:
            index = len(self) - 1
        with self._state.lock:
            for t in self._visible_full_tensors():
                if index < t.num_samples:
                    self._pop_tensor(t.key, index)

    def delete_rows(self, indices: Union[List[int], np.ndarray]) -> None:
        """Remove the samples at `indices` from every tensor (hidden ones included), each
        affected chunk rewritten once, in one flush (outside a `with` block). As deeplake's
        `pop` of a list: duplicates raise `DuplicateIndexError` (a ValueError), negative or
        out-of-range indices `IndexOutOfRangeError`; a tensor shorter than an index keeps
        its samples there.

        >>> ds.delete_rows([0, 5, 7])  # doctest: +SKIP
        """
        self._check_writable_view()
        st = self._state
        with st.lock:
            idx = normalize_pop_indices(indices, self.max_len, f"dataset {self.path!r}")
            if not len(idx):
                return
            for t in self._visible_full_tensors():
                sel = idx[: int(np.searchsorted(idx, t.num_samples))]
                if len(sel):
                    self._pop_tensor_many(t.key, sel)
            self._after_write()

    def _pop_tensor_many(self, key: str, idx: np.ndarray) -> None:
        """Pop the samples `idx` (sorted, unique, in range) of one tensor and its hidden
        tensors; the caller flushes."""
        eng = self._engine(key)
        ids = self._sample_ids(key, idx)
        if ids is False:  # the id tensor is shorter than some index (after a crash): one by one
            for i in idx[::-1].tolist():
                self._pop_tensor(key, int(i))
            return
        item_range = eng.seq.item_ranges(idx) if eng.seq is not None else None
        eng.pop_samples(idx, ids)
        for hkey, link in (eng.meta.links or {}).items():
            if hkey not in self.meta.tensors:
                continue
            h = self._engine(hkey)
            if item_range is not None and link.get("flatten_sequence"):
                items = sequence_items(*item_range)
            else:
                items = idx
            items = items[: int(np.searchsorted(items, h.num_samples))]
            h.pop_samples(items, None)
        nulls.pop_rows(self, eng, idx)

    def _sample_ids(self, key: str, idx: np.ndarray) -> Any:
        """The ids of samples `idx` from the hidden id tensor: None when there is none, False
        when it does not reach every index."""
        eng = self._engine(key)
        for hkey, link in (eng.meta.links or {}).items():
            if link.get("extend") == "extend_id" and hkey in self.meta.tensors:
                h = self._engine(hkey)
                if h.num_samples <= int(idx[-1]):
                    return False if h.num_samples > int(idx[0]) else None
                return np.asarray(Tensor(hkey, hkey, self, Index(idx)).numpy()).reshape(-1)
        return None

    def _update_many(self, key: str, items: List[int], values: List[Any]) -> None:
        """Replace many samples of one tensor (and its hidden shape and info tensors), each
        affected chunk rewritten once; a repeated index takes its last value."""
        eng = self._engine(key)
        uniq, last = dedup_last(np.asarray(items, dtype=np.int64))
        vals = values[last] if isinstance(values, np.ndarray) else [values[int(j)] for j in last]
        b = self._serialize(key, vals, start=int(uniq[0]))
        hidden = self._hidden_batches(key, b, start=int(uniq[0]), new_ids=False)
        eng.update_items(uniq, b)
        cd = eng.commit_diff
        lo, hi = cd.data_added
        outside = uniq[(uniq < lo) | (uniq >= hi)]
        if len(outside):
            cd.add_updated(outside)  # sorted positions, kept as an array
            cd.dirty = True
        for hkey, hb in hidden.items():
            self._engine(hkey).update_items(uniq, hb)
        self._after_write()

    # ==========================================================================================
    # flushing
    def __enter__(self) -> "Dataset":
        self._state.with_depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._state.with_depth -= 1
        if self._state.with_depth == 0 and not self._state.read_only:
            self.flush()

    def _autoflush(self) -> None:
        if self._state.with_depth == 0:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered, all of it or none of it as far as a reader can tell.

        Tensors are written first (chunks, encoders, meta; hidden tensors before their
        parents), then the dataset's own objects. A flush that only grows tensors writes a
        marker holding their lengths before it first; one that edits (update, pop, rename,
        delete, info) writes a journal of every object it will overwrite (edited chunks go
        under new names, so no chunk a published index points at is overwritten). A crash
        before the marker is removed leaves a dataset that opens at the state before the
        flush. Chunks and tensor folders the flush stopped using are deleted last."""
        st = self._state
        if st.read_only:
            return
        with st.lock:
            c = st.vs.commit_id
            marker = keys.flush_marker_key(c)
            rolled_back = self._settle_crashed_flush()
            edited = st.schema_edited or st.dropped or any(e.edited for e in st.engines.values())
            grown: Dict[str, int] = {}
            journaled = False
            if edited:
                saved_keys = [k for e in st.engines.values() if e.is_dirty for k in e.published_keys()]
                saved_keys += [keys.dataset_meta_key(c), keys.dataset_info_key(c), keys.dataset_diff_key(c), CS.dataset_side_key(c)]
                if st.link_creds.dirty:
                    saved_keys.append(keys.linked_creds_key())
                saved = st.storage.get_many(saved_keys, missing_ok=True)
                st.storage.set(marker, _encode_journal(saved, rolled_back))
                journaled = True
            else:
                # Several tensors grow in one flush: a marker holding their lengths before it
                # makes the flush all-or-nothing (a reader finding it rolls them back to it).
                # A crashed flush's marker stays true until this one is published: its lengths
                # join this marker's.
                grown = {e.key: e.flushed_items for e in st.engines.values() if e.meta.length != e.flushed_items}
                grown = {**rolled_back, **grown}
                if len(grown) > 1 or rolled_back:
                    st.storage.set(marker, json.dumps({"lengths": grown}).encode())
            # hidden tensors before their parents: a crash leaves them ahead, never behind
            engines = sorted(st.engines.values(), key=lambda e: not e.meta.hidden)
            for eng in engines:
                eng.flush()
            ds_objects: Dict[str, bytes] = {}
            if st.meta_dirty:
                ds_objects[CS.DATASET_FILES[0]] = st.meta.to_bytes()
            if st.info_dirty:
                ds_objects[CS.DATASET_FILES[1]] = json.dumps(st.info, sort_keys=True, indent=4).encode()
            if st.diff.dirty:
                ds_objects[CS.DATASET_FILES[2]] = st.diff.to_bytes()
            if ds_objects:
                # their checksums first, the old ones still accepted: see lakeformat.core.checksums
                st.storage.set(CS.dataset_side_key(c), st.sums.side_file_for_flush(ds_objects))
            for f, k in zip(CS.DATASET_FILES, CS.dataset_object_keys(c)):
                if f in ds_objects:
                    st.storage.set(k, ds_objects[f])
            st.meta_dirty = st.info_dirty = False
            st.diff.dirty = False
            if st.link_creds.dirty:
                st.storage.set(keys.linked_creds_key(), st.link_creds.to_bytes())
                st.link_creds.dirty = False
            if st.tree_dirty:
                from lakeformat.version_control.api import save_tree

                save_tree(self)
                st.tree_dirty = False
            if journaled or len(grown) > 1 or rolled_back:
                st.storage.delete(marker)  # the commit point of the flush
            st.schema_edited = False
            # garbage from here on: a crash leaves unreferenced files, never a broken dataset
            for eng in engines:
                for k in eng.take_obsolete_chunks():
                    st.storage.delete(k)
            for prefix in st.dropped:
                st.storage.delete_prefix(prefix)
            st.dropped = []
            st.storage.flush()

    def _settle_crashed_flush(self) -> Dict[str, int]:
        """Before a flush: put back at rest what a crashed flush's journal saved (the writer
        holds the branch lock by now), or open (and so clamp) the tensors its length marker
        names; returns those lengths, which the new flush's marker must keep."""
        st = self._state
        marker = keys.flush_marker_key(st.vs.commit_id)
        if st.journal is not None:
            base = st.base_storage
            for k, v in st.journal.items():
                if v is None:
                    base.delete(k)
                else:
                    base.set(k, v)
            base.delete(marker)
            st.journal = None
            st.storage = st.vs.storage = base
            for e in st.engines.values():
                e.storage = base
        rolled_back = {k: int(v) for k, v in st.rollback.items()}
        if rolled_back:
            for key in rolled_back:
                if key in st.meta.tensors:
                    self._engine(key)  # opening clamps it
            for e in st.engines.values():
                if e.key in rolled_back:
                    e.meta_dirty = e.encoders_dirty = True  # written back clamped
            st.rollback = {}
        return rolled_back

    def close(self) -> None:
        """Flush, then give back this handle's branch lock: another handle, in this process or
        another, may then write the branch. The handle stays open for reading only."""
        from lakeformat.version_control.locks import release_handle

        self.flush()
        release_handle(self)
        self._state.read_only = True

    # ==========================================================================================
    # info, creds, summary
    @property
    def info(self) -> "DatasetInfo":
        return DatasetInfo(self)

    def add_creds_key(self, creds_key: str, managed: bool = False) -> None:
        self._check_writable()
        self._state.link_creds.add(creds_key, managed)
        self._autoflush()

    def populate_creds(self, creds_key: str, creds: Dict[str, Any]) -> None:
        self._state.link_creds.populate(creds_key, creds)

    def get_creds_keys(self) -> List[str]:
        return list(self._state.link_creds.creds_keys)

    def summary(self, print_out: bool = True) -> str:
        rows = [("tensor", "htype", "type", "shape", "dtype", "compression")]
        for name, t in self.tensors.items():
            n, h, shape, dt, sc, cc = Tensor(t.name, t.key, self, self.index).summary_row()
            lo, hi = t.shape_interval
            dims = ", ".join(str(a) if a == b else f"{a}:{b}" for a, b in zip(lo, hi))
            shape = f"({len(t)}, {dims})" if dims else f"({len(t)},)"
            comp = sc if sc != "None" else (cc if cc != "None" else "None")
            # the logical type (lakeformat.types), and whether the column has had nulls
            logical = t.logical_type + (", nullable" if t.nullable else "")
            rows.append((name, h, logical, shape, dt, comp))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [f"Dataset(path={self.path!r}, tensors={list(self.tensors)})", ""]
        for k, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        text = "\n".join(lines)
        if print_out:
            print(text)
        return text

    def __repr__(self) -> str:
        v = f", index={self.index.samples if isinstance(self.index.samples, int) else ('[' + str(len(self)) + ' samples]') if self.is_view else ''}" if self.is_view else ""
        return f"Dataset(path={self.path!r}{v}, tensors={list(self.tensors)})"

    def numpy(self, aslist: bool = False) -> Dict[str, Any]:
        return {name: t.numpy(aslist=aslist) for name, t in self.tensors.items()}

    # ==========================================================================================
    # version control (lakeformat.version_control.api holds the logic)
    @property
    def commit_id(self) -> Optional[str]:
        from lakeformat.version_control import api

        return api.commit_id(self)

    @property
    def pending_commit_id(self) -> str:
        return self._state.vs.commit_id

    @property
    def branch(self) -> Optional[str]:
        return self._state.vs.branch

    @property
    def branches(self) -> List[str]:
        return list(self._state.vs.tree.branches)

    @property
    def has_head_changes(self) -> bool:
        from lakeformat.version_control import api

        return api.has_head_changes(self)

    def commit(self, message: Optional[str] = None, allow_empty: bool = False) -> str:
        from lakeformat.version_control import api

        return api.commit(self, message, allow_empty)

    def checkout(self, address: str, create: bool = False) -> Optional[str]:
        from lakeformat.version_control import api

        return api.checkout(self, address, create)

    def log(self) -> List[Dict[str, Any]]:
        from lakeformat.version_control import api

        return api.log(self)

    def reset(self) -> None:
        from lakeformat.version_control import api

        api.reset(self)

    def delete_branch(self, name: str) -> None:
        from lakeformat.version_control import api

        api.delete_branch(self, name)

    def diff(self, id_1: Optional[str] = None, id_2: Optional[str] = None, as_dict: bool = False) -> Any:
        from lakeformat.version_control import diff as vc_diff

        return vc_diff.diff(self, id_1, id_2, as_dict)

    def merge(self, target_id: str, conflict_resolution: Optional[str] = None, delete_removed_tensors: bool = False, force: bool = False) -> Optional[str]:
        """Merge a branch or commit into the current branch; returns the merge commit's id."""
        from lakeformat.version_control import merge as vc_merge

        return vc_merge.merge(self, target_id, conflict_resolution, delete_removed_tensors, force)

    # ==========================================================================================
    # loaders
    def pytorch(self, *args: Any, **kwargs: Any) -> Any:
        from loaders import dataset_pytorch

        return dataset_pytorch(self, *args, **kwargs)

    def query(self, text: str, params: Optional[Sequence[Any]] = None) -> "Dataset":
        """The view over the rows a TQL query selects, in the query's order (docs/tql.md).
        Computed SELECT columns come with `lakeformat.tql.run(ds, text)`.

        >>> ds.query("SELECT * WHERE labels == 'cat' ORDER BY score DESC LIMIT 10")  # doctest: +SKIP
        """
        from lakeformat import tql  # imported on first use: TQL is not needed to open a dataset

        return tql.run(self, text, params=params).view

    def explain(self, text: str) -> str:
        """The plan of a TQL query on this dataset: tensors read, filter, order, limit."""
        from lakeformat import tql

        return tql.explain(self, text)


class DatasetInfo(dict):
    def __init__(self, ds: Dataset):
        super().__init__(ds._state.info)
        self._ds = ds

    def _save(self) -> None:
        self._ds._check_writable()
        st = self._ds._state
        st.info = dict(self)
        st.info_dirty = True
        st.schema_edited = True  # the info and the diff change together
        st.diff.modify_info()
        self._ds._autoflush()

    def __setitem__(self, k: str, v: Any) -> None:
        super().__setitem__(k, v)
        self._save()

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(*args, **kwargs)
        self._save()

    def __getattr__(self, k: str) -> Any:
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None
