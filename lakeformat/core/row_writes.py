"""Row writes of a `Dataset`: append, replace and remove samples of tensors together with
their hidden companions (ids, shapes, infos) and null validity rows. Each batch is serialized
(and so validated) before any state changes; the session flushes it all or nothing."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, cast

import numpy as np

from lakeformat.core import nulls
from lakeformat.core.chunk_deletes import dedup_last, normalize_pop_indices, sequence_items
from lakeformat.core.index import Index
from lakeformat.core.serialize import SerializedBatch
from lakeformat.core.tensor import Tensor
from lakeformat.errors import LakeFormatError

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset

# sealed chunks are written early once this many bytes wait in memory (the metas still point
# at the old state, so an early write is invisible until the next flush)
STAGED_BYTES_LIMIT = 64 * 1024 * 1024


def extend_tensors(ds: "Dataset", values: Dict[str, Any], progressbar: bool = False) -> None:
    st = ds.session
    with st.lock:
        # 1. serialize (and so validate) everything before touching any state
        batches: List[Tuple[str, SerializedBatch]] = []
        null_writes = []
        for key, vals in values.items():
            vals, nw = nulls.split(ds, key, vals)  # nulls: placeholders + validity rows
            b = ds.session.serialize(key, vals)
            batches.append((key, b))
            batches.extend(ds.session.hidden_batches(key, b).items())
            if nw is not None:
                null_writes.append((nw, ds.session.engine(key).num_samples))
        # 2. apply: in-memory only, cannot fail on bad input
        for key, b in batches:
            ds.session.engine(key).extend(b)
        for nw, before in null_writes:
            nulls.apply_extend(ds, nw, before)
        after_write(ds)


def after_write(ds: "Dataset") -> None:
    st = ds.session
    staged = sum(e.staged_nbytes() for e in st.engines.values())
    if staged > STAGED_BYTES_LIMIT:
        for e in st.engines.values():
            e.write_chunks()
    ds._autoflush()


def update_samples(ds: "Dataset", key: str, items: List[int], values: List[Any]) -> None:
    """Replace samples `items` of tensor `key` (a tensor key, hidden ones included) with
    `values`, with their hidden shapes and infos and null validity; flushes outside a
    `with` block. `ds[name][items] = values` is the same for a visible tensor."""
    ds._check_writable_view()
    st = ds.session
    with st.lock:
        values, nw = nulls.split(ds, key, values)
        st.with_depth += 1  # the data and its validity rows in one flush
        try:
            _update_values(ds, key, items, values)
        finally:
            st.with_depth -= 1
        nulls.apply_update(ds, nw, items)
        after_write(ds)


def _update_values(ds: "Dataset", key: str, items: List[int], values: List[Any]) -> None:
    st = ds.session
    with st.lock:
        eng = ds.session.engine(key)
        if (len(items) > 1 or isinstance(values, np.ndarray)) and eng.seq is None:
            _update_many(ds, key, items, values)
            return
        prepared = []
        for item, value in zip(items, values):
            if eng.seq is not None:
                raise LakeFormatError(f"tensor {eng.meta.name!r}: replace a whole sequence by popping and appending")
            b = ds.session.serialize(key, [value], start=item)
            prepared.append((item, b, ds.session.hidden_batches(key, b, start=item, new_ids=False)))
        for item, b, hidden in prepared:
            eng.update_item(item, b)
            eng.commit_diff.update_data(item)
            for hkey, hb in hidden.items():
                ds.session.engine(hkey).update_item(item, hb)
        after_write(ds)


def pop_samples(ds: "Dataset", key: str, index: Any) -> None:
    """Remove sample `index` (an int, or a list of them) of tensor `key` (a tensor key)
    and of its hidden tensors; flushes outside a `with` block. `ds[name].pop(index)` is
    the same for a visible tensor."""
    ds._check_writable_view()
    st = ds.session
    if isinstance(index, (list, tuple, np.ndarray)):  # deeplake's Tensor.pop([i, j, ...])
        with st.lock:
            eng = ds.session.engine(key)
            idx = normalize_pop_indices(cast("Sequence[int]", index), eng.num_samples, f"tensor {eng.meta.name!r}")
            pop_tensor_many(ds, key, idx)
            after_write(ds)
        return
    with st.lock:
        eng = ds.session.engine(key)
        n = eng.num_samples
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"pop index {index} out of range for tensor {eng.meta.name!r} of length {n}")
        sample_id = _sample_id(ds, key, index)
        # hidden tensors linked with flatten_sequence hold one row per item of a sequence
        item_range = eng.seq.item_ranges(np.array([index])) if eng.seq is not None else None
        eng.pop_sample(index, sample_id)
        for hkey in (eng.meta.links or {}):
            if hkey in ds.meta.tensors:
                h = ds.session.engine(hkey)
                if item_range is not None and (eng.meta.links or {})[hkey].get("flatten_sequence"):
                    for item in range(int(item_range[1][0]) - 1, int(item_range[0][0]) - 1, -1):
                        if item < h.num_samples:
                            h.pop_sample(item, None)
                elif h.num_samples > index:
                    h.pop_sample(index, None)
        nulls.pop_rows(ds, eng, np.array([index]))
        after_write(ds)


def _sample_id(ds: "Dataset", key: str, index: int) -> Optional[int]:
    eng = ds.session.engine(key)
    for hkey, link in (eng.meta.links or {}).items():
        if link.get("extend") == "extend_id" and hkey in ds.meta.tensors:
            h = ds.session.engine(hkey)
            if h.num_samples > index:
                return int(np.asarray(Tensor(hkey, hkey, ds, Index(index)).numpy()).reshape(-1)[0])
    return None


def pop_tensor_many(ds: "Dataset", key: str, idx: np.ndarray) -> None:
    """Pop the samples `idx` (sorted, unique, in range) of one tensor and its hidden
    tensors; the caller flushes."""
    eng = ds.session.engine(key)
    ids = _sample_ids(ds, key, idx)
    if ids is False:  # the id tensor is shorter than some index (after a crash): one by one
        for i in idx[::-1].tolist():
            pop_samples(ds, key, int(i))
        return
    item_range = eng.seq.item_ranges(idx) if eng.seq is not None else None
    eng.pop_samples(idx, ids)
    for hkey, link in (eng.meta.links or {}).items():
        if hkey not in ds.meta.tensors:
            continue
        h = ds.session.engine(hkey)
        if item_range is not None and link.get("flatten_sequence"):
            items = sequence_items(*item_range)
        else:
            items = idx
        items = items[: int(np.searchsorted(items, h.num_samples))]
        h.pop_samples(items, None)
    nulls.pop_rows(ds, eng, idx)


def _sample_ids(ds: "Dataset", key: str, idx: np.ndarray) -> Any:
    """The ids of samples `idx` from the hidden id tensor: None when there is none, False
    when it does not reach every index."""
    eng = ds.session.engine(key)
    for hkey, link in (eng.meta.links or {}).items():
        if link.get("extend") == "extend_id" and hkey in ds.meta.tensors:
            h = ds.session.engine(hkey)
            if h.num_samples <= int(idx[-1]):
                return False if h.num_samples > int(idx[0]) else None
            return np.asarray(Tensor(hkey, hkey, ds, Index(idx)).numpy()).reshape(-1)
    return None


def _update_many(ds: "Dataset", key: str, items: List[int], values: List[Any]) -> None:
    """Replace many samples of one tensor (and its hidden shape and info tensors), each
    affected chunk rewritten once; a repeated index takes its last value."""
    eng = ds.session.engine(key)
    uniq, last = dedup_last(np.asarray(items, dtype=np.int64))
    vals = values[last] if isinstance(values, np.ndarray) else [values[int(j)] for j in last]
    b = ds.session.serialize(key, vals, start=int(uniq[0]))
    hidden = ds.session.hidden_batches(key, b, start=int(uniq[0]), new_ids=False)
    eng.update_items(uniq, b)
    cd = eng.commit_diff
    lo, hi = cd.data_added
    outside = uniq[(uniq < lo) | (uniq >= hi)]
    if len(outside):
        cd.add_updated(outside)  # sorted positions, kept as an array
        cd.dirty = True
    for hkey, hb in hidden.items():
        ds.session.engine(hkey).update_items(uniq, hb)
    after_write(ds)
