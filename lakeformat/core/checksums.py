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

import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

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


@dataclass
class TensorChecksums:
    """The side file: accepted checksums of each object and of each chunk of one folder."""
    objects: Dict[str, List[Optional[int]]] = field(default_factory=dict)
    chunks: Dict[str, List[int]] = field(default_factory=dict)
    meta_core: List[Optional[int]] = field(default_factory=list)  # the meta without its name

    def to_bytes(self) -> bytes:
        """JSON, ending with the checksum of the bytes before it (damage to the side file is
        damage too, even where it would not change a verdict)."""
        body = json.dumps({"format": FORMAT, "algorithm": ALGORITHM, "objects": self.objects, "chunks": self.chunks,
                           "meta_core": self.meta_core}, separators=(",", ":")).encode()
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
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise CorruptDataError(f"checksum side file does not parse: {e}", key) from None
        return cls(objects, chunks, meta_core)

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
        return Verdict("corrupt", [f"{changed[0]} does not match its checksum (damaged, or edited by hand)"])

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

    def note_chunk(self, name: str, crc: int) -> None:
        self.pending[name] = crc

    def early_rewrite(self, storage: Any, name: str, crc: int) -> None:
        """Before a chunk a published index points at is rewritten under its own key outside
        a flush (a reopened last chunk sealed during an extend): list its new checksum at
        rest first, so that a kill after the write still finds it accepted."""
        table = self.ensure_loaded(storage)
        if name in table.chunks:
            table.chunks[name] = [int(x) for x in _accept(crc, table.chunks[name]) if x is not None]
            storage.set(side_key(self.tensor_key, self.commit_id), table.to_bytes())
        read_table = self.folders.tables.get((self.tensor_key, self.commit_id))
        if read_table is not None and name in read_table.chunks:
            read_table.chunks[name] = [int(x) for x in _accept(crc, read_table.chunks[name]) if x is not None]
        self.pending[name] = crc

    def side_file_for_flush(self, storage: Any, new_objects: Dict[str, bytes], new_chunks: Dict[str, int],
                            live_chunks: Iterable[str]) -> Tuple[str, bytes, bool]:
        """(key, bytes, delete the empty pad encoder) of the side file a flush writes first:
        each object's new checksum (`new_objects`: file name -> bytes; the rest keep theirs)
        with the one at rest, and the chunks of this folder the index still points at."""
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
        fresh = {**self.pending, **new_chunks}
        for name in live_chunks:
            if name in fresh:
                old = table.chunks.get(name, [])
                chunks[name] = [int(x) for x in _accept(fresh[name], old) if x is not None]
            elif name in table.chunks:
                chunks[name] = table.chunks[name]
        self.pending.clear()
        core = meta_core_checksum(new_objects[META_FILE]) if META_FILE in new_objects else getattr(self, "meta_core_at_rest", None)
        meta_core = _accept(core, [getattr(self, "meta_core_at_rest", None)])
        self.meta_core_at_rest = core
        self.table = TensorChecksums(objects, chunks, meta_core)
        self.pad_raw = None if drop_pad else getattr(self, "pad_raw", None)
        # once this flush is published the side file describes what is at rest
        self.folders.set(self.tensor_key, self.commit_id, TensorChecksums({f: [v[0]] for f, v in objects.items()}, chunks, [core]))
        return side_key(self.tensor_key, self.commit_id), self.table.to_bytes(), drop_pad


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
