"""Applying chunk manifests to a session's engines, in memory: the session's flush publishes
them (see `lakeformat.version_control.operations`). Every check runs before anything changes."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

from lakeformat.core.chunk_engine import ChunkEngine
from lakeformat.core.encoders import ChunkIdEncoder, CredsEncoder, RangeEncoder, TileEncoder
from lakeformat.core.session import Session
from lakeformat.errors import LakeFormatError
from lakeformat.version_control.manifests import ChunkManifest, TensorChunks, as_tuple, fingerprint_of

NULL_MASK = "null_mask"  # the tensor info key naming a tensor's validity tensor (core/nulls.py)


def _doc(eng: ChunkEngine) -> Dict[str, Any]:
    return dict(eng.meta.to_dict()) if hasattr(eng.meta, "to_dict") else dict(eng.meta.d)


def check_manifests(st: Session, manifests: Iterable[ChunkManifest]) -> None:
    """Raise (naming the tensor) unless every manifest can be appended to this session."""
    c = st.version_state.commit_id
    for m in manifests:
        if m.commit_id != c:
            raise LakeFormatError(f"a chunk manifest written for commit {m.commit_id} cannot be published at "
                                  f"{c} (the branch head of {st.path!r}): write the chunks again at the head")
        for tc in m.tensors:
            if tc.key not in st.meta.tensors:
                raise LakeFormatError(f"chunk manifest: tensor {tc.key!r} is not in dataset {st.path!r}")
            eng = st.engine(tc.key)
            doc = _doc(eng)
            name = doc.get("name") or tc.key
            if tuple(tc.fingerprint) != fingerprint_of(doc):
                raise LakeFormatError(f"chunk manifest: tensor {name!r} changed since the chunks were written "
                                      f"(was {dict(tc.fingerprint)}, is {dict(fingerprint_of(doc))})")
            for k, before, after in tc.meta_changes:
                if as_tuple(doc.get(k)) not in (as_tuple(before), as_tuple(after)):
                    raise LakeFormatError(f"chunk manifest: tensor {name!r}'s {k!r} is {doc.get(k)!r}; the chunks "
                                          f"were written for {before!r} -> {after!r}")
            for k, before, after in tc.info_changes:
                if eng.info.get(k) not in (before, after):
                    raise LakeFormatError(f"chunk manifest: tensor {name!r}'s info {k!r} is {eng.info.get(k)!r}; the "
                                          f"chunks were written for {before!r} -> {after!r}")
            if eng.meta.length and tc.num_items and eng.meta.min_shape and len(eng.meta.min_shape) != len(tc.min_shape):
                raise LakeFormatError(f"chunk manifest: tensor {name!r} holds samples of {len(eng.meta.min_shape)} "
                                      f"dimensions, the chunks {len(tc.min_shape)}")


def append_tensor_chunks(eng: ChunkEngine, tc: TensorChunks) -> None:
    """Point `eng` at the chunks of `tc` after its last item (checked by `check_manifests`)."""
    eng.builder = None  # the open chunk (flushed) is no longer the last one
    offset = int(eng.meta.length)
    for (name, last), crc in zip(tc.rows, tc.crc32):
        eng.chunk_ids.append_chunk(int(name, 16), offset + int(last))
        if eng.chunk_set is not None:
            eng.chunk_set.add(name)
        eng.sums.note_chunk(name, int(crc))  # joins the side file the flush writes first
    for item, shape, tile_shape in tc.tiles:
        eng.tiles.entries[offset + int(item)] = (tuple(shape), tuple(tile_shape))
    if eng.seq is not None and tc.seq_lengths is not None:
        eng.seq.extend(np.asarray(tc.seq_lengths, dtype=np.int64))
    if eng.creds is not None and tc.creds is not None:
        eng.creds.extend(np.asarray(tc.creds, dtype=np.int64))
    doc = _doc(eng)
    changes: Dict[str, Any] = {k: after for k, _, after in tc.meta_changes if as_tuple(doc.get(k)) != as_tuple(after)}
    for k, before, _ in tc.meta_changes:
        if k in changes and as_tuple(doc.get(k)) != as_tuple(before):
            raise LakeFormatError(f"tensor {doc.get('name') or tc.key!r}: two manifests disagree on {k!r}")
    changes["length"] = offset + tc.num_items
    meta = eng.meta.replace(**changes)
    if tc.num_items:
        meta = meta.with_shape_interval(tc.min_shape, tc.max_shape)
    eng.meta = meta
    for k, _before, after in tc.info_changes:
        if eng.info.get(k) != after:
            eng.info[k] = after
            eng.info_dirty = True
    eng.commit_diff.add_data(tc.num_samples)
    eng.meta_dirty = eng.encoders_dirty = True
    # the flush journals every object it overwrites (not the growth marker): a kill rolls
    # back the sequence and creds encoders too, which the growth marker's clamp does not
    eng.edited = True


def pad_mask(st: Session, parent: ChunkEngine, mask_key: str, length: int) -> None:
    """Bring the validity tensor `mask_key` to `length` rows (False: not null), as a serial
    write does before appending its rows; a crash may have left it ahead (cut it back)."""
    h = st.engine(mask_key)
    if h.num_samples > length:
        h.clamp(length)
    elif h.num_samples < length:
        h.extend(st.serialize(mask_key, np.zeros((length - h.num_samples, 1), bool)))


def append_manifests(st: Session, manifests: Iterable[ChunkManifest]) -> None:
    """Append each manifest's chunks, in order, to its tensors (hidden ones included)."""
    for m in manifests:
        present = {tc.key for tc in m.tensors}
        # a validity tensor the parent's earlier rows do not reach is padded first
        for tc in m.tensors:
            mk = st.engine(tc.key).info.get(NULL_MASK)
            if isinstance(mk, str) and mk in present and mk in st.meta.tensors:
                pad_mask(st, st.engine(tc.key), mk, st.engine(tc.key).num_samples)
        for tc in m.tensors:
            append_tensor_chunks(st.engine(tc.key), tc)


def family(st: Session, key: str) -> List[str]:
    """Tensor `key` and its hidden companions (ids, shapes, infos, validity)."""
    eng = st.engine(key)
    out = [key] + [h for h in (eng.meta.links or {}) if h in st.meta.tensors]
    mk = eng.info.get(NULL_MASK)
    if isinstance(mk, str) and mk in st.meta.tensors and mk not in out:
        out.append(mk)
    return out


def clear_engine(eng: ChunkEngine) -> None:
    """Empty a tensor, as deeplake's `clear`: its chunks of this version are deleted once the
    flush is published; the commit diff says the data was cleared."""
    eng.builder = None
    for name in eng.chunk_ids.names():
        eng.forget_chunk(name)
    eng.chunk_ids = ChunkIdEncoder()
    eng.tiles = TileEncoder()
    if eng.seq is not None:
        eng.seq = RangeEncoder()
    if eng.creds is not None:
        eng.creds = CredsEncoder()
    eng.meta = eng.meta.replace(length=0, min_shape=[], max_shape=[])
    cd = eng.commit_diff
    cd.data_added = [0, 0]
    cd.data_updated = set()
    cd.data_deleted = set()
    cd.cleared = True
    cd.dirty = True
    eng.edited = True  # the flush journals what it overwrites: a crash rolls the clear back
    eng.meta_dirty = eng.encoders_dirty = True


def resolve_tensor(st: Session, name: str) -> str:
    key = st.meta.tensor_names.get(name)
    if key is None:
        if name in st.meta.tensors:
            return name
        raise LakeFormatError(f"no tensor {name!r} in dataset {st.path!r}")
    return str(key)


def replace_tensors(st: Session, keys_: List[str], manifests: Tuple[ChunkManifest, ...]) -> None:
    """Make the tensors `keys_` (with their hidden companions) hold exactly the manifests'
    chunks, in order; tensors of the family no manifest names end up empty."""
    members = [k for key in keys_ for k in family(st, key)]
    outside = sorted({tc.key for m in manifests for tc in m.tensors} - set(members))
    if outside:
        raise LakeFormatError(f"chunk manifest names tensors {outside} outside those it replaces")
    for k in members:
        clear_engine(st.engine(k))
    append_manifests(st, manifests)
