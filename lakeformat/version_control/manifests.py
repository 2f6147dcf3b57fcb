"""Worker side of commit operations: write whole chunks, touch no meta, return a manifest.

A worker (another thread, process or machine) turns samples into chunks through the same
serializer and chunk builder the engine uses: it copies the target's metas into a scratch
dataset in memory, extends that (hidden id, shape and info tensors and null masks included),
then copies the scratch's chunks into the target's storage under the commit's folder. Chunk
ids are 64 random bits, so chunks of many workers never collide. Nothing the target's
readers follow points at them until `commit_operation` publishes the manifest; until then
(or when it is never published) they are unreferenced files that reads and `verify` skip.

>>> m = write_chunks("./lake/ds", ds.pending_commit_id, {"x": np.arange(10)})  # doctest: +SKIP
>>> commit_operation(ds, AppendChunks((m,)), read_version(ds))                    # doctest: +SKIP
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from lakeformat import constants as C
from lakeformat.core import checksums as CS
from lakeformat.core import keys
from lakeformat.core.encoders import ChunkIdEncoder, CredsEncoder, RangeEncoder, TileEncoder
from lakeformat.core.dataset import Dataset
from lakeformat.core.meta import loads
from lakeformat.core.session import Session
from lakeformat.core.version_state import VersionState
from lakeformat.core.version_tree import VersionTree
from lakeformat.errors import LakeFormatError
from lakeformat.storage import StorageProvider, storage_from_url
from lakeformat.storage.memory import MemoryStorage

# meta keys a manifest sets itself (the rest of what a write changes travels as meta_changes)
SHAPE_KEYS = ("length", "min_shape", "max_shape")


@dataclass(frozen=True)
class TensorChunks:
    """The chunks one worker wrote for one tensor (hidden ones too), positions counted from
    the worker's first item: `rows` are (chunk name, last item) as in a chunk-id encoder."""

    key: str
    rows: Tuple[Tuple[str, int], ...]
    crc32: Tuple[int, ...]  # of each chunk's stored bytes, in `rows` order
    nbytes: Tuple[int, ...]
    num_items: int  # items (a sequence's items, or samples)
    num_samples: int
    min_shape: Tuple[int, ...]
    max_shape: Tuple[int, ...]
    tiles: Tuple[Tuple[int, Tuple[int, ...], Tuple[int, ...]], ...] = ()  # (item, sample shape, tile shape)
    seq_lengths: Optional[Tuple[int, ...]] = None  # items per sample of a sequence tensor
    creds: Optional[Tuple[int, ...]] = None  # creds-key index per sample of a link tensor
    fingerprint: Tuple[Tuple[str, Any], ...] = ()  # meta facts the target must share
    meta_changes: Tuple[Tuple[str, Any, Any], ...] = ()  # (key, before, after) besides SHAPE_KEYS
    info_changes: Tuple[Tuple[str, Any, Any], ...] = ()  # (key, before, after) of tensor_info.json

    @property
    def names(self) -> List[str]:
        return [n for n, _ in self.rows]


@dataclass(frozen=True)
class ChunkManifest:
    """What one `write_chunks` call wrote: picklable, and JSON through `to_json`/`from_json`."""

    commit_id: str
    tensors: Tuple[TensorChunks, ...] = field(default_factory=tuple)
    num_rows: int = 0

    def tensor(self, key: str) -> Optional[TensorChunks]:
        return next((t for t in self.tensors if t.key == key), None)

    def chunk_keys(self) -> List[str]:
        """Every chunk object this manifest's worker wrote."""
        return [keys.chunk_key(t.key, n, self.commit_id) for t in self.tensors for n in t.names]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ChunkManifest":
        try:
            tensors = tuple(_tensor_chunks_from_dict(t) for t in d["tensors"])
            return cls(str(d["commit_id"]), tensors, int(d.get("num_rows", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise LakeFormatError(f"not a chunk manifest: {e!r}") from None

    @classmethod
    def from_json(cls, text: str) -> "ChunkManifest":
        return cls.from_dict(json.loads(text))


def as_tuple(v: Any) -> Any:
    return tuple(as_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v


def _tensor_chunks_from_dict(d: Mapping[str, Any]) -> TensorChunks:
    return TensorChunks(
        key=str(d["key"]),
        rows=tuple((str(n), int(last)) for n, last in d["rows"]),
        crc32=tuple(int(x) for x in d["crc32"]),
        nbytes=tuple(int(x) for x in d["nbytes"]),
        num_items=int(d["num_items"]),
        num_samples=int(d["num_samples"]),
        min_shape=as_tuple(d["min_shape"]),
        max_shape=as_tuple(d["max_shape"]),
        tiles=tuple((int(i), as_tuple(s), as_tuple(t)) for i, s, t in d.get("tiles", ())),
        seq_lengths=as_tuple(d["seq_lengths"]) if d.get("seq_lengths") is not None else None,
        creds=as_tuple(d["creds"]) if d.get("creds") is not None else None,
        fingerprint=tuple((str(k), as_tuple(v)) for k, v in d.get("fingerprint", ())),
        meta_changes=tuple((str(k), b, a) for k, b, a in d.get("meta_changes", ())),
        info_changes=tuple((str(k), b, a) for k, b, a in d.get("info_changes", ())),
    )


# meta keys whose difference makes a worker's chunks unreadable through the target's meta
FINGERPRINT_KEYS = ("htype", "sample_compression", "chunk_compression", "is_sequence", "is_link", "hidden")


def fingerprint_of(meta_doc: Mapping[str, Any]) -> Tuple[Tuple[str, Any], ...]:
    return tuple((k, as_tuple(meta_doc.get(k))) for k in FINGERPRINT_KEYS)


def _changes(before: Mapping[str, Any], after: Mapping[str, Any], skip: Tuple[str, ...] = ()) -> Tuple[Tuple[str, Any, Any], ...]:
    out = []
    for k in sorted(set(before) | set(after)):
        if k in skip:
            continue
        b, a = before.get(k), after.get(k)
        if b != a:
            out.append((k, b, a))
    return tuple(out)


def _scratch(storage: StorageProvider, commit_id: str) -> Tuple[Dataset, Dict[str, Dict[str, Any]], Dict[str, Dict[str, Any]]]:
    """A writable in-memory dataset with the target's tensors at `commit_id`, all empty, and
    the target's tensor metas and infos (by key) as read."""
    mk = keys.dataset_meta_key(commit_id)
    raw = storage.get_many([mk, keys.linked_creds_key()], missing_ok=True)
    dmeta_raw, creds_raw = raw[mk], raw[keys.linked_creds_key()]
    if dmeta_raw is None:
        raise LakeFormatError(f"no dataset meta at commit {commit_id!r} of {storage.root!r}: write chunks at a branch head that exists")
    tkeys: List[str] = list(loads(dmeta_raw, mk).get("tensors", []))
    wanted = [k for t in tkeys for k in (keys.tensor_meta_key(t, commit_id), keys.tensor_info_key(t, commit_id))]
    got = storage.get_many(wanted, missing_ok=True)
    metas: Dict[str, Dict[str, Any]] = {}
    infos: Dict[str, Dict[str, Any]] = {}
    first = C.FIRST_COMMIT_ID
    objects: Dict[str, bytes] = {keys.dataset_meta_key(first): dmeta_raw}
    if creds_raw is not None:
        objects[keys.linked_creds_key()] = creds_raw
    for t in tkeys:
        mraw = got[keys.tensor_meta_key(t, commit_id)]
        if mraw is None:
            raise LakeFormatError(f"tensor {t!r} has no meta at commit {commit_id!r} of {storage.root!r}")
        m = loads(mraw, keys.tensor_meta_key(t, commit_id))
        metas[t] = dict(m)
        # an empty tensor of the same meta: its shape interval is this worker's own
        objects[keys.tensor_meta_key(t, first)] = json.dumps({**m, "length": 0, "min_shape": [], "max_shape": []}).encode()
        iraw = got[keys.tensor_info_key(t, commit_id)]
        infos[t] = dict(loads(iraw)) if iraw else {}
        if iraw:
            objects[keys.tensor_info_key(t, first)] = iraw
    mem = MemoryStorage(f"memory://lakeformat-chunk-writer-{uuid.uuid4().hex}")
    mem.set_many(objects)
    vs = VersionState(mem, VersionTree(), first, C.DEFAULT_BRANCH)
    return Dataset(Session(mem, vs, False, mem.root)), metas, infos


def write_chunks(target: Union[str, StorageProvider], commit_id: str, samples: Mapping[str, Any],
                 creds: Optional[Dict[str, Any]] = None) -> ChunkManifest:
    """Write `samples` (tensor name -> values, as `Dataset.extend` takes them; tensors left
    out get no rows) as whole new chunks of the dataset at `target` (a URL or a store), in
    the folder of `commit_id` (the branch head's, `ds.pending_commit_id`), and return their
    manifest. No meta, encoder or side file of the target changes: publish the manifest with
    `commit_operation(ds, AppendChunks((manifest,)), ...)`. Safe to run in many processes at
    once. A write that would add class names, or the first null mask of a tensor, raises:
    those change shared metadata, so write them through the dataset itself."""
    storage = storage_from_url(target, creds, cache_size=0) if not isinstance(target, StorageProvider) else target
    scratch, metas, infos = _scratch(storage, commit_id)
    try:
        scratch.extend(dict(samples), skip_ok=True)
        scratch.flush()
        mem = scratch.storage
        first = C.FIRST_COMMIT_ID
        new_tensors = [k for k in scratch.meta.tensors if k not in metas]
        if new_tensors:
            raise LakeFormatError(
                f"writing these samples would create tensors {new_tensors} (a first null of a nullable tensor "
                f"makes its validity tensor): write one null through the dataset first, then the rest with workers")
        out: List[TensorChunks] = []
        copies: Dict[str, bytes] = {}
        for key in scratch.meta.tensors:
            raw = mem.get_many([keys.tensor_meta_key(key, first), keys.tensor_info_key(key, first)], missing_ok=True)
            meta_raw = raw[keys.tensor_meta_key(key, first)]
            if meta_raw is None:
                continue
            after = dict(loads(meta_raw))
            if not after.get("length"):
                continue
            tc, chunk_bytes = _tensor_chunks(mem, key, after, metas[key], infos[key], raw[keys.tensor_info_key(key, first)], commit_id)
            out.append(tc)
            copies.update(chunk_bytes)
        storage.set_many(copies)
        storage.flush()
        n = max((len(v) for v in samples.values()), default=0)
        return ChunkManifest(commit_id, tuple(out), n)
    finally:
        scratch.storage.clear()


def _tensor_chunks(mem: StorageProvider, key: str, after: Dict[str, Any], before: Dict[str, Any],
                   info_before: Dict[str, Any], info_raw: Optional[bytes], commit_id: str) -> Tuple[TensorChunks, Dict[str, bytes]]:
    first = C.FIRST_COMMIT_ID
    enc = mem.get_many([keys.chunk_id_encoder_key(key, first), keys.tile_encoder_key(key, first),
                        keys.sequence_encoder_key(key, first), keys.creds_encoder_key(key, first)], missing_ok=True)
    ids = ChunkIdEncoder.from_bytes(enc[keys.chunk_id_encoder_key(key, first)] or b"")
    rows = [(ChunkIdEncoder.name_of(int(cid)), int(last)) for cid, last in ids.rows.tolist()]
    got = mem.get_many([keys.chunk_key(key, n, first) for n, _ in rows])
    chunks: Dict[str, bytes] = {k: v for k, v in got.items() if v is not None}
    copies = {keys.chunk_key(key, n, commit_id): chunks[keys.chunk_key(key, n, first)] for n, _ in rows}
    tiles_raw = enc[keys.tile_encoder_key(key, first)]
    tiles = TileEncoder.from_bytes(tiles_raw) if tiles_raw else TileEncoder()
    seq_raw, creds_raw = enc[keys.sequence_encoder_key(key, first)], enc[keys.creds_encoder_key(key, first)]
    seq = RangeEncoder.from_bytes(seq_raw) if seq_raw else None
    creds = CredsEncoder.from_bytes(creds_raw) if creds_raw else None
    info_after = dict(loads(info_raw)) if info_raw else {}
    info_changes = _changes(info_before, info_after)
    if any(k == "class_names" for k, _, _ in info_changes):
        raise LakeFormatError(f"tensor {after.get('name') or key!r}: these samples add class names; workers may only "
                              "use class names the tensor has (add new ones through the dataset first)")
    n_items = int(after["length"])
    tc = TensorChunks(
        key=key,
        rows=tuple(rows),
        crc32=tuple(CS.checksum(chunks[keys.chunk_key(key, n, first)]) for n, _ in rows),
        nbytes=tuple(len(chunks[keys.chunk_key(key, n, first)]) for n, _ in rows),
        num_items=n_items,
        num_samples=int(seq.num_samples) if seq is not None else n_items,
        min_shape=tuple(int(x) for x in after.get("min_shape") or ()),
        max_shape=tuple(int(x) for x in after.get("max_shape") or ()),
        tiles=tuple((int(i), tuple(int(s) for s in shp), tuple(int(s) for s in ts)) for i, (shp, ts) in sorted(tiles.entries.items())),
        seq_lengths=tuple(int(x) for x in seq.all_lengths().tolist()) if seq is not None else None,
        creds=tuple(int(x) for x in np.asarray(creds.all_values()).reshape(-1).tolist()) if creds is not None else None,
        fingerprint=fingerprint_of(before),
        meta_changes=_changes({**before, "length": 0}, after, SHAPE_KEYS),
        info_changes=info_changes,
    )
    return tc, copies


def delete_chunks(storage: StorageProvider, manifests: Tuple[ChunkManifest, ...]) -> None:
    """Delete the chunks of manifests that will never be published (a failed operation)."""
    for m in manifests:
        for k in m.chunk_keys():
            try:
                storage.delete(k)
            except (KeyError, FileNotFoundError):
                pass
    storage.flush()
