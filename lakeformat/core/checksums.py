"""Checksums of a tensor's objects at one commit, kept in a side file deeplake 3.9.52 ignores.

`<tensor folder>/lakeformat_checksums.json` holds a crc32 (ISA-L, the zlib polynomial) of each
metadata object of the tensor at that commit (`OBJECT_FILES`; None: the object is absent) and
of each chunk stored in that folder. Each value is a short list of accepted checksums, newest
first: a flush writes the side file *before* the objects it describes, listing both the
checksums at rest and the new ones, so a kill at any later write leaves objects that each
match one of them (the tensor meta is written last: once it matches the newest, every other
object must too).

Another writer (deeplake 3.9.52) knows nothing of the side file and leaves it behind. Every
write deeplake makes changes at least two of the tensor's objects (an append: the chunk
index, the commit diff and the meta; an info update: the info and the commit diff) or creates
the pad encoder (an update in place; our flush deletes an empty one, so every deeplake update
creates it again). A single flipped byte, or a hand edit, changes exactly one. So: all match
-> `ok`; the pad encoder appeared, or two or more objects changed -> `stale` (describes an
older state: nothing is checked); exactly one changed -> `corrupt`.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from isal import isal_zlib

from lakeformat import constants as C
from lakeformat.core import keys
from lakeformat.errors import CorruptDataError

logger = logging.getLogger(__name__)

SIDE_FILENAME = "lakeformat_checksums.json"
ALGORITHM = "crc32"
FORMAT = 1
META_FILE = "tensor_meta.json"
PAD_FILE = "pad_index/unsharded"
OBJECT_FILES: Tuple[str, ...] = (
    META_FILE, "tensor_info.json", "chunks_index/unsharded", "tiles_index/unsharded",
    "sequence_index/unsharded", "creds_index/unsharded", "commit_diff", "chunk_set", PAD_FILE,
)
# the objects an engine reads when it opens anyway: checked then at no extra round trip
OPEN_FILES: Tuple[str, ...] = (META_FILE, "chunks_index/unsharded", "tiles_index/unsharded",
                               "sequence_index/unsharded", "creds_index/unsharded", PAD_FILE)
MAX_ACCEPTED = 3  # checksums kept per object: new, at rest, and one a crashed flush left


def checksum(data: Any) -> int:
    """crc32 of a bytes-like object."""
    return isal_zlib.crc32(data) & 0xFFFFFFFF


def checksum_parts(parts: Iterable[Any]) -> int:
    """crc32 of the concatenation of `parts` (a chunk written as gathered parts)."""
    crc = 0
    for p in parts:
        crc = isal_zlib.crc32(p, crc)
    return crc & 0xFFFFFFFF


def folder(tensor_key: str, commit_id: str) -> str:
    return posixpath.dirname(keys.tensor_meta_key(tensor_key, commit_id))


def side_key(tensor_key: str, commit_id: str) -> str:
    """Where the side file of `tensor_key` at `commit_id` lives."""
    return f"{folder(tensor_key, commit_id)}/{SIDE_FILENAME}"


def object_key(tensor_key: str, commit_id: str, name: str) -> str:
    return f"{folder(tensor_key, commit_id)}/{name}"


def is_empty_pad(raw: Optional[bytes]) -> bool:
    """A pad encoder holding no padding (deeplake writes one at every update)."""
    return raw is not None and len(raw) >= 1 and len(raw) == 1 + raw[0]


# fields deeplake rewrites alone: a tensor meta's name (rename); the dataset meta's schema
# (create, delete, rename of a tensor). Those are checked against each other by `verify`.
_SCHEMA_FIELDS = {"tensor_meta.json": ("name",), "dataset_meta.json": ("tensors", "tensor_names", "hidden_tensors", "groups")}


def meta_core_checksum(raw: Optional[bytes], file: str = "tensor_meta.json") -> Optional[int]:
    """crc32 of a meta's content without the fields deeplake rewrites alone (see
    `_SCHEMA_FIELDS`); None when it does not parse."""
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        for k in _SCHEMA_FIELDS[file]:
            d.pop(k, None)
        return checksum(json.dumps(d, sort_keys=True).encode())
    except (ValueError, TypeError, AttributeError):
        return None


def _crc(raw: Optional[Any]) -> Optional[int]:
    return None if raw is None else checksum(raw)


def _accept(new: Optional[int], old: Sequence[Optional[int]]) -> List[Optional[int]]:
    out = [new]
    for v in old:
        if v not in out:
            out.append(v)
    return out[:MAX_ACCEPTED]


@dataclass
class Verdict:
    """What a side file says of the objects at rest: `ok`, `stale` (another writer changed the
    tensor since: unverifiable), `absent` (no side file) or `corrupt` (`problems` says what)."""
    state: str
    problems: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)  # `corrupt`: the object files that do not match


@dataclass
class TensorChecksums:
    """The side file: accepted checksums of each object and of each chunk of one folder, and
    for chunks of sample-compressed samples (png, jpeg: decoded anyway, and read by byte
    range) the checksum of each sample's stored bytes (`samples`: chunk name -> one uint32,
    little-endian, per sample, base64 in the file; the newest chunk's: a chunk only ever
    grows under its name, so an older one's samples are a prefix)."""
    objects: Dict[str, List[Optional[int]]] = field(default_factory=dict)
    chunks: Dict[str, List[int]] = field(default_factory=dict)
    meta_core: List[Optional[int]] = field(default_factory=list)  # the meta without its name
    samples: Dict[str, bytes] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """JSON, ending with the checksum of the bytes before it (damage to the side file is
        damage too, even where it would not change a verdict)."""
        d: Dict[str, Any] = {"format": FORMAT, "algorithm": ALGORITHM, "objects": self.objects, "chunks": self.chunks,
                             "meta_core": self.meta_core}
        if self.samples:
            d["samples"] = {k: base64.b64encode(v).decode("ascii") for k, v in self.samples.items()}
        body = json.dumps(d, separators=(",", ":")).encode()
        return body[:-1] + b',"self":%d}' % checksum(body[:-1])

    @classmethod
    def from_bytes(cls, raw: bytes, key: str = "") -> "TensorChecksums":
        try:
            cut = bytes(raw).rfind(b',"self":')
            if cut < 0 or checksum(bytes(raw)[:cut]) != int(json.loads(raw)["self"]):
                raise ValueError("its own checksum does not match")
            d = json.loads(raw)
            if d.get("format") != FORMAT or d.get("algorithm") != ALGORITHM:
                raise ValueError(f"format {d.get('format')!r}, algorithm {d.get('algorithm')!r}")
            objects = {str(k): [None if x is None else int(x) for x in v] for k, v in d["objects"].items()}
            chunks = {str(k): [int(x) for x in v] for k, v in d["chunks"].items()}
            meta_core = [None if x is None else int(x) for x in d.get("meta_core", [])]
            samples = {str(k): base64.b64decode(v, validate=True) for k, v in d.get("samples", {}).items()}
            if any(len(v) % 4 for v in samples.values()):
                raise ValueError("sample checksums are not whole uint32s")
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as e:
            raise CorruptDataError(f"checksum side file does not parse: {e}", key) from None
        return cls(objects, chunks, meta_core, samples)

    def check_objects(self, at_rest: Dict[str, Optional[bytes]]) -> Verdict:
        """Classify the objects at rest (file name -> bytes or None, for any subset of
        `OBJECT_FILES`) against this side file."""
        crcs = {f: _crc(v) for f, v in at_rest.items()}
        accepted = {f: self.objects.get(f, [None]) for f in crcs}
        if PAD_FILE in crcs and crcs[PAD_FILE] is not None and crcs[PAD_FILE] not in accepted[PAD_FILE]:
            return Verdict("stale")  # deeplake updated a sample in place
        strict = META_FILE in crcs and len(accepted[META_FILE]) > 1 and crcs[META_FILE] == accepted[META_FILE][0] \
            and crcs[META_FILE] not in accepted[META_FILE][1:]
        changed = []
        schema_only = False
        for f, c in crcs.items():
            ok = c == accepted[f][0] if (strict and f != PAD_FILE) else c in accepted[f]
            if not ok and f in _SCHEMA_FIELDS and meta_core_checksum(at_rest[f], f) in [x for x in self.meta_core if x is not None]:
                ok = True  # renamed, or tensors created or deleted (by deeplake): checked by `verify`
                schema_only = f == "dataset_meta.json"
            if not ok:
                changed.append(f)
        if not changed:
            return Verdict("stale" if schema_only else "ok")
        if len(changed) >= 2:
            return Verdict("stale")
        return Verdict("corrupt", [f"{changed[0]} does not match its checksum (damaged, or edited by hand)"], changed)

    def check_sample(self, name: str, local: int, data: Any) -> Optional[bool]:
        """Whether the stored bytes of sample `local` of a chunk match; None when this side
        file keeps no checksum for it."""
        want = self.samples.get(name)
        if want is None or not 0 <= local < len(want) // 4:
            return None
        return checksum(data) == int.from_bytes(want[4 * local : 4 * local + 4], "little")

    def check_chunk(self, name: str, data: Any) -> Optional[bool]:
        """Whether a chunk's bytes match; None when this side file has no entry for it."""
        want = self.chunks.get(name)
        if want is None:
            return None
        return checksum(data) in want


class FolderChecksums:
    """Side files of the folders a tensor's chunks live in, read and classified once each."""

    def __init__(self) -> None:
        self.tables: Dict[Tuple[str, str], Optional[TensorChecksums]] = {}

    def set(self, tensor_key: str, commit_id: str, table: Optional[TensorChecksums]) -> None:
        self.tables[(tensor_key, commit_id)] = table

    def get(self, storage: Any, tensor_key: str, commit_id: str) -> Optional[TensorChecksums]:
        """The usable side file of a folder (None: absent, stale or damaged)."""
        k = (tensor_key, commit_id)
        if k not in self.tables:
            table, verdict = load_and_classify(storage, tensor_key, commit_id)
            if verdict.state == "corrupt":
                logger.warning("tensor %r at %s: %s", tensor_key, commit_id, "; ".join(verdict.problems))
            self.tables[k] = table if verdict.state == "ok" else None
        return self.tables[k]


def load_and_classify(storage: Any, tensor_key: str, commit_id: str,
                      have: Optional[Dict[str, Optional[bytes]]] = None) -> Tuple[Optional[TensorChecksums], Verdict]:
    """Read a folder's side file and objects (those not in `have`, by key) and classify them."""
    have = have or {}
    wanted = [side_key(tensor_key, commit_id)] + [object_key(tensor_key, commit_id, f) for f in OBJECT_FILES]
    missing = [k for k in wanted if k not in have]
    got = dict(have)
    if missing:
        got.update(storage.get_many(missing, missing_ok=True))
    raw = got.get(wanted[0])
    if raw is None:
        return None, Verdict("absent")
    try:
        table = TensorChecksums.from_bytes(raw, wanted[0])
    except CorruptDataError as e:
        return None, Verdict("corrupt", [str(e)])
    at_rest = {f: got.get(object_key(tensor_key, commit_id, f)) for f in OBJECT_FILES}
    return table, table.check_objects(at_rest)


class EngineChecksums:
    """One engine's side file as its flushes write it: what is at rest (`table`, None until
    first needed), and the checksums of chunks written since the last flush."""

    def __init__(self, tensor_key: str, commit_id: str, new_tensor: bool) -> None:
        self.tensor_key = tensor_key
        self.commit_id = commit_id
        self.table: Optional[TensorChecksums] = TensorChecksums() if new_tensor else None
        self.trusted = new_tensor  # the table at rest describes the objects at rest
        self.objects_at_rest: Dict[str, Optional[int]] = {}
        self.pending: Dict[str, int] = {}  # chunk name -> crc, written early (before the flush)
        self.pending_samples: Dict[str, Optional[bytes]] = {}  # and its samples' (see `sample_checksums`)
        self.folders = FolderChecksums()

    def ensure_loaded(self, storage: Any) -> TensorChecksums:
        """The side file at rest, and the checksums of the objects at rest (read once)."""
        if self.table is None or not self.objects_at_rest:
            have: Dict[str, Optional[bytes]] = {}
            keys_ = [object_key(self.tensor_key, self.commit_id, f) for f in OBJECT_FILES]
            if self.table is None:
                got = storage.get_many([side_key(self.tensor_key, self.commit_id)] + keys_, missing_ok=True)
                table, verdict = load_and_classify(storage, self.tensor_key, self.commit_id, got)
                self.trusted = verdict.state == "ok"
                self.table = table if self.trusted and table is not None else TensorChecksums()
                have = got
            else:
                have = storage.get_many(keys_, missing_ok=True)
            self.objects_at_rest = {f: _crc(have.get(object_key(self.tensor_key, self.commit_id, f))) for f in OBJECT_FILES}
            self.meta_core_at_rest = meta_core_checksum(have.get(object_key(self.tensor_key, self.commit_id, META_FILE)))
            self.pad_raw = have.get(object_key(self.tensor_key, self.commit_id, PAD_FILE))
        return self.table

    def note_chunk(self, name: str, crc: int, samples: Optional[bytes] = None) -> None:
        self.pending[name] = crc
        self.pending_samples[name] = samples

    def early_rewrite(self, storage: Any, name: str, crc: int, samples: Optional[bytes] = None) -> None:
        """Before a chunk a published index points at is rewritten under its own key outside
        a flush (a reopened last chunk sealed during an extend): list its new checksum at
        rest first, so that a kill after the write still finds it accepted (the grown
        chunk's sample checksums start with the old one's)."""
        table = self.ensure_loaded(storage)
        for t in (table, self.folders.tables.get((self.tensor_key, self.commit_id))):
            if t is not None and name in t.chunks:
                t.chunks[name] = [int(x) for x in _accept(crc, t.chunks[name]) if x is not None]
                _set_samples(t.samples, name, samples)
        if name in table.chunks:
            storage.set(side_key(self.tensor_key, self.commit_id), table.to_bytes())
        self.pending[name] = crc
        self.pending_samples[name] = samples

    def side_file_for_flush(self, storage: Any, new_objects: Dict[str, bytes], new_chunks: Dict[str, int],
                            live_chunks: Iterable[str],
                            new_samples: Optional[Dict[str, Optional[bytes]]] = None) -> Tuple[str, bytes, bool]:
        """(key, bytes, delete the empty pad encoder) of the side file a flush writes first:
        each object's new checksum (`new_objects`: file name -> bytes; the rest keep theirs)
        with the one at rest, and the chunks of this folder the index still points at (with
        their samples' checksums, `new_samples`, where kept)."""
        table = self.ensure_loaded(storage)
        drop_pad = is_empty_pad(getattr(self, "pad_raw", None))
        objects: Dict[str, List[Optional[int]]] = {}
        for f in OBJECT_FILES:
            at_rest = self.objects_at_rest.get(f)
            if f in new_objects:
                new = checksum(new_objects[f])
            elif f == PAD_FILE and drop_pad:
                new = None
            else:
                new = at_rest
            # a dropped pad encoder is deleted before the side file is written: only absent
            # is accepted, so deeplake's next update, which writes it again, reads as stale
            objects[f] = [None] if f == PAD_FILE and drop_pad else _accept(new, [at_rest])
            self.objects_at_rest[f] = new
        chunks: Dict[str, List[int]] = {}
        samples: Dict[str, bytes] = {}
        fresh = {**self.pending, **new_chunks}
        fresh_samples = {**self.pending_samples, **(new_samples or {})}
        for name in live_chunks:
            if name in fresh:
                old = table.chunks.get(name, [])
                chunks[name] = [int(x) for x in _accept(fresh[name], old) if x is not None]
                _set_samples(samples, name, fresh_samples.get(name))
            elif name in table.chunks:
                chunks[name] = table.chunks[name]
                _set_samples(samples, name, table.samples.get(name))
        self.pending.clear()
        self.pending_samples.clear()
        core = meta_core_checksum(new_objects[META_FILE]) if META_FILE in new_objects else getattr(self, "meta_core_at_rest", None)
        meta_core = _accept(core, [getattr(self, "meta_core_at_rest", None)])
        self.meta_core_at_rest = core
        self.table = TensorChecksums(objects, chunks, meta_core, samples)
        self.pad_raw = None if drop_pad else getattr(self, "pad_raw", None)
        # once this flush is published the side file describes what is at rest
        self.folders.set(self.tensor_key, self.commit_id,
                         TensorChecksums({f: [v[0]] for f, v in objects.items()}, chunks, [core], dict(samples)))
        return side_key(self.tensor_key, self.commit_id), self.table.to_bytes(), drop_pad


def _set_samples(samples: Dict[str, bytes], name: str, crcs: Optional[bytes]) -> None:
    if crcs is None:
        samples.pop(name, None)
    else:
        samples[name] = crcs


def sample_checksums(parts: Sequence[Any]) -> Optional[bytes]:
    """crc32 of each sample's stored bytes in a serialized chunk without chunk compression,
    packed as little-endian uint32s (5.3 bytes a sample in the side file): `parts` is the
    whole chunk as one bytes-like, or its header then its data. None for a tile or a chunk
    that does not parse."""
    from lakeformat.core.chunk import Chunk  # chunk imports nothing of ours: no cycle, kept local all the same

    try:
        h = Chunk.parse(parts[0], None, header_only=True)
        n = h.num_samples
        if h.is_tile or not n:
            return None
        if len(parts) == 1:
            data = memoryview(parts[0])[h.header_nbytes:]
        elif len(parts) == 2 and len(memoryview(parts[0])) == h.header_nbytes:
            data = memoryview(parts[1])
        else:
            return None
        start, end = h.byte_ranges(np.arange(n, dtype=np.int64))
    except CorruptDataError:
        return None
    if not len(end) or int(end.max()) > len(data):
        return None
    crc = isal_zlib.crc32
    return np.fromiter((crc(data[a:b]) for a, b in zip(start.tolist(), end.tolist())), "<u4", count=n).tobytes()


def accept_rewritten_chunks(storage: Any, journal: Dict[str, Optional[bytes]]) -> None:
    """Widen the side files a crashed flush's journal restores (in place) to accept the chunk
    checksums that flush listed at rest: it may have rewritten the open chunk under its own
    name (growth only) after writing its side file, and the journal's older side file knows
    only the chunk's old bytes. The grown samples lie past the restored length, unread."""
    sides = [k for k, v in journal.items() if v is not None and k.endswith("/" + SIDE_FILENAME)]
    if not sides:
        return
    at_rest = storage.get_many(sides, missing_ok=True)
    for k in sides:
        raw = at_rest.get(k)
        if raw is None or raw == journal[k]:
            continue
        try:
            old, new = TensorChecksums.from_bytes(journal[k], k), TensorChecksums.from_bytes(raw, k)  # type: ignore[arg-type]
        except CorruptDataError:
            continue  # a damaged side file: the checks that read it report it
        for name, crcs in old.chunks.items():
            extra = [c for c in new.chunks.get(name, []) if c not in crcs]
            if extra:
                old.chunks[name] = crcs + extra
        journal[k] = old.to_bytes()


# --- the dataset's own objects at a commit ------------------------------------------------
DATASET_FILES: Tuple[str, ...] = ("dataset_meta.json", "dataset_info.json", "dataset_diff")


def dataset_side_key(commit_id: str) -> str:
    """The side file of the dataset's own objects at `commit_id` (beside dataset_meta.json)."""
    return posixpath.join(posixpath.dirname(keys.dataset_meta_key(commit_id)), SIDE_FILENAME)


def dataset_object_keys(commit_id: str) -> List[str]:
    return [keys.dataset_meta_key(commit_id), keys.dataset_info_key(commit_id), keys.dataset_diff_key(commit_id)]


class DatasetChecksums:
    """The dataset objects' checksums at rest, as a flush updates them (same rules as a
    tensor's: written first, old and new accepted; two changed objects mean another writer)."""

    def __init__(self, at_rest: Dict[str, Optional[bytes]]) -> None:
        self.at_rest = {f: _crc(at_rest.get(f)) for f in DATASET_FILES}
        self.core_at_rest = meta_core_checksum(at_rest.get(DATASET_FILES[0]), DATASET_FILES[0])

    def side_file_for_flush(self, new: Dict[str, bytes]) -> bytes:
        objects = {}
        for f in DATASET_FILES:
            n = checksum(new[f]) if f in new else self.at_rest[f]
            objects[f] = _accept(n, [self.at_rest[f]])
            self.at_rest[f] = n
        core = meta_core_checksum(new[DATASET_FILES[0]], DATASET_FILES[0]) if DATASET_FILES[0] in new else self.core_at_rest
        cores = _accept(core, [self.core_at_rest])
        self.core_at_rest = core
        return TensorChecksums(objects, {}, cores).to_bytes()


def classify_dataset(storage: Any, commit_id: str) -> Verdict:
    """The dataset's own objects at `commit_id` against their side file."""
    ks = dataset_object_keys(commit_id)
    got = storage.get_many([dataset_side_key(commit_id)] + ks, missing_ok=True)
    raw = got.get(dataset_side_key(commit_id))
    if raw is None:
        return Verdict("absent")
    try:
        table = TensorChecksums.from_bytes(raw, dataset_side_key(commit_id))
    except CorruptDataError as e:
        return Verdict("corrupt", [str(e)])
    return table.check_objects({f: got.get(k) for f, k in zip(DATASET_FILES, ks)})


def check_chunk_key(storage: Any, key: str, raw: Any, folders: FolderChecksums) -> None:
    """Check a whole chunk read by its storage key alone (a reader without a chunk engine,
    such as the torch loader) against its folder's side file; raises `CorruptDataError`."""
    parts = key.split("/")
    if "chunks" not in parts[:-1]:
        return
    at = len(parts) - 2
    if parts[at] != "chunks":
        return
    if parts[0] == "versions" and len(parts) > 4:
        commit_id, tensor_key = parts[1], "/".join(parts[2:at])
    else:
        commit_id, tensor_key = C.FIRST_COMMIT_ID, "/".join(parts[:at])
    table = folders.get(storage, tensor_key, commit_id)
    if table is not None and table.check_chunk(parts[-1], raw) is False:
        raise CorruptDataError(f"chunk {parts[-1]} does not match its checksum", key, tensor=tensor_key)


# --- version-control objects: a checksum inside the object -------------------------------
# version_control_info.json is replaced by a conditional write (compare-and-swap) while other
# writers race for it: a side file written separately could never be atomic with it. So its
# checksum, and each commit_info.json's, lives inside the object, as a last top-level key that
# deeplake 3.9.52 ignores on reading and drops when it rewrites the object (a tree or commit
# info without it is another writer's: unverifiable, never damage). Lock objects are not
# checksummed: they change under concurrency by design, expire, and a damaged one reads as
# "not held" (their readers parse them defensively).
EMBEDDED_KEY = "lakeformat_crc32"
_EMBED_SEP = b', "' + EMBEDDED_KEY.encode() + b'": '


def embed_checksum(obj: Dict[str, Any]) -> bytes:
    """`obj` as JSON (json.dumps' default separators) with the crc32 of the bytes before
    it as its last key."""
    body = json.dumps({k: v for k, v in obj.items() if k != EMBEDDED_KEY}).encode("utf-8")
    if not body.endswith(b"}") or body == b"{}":
        raise ValueError("embed_checksum takes a non-empty JSON object")
    return body[:-1] + _EMBED_SEP + b"%d}" % checksum(body[:-1])


def check_embedded(raw: Any, obj: Dict[str, Any], key: str, plain_keys: Iterable[str]) -> bool:
    """Check a parsed object (`obj`, from `raw`) written by `embed_checksum`, and remove the
    checksum from it. True: checked; False: no checksum, and only the keys another writer
    writes (`plain_keys`), so unverifiable. Raises `CorruptDataError` when the checksum does
    not match, or an unknown key stands where the checksum's was (a damaged name)."""
    if EMBEDDED_KEY not in obj:
        extra = sorted(set(obj) - set(plain_keys))
        if extra:
            raise CorruptDataError(f"unexpected keys {extra} (damaged, or edited by hand)", key)
        return False
    want = obj.pop(EMBEDDED_KEY)
    data = bytes(raw)
    cut = data.rfind(_EMBED_SEP)
    if cut < 0 or not isinstance(want, int) or checksum(data[:cut]) != want:
        raise CorruptDataError("does not match its checksum (damaged, or edited by hand)", key)
    return True


def side_files_of_copy(objects: Dict[str, bytes], tensors: Iterable[str], commit_id: str) -> Dict[str, bytes]:
    """Side files (key -> bytes) of a new version's folder, made of copies of its parent's
    metas and encoders (`objects`: key -> bytes, every object of the folder; those absent are
    absent at rest) and no chunks yet, so that it is verifiable before its first flush."""
    out: Dict[str, bytes] = {}
    for t in tensors:
        at_rest = {f: objects.get(object_key(t, commit_id, f)) for f in OBJECT_FILES}
        table = TensorChecksums({f: [_crc(v)] for f, v in at_rest.items()}, {}, [meta_core_checksum(at_rest[META_FILE])])
        out[side_key(t, commit_id)] = table.to_bytes()
    ds_rest = {f: objects.get(k) for f, k in zip(DATASET_FILES, dataset_object_keys(commit_id))}
    if ds_rest[DATASET_FILES[0]] is not None:
        cores = [meta_core_checksum(ds_rest[DATASET_FILES[0]], DATASET_FILES[0])]
        out[dataset_side_key(commit_id)] = TensorChecksums({f: [_crc(v)] for f, v in ds_rest.items()}, {}, cores).to_bytes()
    return out
