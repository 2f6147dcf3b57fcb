"""`Session`: one open dataset at one commit, shared by every handle and view of it.

It owns what a `Dataset` handle works on: the store (read through a journal after a crashed
flush), the version state, the dataset's meta, info and diff, the open chunk engines, what is
dirty, and the flush that publishes it all or nothing. Handles (`Dataset`, `Tensor`) only add
an index and a group; the version-control verbs, the loader and the connectors use the public
methods here instead of the handle's internals.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any

import numpy as np

from lakeformat.core import checksums as CS
from lakeformat.core import keys
from lakeformat.core.chunk_engine import ChunkEngine
from lakeformat.core.encoders import ChunkIdEncoder
from lakeformat.core.journal import JournalOverlay, decode_journal, encode_journal
from lakeformat.core.links import LinkCreds, LinkResolver
from lakeformat.core.meta import DatasetMeta, TensorMeta
from lakeformat.core.sample_ids import new_sample_ids
from lakeformat.core.serialize import Context, SerializedBatch, Serializer
from lakeformat.core.version_objects import DatasetDiff
from lakeformat.core.version_state import VersionState
from lakeformat.core.version_tree import update_tree
from lakeformat.errors import TensorDoesNotExistError
from lakeformat.storage import StorageProvider

logger = logging.getLogger(__name__)

Stored = dict[str, bytes | None]


class Session:
    """The state of an open dataset. `storage` is the store (a `JournalOverlay` of it while a
    crashed flush is unsettled), `base_storage` the store itself."""

    def __init__(self, storage: StorageProvider, version_state: VersionState, read_only: bool, path: str,
                 prefetched: Stored | None = None):
        self.storage: StorageProvider = storage
        self.base_storage: StorageProvider = storage
        self.journal: Stored | None = None
        self.version_state = version_state
        self.read_only = read_only
        self.path = path
        self.engines: dict[str, ChunkEngine] = {}
        self.dropped: list[str] = []  # folders of deleted tensors, removed once the deletion is published
        self.schema_edited = False  # a tensor renamed or deleted, or the info changed, since the last flush
        self.preloaded: Stored = {}  # tensor metadata read ahead (read_metadata)
        self.hidden_parents: dict[str, tuple[ChunkEngine, dict[str, Any]]] = {}  # hidden tensor -> parent, link, until opened
        self.lock = threading.RLock()
        self.with_depth = 0
        self.link_creds = LinkCreds.load(storage, prefetched)
        self.links = LinkResolver(self.link_creds)
        self.rollback: dict[str, int] = {}
        self.meta = DatasetMeta()
        self.meta_dirty = self.info_dirty = self.tree_dirty = False
        self.info: dict[str, Any] = {}
        self.diff = DatasetDiff()
        self.reload(version_state.commit_id, prefetched)

    @property
    def vs(self) -> VersionState:
        """`version_state` (the name the format's modules use)."""
        return self.version_state

    @property
    def writable(self) -> bool:
        """Opened for writing and at a branch head."""
        return not self.read_only and self.version_state.is_head

    # ---- opening ---------------------------------------------------------------------------------
    @staticmethod
    def opening_keys(commit_id: str) -> list[str]:
        """The dataset-level objects `reload` reads for a commit."""
        return [keys.dataset_meta_key(commit_id), keys.dataset_info_key(commit_id),
                keys.dataset_diff_key(commit_id), keys.flush_marker_key(commit_id)]

    def reload(self, commit_id: str | None = None, prefetched: Stored | None = None) -> None:
        """Drop every open engine and unflushed change, and load the dataset at `commit_id`
        (default: the current one) as stored: through the journal of a crashed flush, if one
        is there, as if that flush never began."""
        vs = self.version_state
        commit_id = vs.commit_id if commit_id is None else commit_id
        vs.commit_id = commit_id
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
        self.rollback = {}
        marker = got[fk]
        if marker is not None:
            # a marker left by a flush that did not finish: its tensors grew only (roll them
            # back to the lengths it holds), or it holds a journal of every object the flush
            # overwrote: read through it, as if the flush never began
            self.rollback, self.journal = decode_journal(marker)
            if self.journal is not None:
                CS.accept_rewritten_chunks(self.base_storage, self.journal)
                self._use_storage(JournalOverlay(self.base_storage, self.journal))
                got = {**got, **{k: self.journal[k] for k in (mk, ik, dk) if k in self.journal}}
        raw_meta, raw_info, raw_diff = got[mk], got[ik], got[dk]
        self.meta = DatasetMeta.from_bytes(raw_meta, mk) if raw_meta is not None else DatasetMeta()
        self.meta_dirty = False
        self.info = json.loads(raw_info) if raw_info is not None else {}
        self.info_dirty = False
        self.diff = DatasetDiff.from_bytes(raw_diff) if raw_diff is not None else DatasetDiff()
        self.tree_dirty = False
        self.sums = CS.DatasetChecksums({f: got[k] for f, k in zip(CS.DATASET_FILES, (mk, ik, dk))})

    def _use_storage(self, storage: StorageProvider) -> None:
        self.storage = storage
        self.version_state.storage = storage
        self.version_state.forget_chunk_sets()

    # ---- engines -----------------------------------------------------------------------------------
    def engine(self, key: str) -> ChunkEngine:
        """The chunk engine of tensor `key`, opened (and its hidden tensors aligned to it) on
        first use."""
        eng = self.engines.get(key)
        if eng is None:
            with self.lock:
                eng = self.engines.get(key)
                if eng is None:
                    eng = self._open_engine(key, self.preloaded)
                    parent = self.hidden_parents.pop(key, None)
                    if parent is not None:
                        self._clamp_hidden(eng, *parent)
                    self._align_hidden(eng)
        return eng

    def open_engines(self) -> dict[str, ChunkEngine]:
        """The engines opened so far, by tensor key (a copy)."""
        return dict(self.engines)

    def add_engine(self, eng: ChunkEngine) -> None:
        """Adopt the engine of a tensor made in this session (create_tensor)."""
        self.engines[eng.key] = eng

    def forget_engine(self, key: str) -> None:
        """Drop the open engine of `key` (it reopens from the store on next use)."""
        self.engines.pop(key, None)

    def _open_engine(self, key: str, stored: Stored) -> ChunkEngine:
        eng = ChunkEngine(key, self.storage, self.version_state, stored=stored or None)
        self.engines[key] = eng
        for k in ChunkEngine.stored_keys(key, self.version_state.commit_id) + [keys.tensor_info_key(key, self.version_state.commit_id)]:
            self.preloaded.pop(k, None)  # read-ahead serves one opening only
        if key in self.rollback:
            eng.clamp(int(self.rollback[key]))
        return eng

    @staticmethod
    def _clamp_hidden(h: ChunkEngine, parent: ChunkEngine, link: dict[str, Any]) -> None:
        want = parent.num_items if link.get("flatten_sequence") else parent.num_samples
        if h.num_samples > want and h.seq is None:
            h.clamp(want)

    def _align_hidden(self, eng: ChunkEngine) -> None:
        """Hidden tensors are flushed before their parent; after a crash one may be ahead of
        it. The parent's meta is the commit point: clamp them to it. A read-only dataset
        opens them when they are first read (a reader rarely needs them); a writable one
        now, since every write touches them."""
        links = eng.meta.links or {}
        hidden = [h for h in links if h in self.meta.tensors and h not in self.engines]
        if not self.writable:
            for h in hidden:
                self.hidden_parents[h] = (eng, links[h])
            return
        stored = dict(self.preloaded)
        c = self.version_state.commit_id
        wanted = [h for h in hidden if any(k not in stored for k in ChunkEngine.stored_keys(h, c))]
        if wanted:
            stored.update(self.read_metadata(wanted))  # one round trip
        for hkey in hidden:
            self._clamp_hidden(self._open_engine(hkey, stored), eng, links[hkey])

    def read_metadata(self, tensor_keys: list[str], storage: StorageProvider | None = None) -> Stored:
        """What these tensors' engines read when they open, in as few round trips as their
        metas allow: metas, chunk ids and tiles in one; the encoders of the sequence and
        link tensors among them in a second, only if there are any. `storage`: read through
        this instead of the session's store (the same objects; a loader's faster reader)."""
        c = self.version_state.commit_id
        storage = storage if storage is not None else self.storage
        # the infos too: whether a tensor is nullable (and more) is there, and a reader asks soon
        got = storage.get_many([x for k in tensor_keys for x in ChunkEngine.stored_keys(k, c) + [keys.tensor_info_key(k, c)]],
                                    missing_ok=True)
        extra: list[str] = []
        for k in tensor_keys:
            raw = got.get(keys.tensor_meta_key(k, c))
            try:
                meta = TensorMeta.from_bytes(raw, k) if raw is not None else None
            except Exception:  # noqa: BLE001 - the engine reports a bad meta when it opens
                meta = None
            if meta is not None:
                extra += ChunkEngine.index_keys(k, c, meta)
        if extra:
            got.update(storage.get_many(extra, missing_ok=True))
        return got

    def preload(self, tensor_keys: list[str], storage: StorageProvider | None = None) -> None:
        """Read ahead the metadata of these tensors (those not open yet) in one batched call
        (through `storage` if given, see `read_metadata`)."""
        todo = [k for k in tensor_keys if k not in self.engines]
        if todo:
            with self.lock:
                self.preloaded.update(self.read_metadata(todo, storage))

    # ---- serializing samples -----------------------------------------------------------------------
    def serialize(self, key: str, values: Any, start: int | None = None) -> SerializedBatch:
        """`values` for tensor `key` as one batch for its engine (validated, nothing changed
        yet); `start`: the index of the first (None: appended after the last sample)."""
        eng = self.engine(key)
        m = eng.meta
        ctx = Context(
            name=m.name or key,
            start_index=eng.num_samples if start is None else start,
            class_names=list(eng.info.get("class_names", []) or []),
            class_names_fixed=bool(m.d.get("class_names_fixed", False)),
            creds_lookup=self.link_creds.encode,
            shape_of_link=self.links.shape_of,
            tiling_threshold=eng.tiling_threshold,
        )
        return Serializer(m, ctx).serialize(values)

    def hidden_batches(self, key: str, batch: SerializedBatch, start: int | None = None,
                       new_ids: bool = True) -> dict[str, SerializedBatch]:
        """The batches of `key`'s hidden companions for `batch`: sample ids (`new_ids`: only
        new samples get ids; a replaced one keeps its own), shapes and infos, serialized for
        items from `start` (None: appended)."""
        eng = self.engine(key)
        out: dict[str, SerializedBatch] = {}
        for hkey, link in (eng.meta.links or {}).items():
            if hkey not in self.meta.tensors:
                continue
            kind = link.get("extend")
            if kind == "extend_id" and new_ids:
                # random from the OS per batch (forked writers never share ids), about half a
                # byte each in an lz4 chunk (sample_ids.py)
                ids = new_sample_ids(batch.num_samples).reshape(-1, 1)
                out[hkey] = self.serialize(hkey, ids)
            elif kind in ("extend_shape", "extend_len"):
                shapes = batch.real_shapes if batch.real_shapes is not None else batch.shapes
                out[hkey] = self.serialize(hkey, np.ascontiguousarray(shapes, dtype=np.int64), start=start)
            elif kind == "extend_info":
                infos = batch.infos if batch.infos else [{} for _ in range(batch.num_items)]
                out[hkey] = self.serialize(hkey, infos, start=start)
        return out

    # ---- dirty state ---------------------------------------------------------------------------------
    def mark_meta_dirty(self) -> None:
        """The dataset meta changed: the next flush writes it."""
        self.meta_dirty = True

    def mark_tree_dirty(self) -> None:
        """The in-memory version tree holds something to publish (dataset creation)."""
        self.tree_dirty = True

    @property
    def has_changes(self) -> bool:
        """Whether this version holds changes, flushed or not, that no commit holds yet."""
        if self.meta_dirty or self.info_dirty or self.diff.renamed or self.diff.deleted or self.diff.info_updated:
            return True
        for key in self.meta.tensors:
            eng = self.engine(key)
            if eng.is_dirty or eng.commit_diff.has_changes:
                return True
        return False

    # ---- flushing ------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything buffered, all of it or none of it as far as a reader can tell.

        Tensors are written first (chunks, encoders, meta; hidden tensors before their
        parents), then the dataset's own objects. A flush that only grows tensors writes a
        marker holding their lengths before it first; one that edits (update, pop, rename,
        delete, info) writes a journal of every object it will overwrite (edited chunks go
        under new names, so no chunk a published index points at is overwritten). A crash
        before the marker is removed leaves a dataset that opens at the state before the
        flush. Chunks and tensor folders the flush stopped using are deleted last."""
        if self.read_only:
            return
        with self.lock:
            c = self.version_state.commit_id
            marker = keys.flush_marker_key(c)
            rolled_back = self._settle_crashed_flush()
            edited = self.schema_edited or self.dropped or any(e.edited for e in self.engines.values())
            grown: dict[str, int] = {}
            journaled = False
            if edited:
                saved_keys = [k for e in self.engines.values() if e.is_dirty for k in e.published_keys()]
                saved_keys += [keys.dataset_meta_key(c), keys.dataset_info_key(c), keys.dataset_diff_key(c), CS.dataset_side_key(c)]
                if self.link_creds.dirty:
                    saved_keys.append(keys.linked_creds_key())
                saved = self.storage.get_many(saved_keys, missing_ok=True)
                self.storage.set(marker, encode_journal(saved, rolled_back))
                journaled = True
            else:
                # Several tensors grow in one flush: a marker holding their lengths before it
                # makes the flush all-or-nothing (a reader finding it rolls them back to it).
                # A crashed flush's marker stays true until this one is published: its lengths
                # join this marker's.
                grown = {e.key: e.flushed_items for e in self.engines.values() if e.meta.length != e.flushed_items}
                grown = {**rolled_back, **grown}
                if len(grown) > 1 or rolled_back:
                    self.storage.set(marker, json.dumps({"lengths": grown}).encode())
            # hidden tensors before their parents: a crash leaves them ahead, never behind
            engines = sorted(self.engines.values(), key=lambda e: not e.meta.hidden)
            for eng in engines:
                eng.flush()
            self._write_dataset_objects(c)
            if journaled or len(grown) > 1 or rolled_back:
                self.storage.delete(marker)  # the commit point of the flush
            self.schema_edited = False
            # garbage from here on: a crash leaves unreferenced files, never a broken dataset
            for eng in engines:
                for k in eng.take_obsolete_chunks():
                    self.storage.delete(k)
            for prefix in self.dropped:
                self.storage.delete_prefix(prefix)
            self.dropped = []
            self.storage.flush()

    def _write_dataset_objects(self, c: str) -> None:
        """The dataset meta, info and diff that changed (their checksums first), the link
        creds, and the version tree when it holds something new."""
        ds_objects: dict[str, bytes] = {}
        if self.meta_dirty:
            ds_objects[CS.DATASET_FILES[0]] = self.meta.to_bytes()
        if self.info_dirty:
            ds_objects[CS.DATASET_FILES[1]] = json.dumps(self.info, sort_keys=True, indent=4).encode()
        if self.diff.dirty:
            ds_objects[CS.DATASET_FILES[2]] = self.diff.to_bytes()
        if ds_objects:
            # their checksums first, the old ones still accepted: see lakeformat.core.checksums
            self.storage.set(CS.dataset_side_key(c), self.sums.side_file_for_flush(ds_objects))
        for f, k in zip(CS.DATASET_FILES, CS.dataset_object_keys(c)):
            if f in ds_objects:
                self.storage.set(k, ds_objects[f])
        self.meta_dirty = self.info_dirty = False
        self.diff.dirty = False
        if self.link_creds.dirty:
            self.storage.set(keys.linked_creds_key(), self.link_creds.to_bytes())
            self.link_creds.dirty = False
        if self.tree_dirty:
            self.save_tree()
            self.tree_dirty = False

    def save_tree(self) -> None:
        """Write the in-memory version tree, unioned into whatever is stored."""
        mine = self.version_state.tree
        self.version_state.tree = update_tree(self.storage, lambda t: t.merge_from(mine))

    def _settle_crashed_flush(self) -> dict[str, int]:
        """Before a flush: put back at rest what a crashed flush's journal saved (the writer
        holds the branch lock by now), or open (and so clamp) the tensors its length marker
        names; returns those lengths, which the new flush's marker must keep."""
        marker = keys.flush_marker_key(self.version_state.commit_id)
        if self.journal is not None:
            base = self.base_storage
            for k, v in self.journal.items():
                if v is None:
                    base.delete(k)
                else:
                    base.set(k, v)
            base.delete(marker)
            self.journal = None
            self.storage = self.version_state.storage = base
            for e in self.engines.values():
                e.storage = base
        rolled_back = {k: int(v) for k, v in self.rollback.items()}
        if rolled_back:
            for key in rolled_back:
                if key in self.meta.tensors:
                    self.engine(key)  # opening clamps it
            for e in self.engines.values():
                if e.key in rolled_back:
                    e.meta_dirty = e.encoders_dirty = True  # written back clamped
            self.rollback = {}
        return rolled_back

    # ---- truncation ------------------------------------------------------------------------------------
    def truncate(self, lengths: dict[str, int]) -> int:
        """Cut tensors (by tensor key, hidden ones included when named) back to their
        lengths; returns how many were longer, and flushes if any was. For the tail a killed
        flush left beyond a recorded state: the tensor metas are the commit points, so
        lowering a meta's length (and dropping the chunks wholly beyond it) is all it takes;
        the format's reader and appender ignore samples past the length. Sequence tensors
        are left as they are."""
        unknown = [k for k in lengths if k not in self.meta.tensors]
        if unknown:
            raise TensorDoesNotExistError(f"cannot truncate {unknown} of dataset {self.path!r}: no such tensors")
        cut = 0
        with self.lock:
            for key, length in lengths.items():
                eng = self.engine(key)
                if eng.seq is not None or eng.num_items <= length:
                    continue
                cut += 1
                _truncate_engine(eng, int(length))
        if cut:
            self.flush()
        return cut


def _truncate_engine(eng: ChunkEngine, length: int) -> None:
    eng.builder = None
    before = [ChunkIdEncoder.name_of(int(r[0])) for r in eng.chunk_ids.rows]
    eng.set_meta(length=length)
    eng.reconcile()
    after = {ChunkIdEncoder.name_of(int(r[0])) for r in eng.chunk_ids.rows}
    for name in before:
        if name not in after:
            eng.forget_chunk(name)
    if eng.creds is not None:
        eng.creds.set_values(eng.creds.all_values()[:length])
    cd = eng.commit_diff
    cd.data_added = [min(cd.data_added[0], length), min(cd.data_added[1], length)]
    cd.data_updated = {i for i in cd.data_updated if i < length}
    cd.dirty = True
    eng.meta_dirty = eng.encoders_dirty = True
