"""Commit operations, lance-style: workers write whole chunks and return manifests
(`write_chunks`); one call, `commit_operation`, publishes an operation value atomically.

Operations:
- `AppendChunks(manifests)`: the manifests' rows after the last row of their tensors.
- `ReplaceTensor(tensor, manifest)`: the tensor (and its hidden tensors) holds exactly these.
- `Overwrite(manifests)`: the branch's tensors hold exactly these (tensors none names: empty).
- `DeleteRows(indices)`: rows removed from every tensor, each affected chunk rewritten once.
- `ResetBranch(branch, source)`: `branch`'s new head follows the last commit of `source`,
  which is dropped (the destination's staged overwrite).

`read_version(ds)` is a token for "the branch as I read it"; `commit_operation(ds, op,
token)` raises `CommitConflictError` when the branch changed since (any flush or commit of
it), so a writer never publishes over a state it did not see. The operation is applied to the
session in memory (nothing checked fails after the first change) and published by the
session's one flush: its journal makes a kill at any storage write leave the branch before
or after. Chunks a conflicting operation wrote stay (unreferenced: readers and `verify` never
see them) so that the caller may retry with a fresh token; `discard(storage, op)` deletes
them. Chunks of an operation that fails its checks are deleted.

>>> v = read_version(ds)                                             # doctest: +SKIP
>>> m = write_chunks(ds.path, ds.pending_commit_id, {"x": np.arange(5)})  # doctest: +SKIP
>>> commit_operation(ds, AppendChunks((m,)), v)                      # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat.core import checksums as CS
from lakeformat.core import keys
from lakeformat.core.meta import loads
from lakeformat.core.version_tree import load_tree
from lakeformat.errors import CommitConflictError, LakeFormatError, ReadOnlyError
from lakeformat.storage import StorageProvider
from lakeformat.version_control.apply_chunks import append_manifests, check_manifests, replace_tensors, resolve_tensor
from lakeformat.version_control.manifests import ChunkManifest, TensorChunks, delete_chunks, write_chunks

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset

__all__ = [
    "AppendChunks", "ChunkManifest", "CommitConflictError", "DeleteRows", "Overwrite", "ReplaceTensor",
    "ResetBranch", "TensorChunks", "commit_operation", "discard", "read_version", "write_chunks",
]


@dataclass(frozen=True)
class AppendChunks:
    manifests: Tuple[ChunkManifest, ...]


@dataclass(frozen=True)
class ReplaceTensor:
    tensor: str  # the tensor's name
    manifest: ChunkManifest


@dataclass(frozen=True)
class Overwrite:
    manifests: Tuple[ChunkManifest, ...]


@dataclass(frozen=True)
class DeleteRows:
    indices: Tuple[int, ...]

    @classmethod
    def of(cls, indices: Union[Sequence[int], np.ndarray]) -> "DeleteRows":
        return cls(tuple(int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)))


@dataclass(frozen=True)
class ResetBranch:
    branch: str  # the branch that moves (main)
    source: str  # the branch whose last commit it takes; dropped


Operation = Union[AppendChunks, ReplaceTensor, Overwrite, DeleteRows, ResetBranch]


def _manifests(op: Operation) -> Tuple[ChunkManifest, ...]:
    if isinstance(op, (AppendChunks, Overwrite)):
        return tuple(op.manifests)
    if isinstance(op, ReplaceTensor):
        return (op.manifest,)
    return ()


def discard(storage: StorageProvider, op: Operation) -> None:
    """Delete the chunks an operation's workers wrote (one never to be published)."""
    delete_chunks(storage, _manifests(op))


# ---- the version token --------------------------------------------------------------------------
def _crc(raw: Optional[bytes]) -> str:
    return "-" if raw is None else format(zlib.crc32(raw), "08x")


def version_at_rest(storage: StorageProvider, branch: Optional[str], commit_id: str) -> str:
    """The token of `branch` (or of commit `commit_id` when there is no branch) as stored:
    its head commit, and the checksums of every object a flush of it rewrites (the dataset's
    meta, info, diff and side file, the flush marker, each tensor's meta, side file and
    chunk ids). Any flush or commit of the branch changes it."""
    head = commit_id
    if branch is not None:
        head = load_tree(storage).branches.get(branch, commit_id)
    ds_keys = [keys.dataset_meta_key(head), keys.dataset_info_key(head), keys.dataset_diff_key(head),
               CS.dataset_side_key(head), keys.flush_marker_key(head)]
    got = storage.get_many(ds_keys, missing_ok=True)
    mk = keys.dataset_meta_key(head)
    tensors: List[str] = list(loads(got[mk], mk).get("tensors", [])) if got[mk] is not None else []  # type: ignore[arg-type]
    t_keys = [k for t in tensors for k in (keys.tensor_meta_key(t, head), CS.side_key(t, head), keys.chunk_id_encoder_key(t, head))]
    got.update(storage.get_many(t_keys, missing_ok=True))
    h = hashlib.sha1()
    for k in ds_keys + t_keys:
        h.update(f"{k}={_crc(got[k])};".encode())
    return f"{head}:{h.hexdigest()[:16]}"


def read_version(ds: "Dataset", branch: Optional[str] = None) -> str:
    """A token for the branch of `ds` (or `branch`) as it is stored now: pass it to
    `commit_operation` with an operation prepared from what was read."""
    st = ds.session
    b = branch if branch is not None else st.version_state.branch
    return version_at_rest(st.storage, b, st.version_state.commit_id)


# ---- publishing ---------------------------------------------------------------------------------
def commit_operation(ds: "Dataset", op: Operation, read_version: str) -> str:
    """Publish `op` on the branch of `ds` (for `ResetBranch`, on `op.branch`) in one flush,
    under the branch lock, if the branch is still at `read_version`; raise
    `CommitConflictError` otherwise. Unflushed writes of `ds` are flushed first. Returns the
    branch's new version token."""
    if isinstance(op, ResetBranch):
        from lakeformat.version_control.branch_ops import reset_branch

        return reset_branch(ds, op, read_version)
    if not isinstance(op, (AppendChunks, ReplaceTensor, Overwrite, DeleteRows)):
        raise LakeFormatError(f"not a commit operation: {op!r}")
    if ds.is_view:
        raise ReadOnlyError("commit an operation through the dataset, not a view of it")
    ds.check_writable()
    from lakeformat.version_control.locks import acquire_lock, release_lock

    st = ds.session
    branch = st.version_state.branch
    with st.lock:
        took = acquire_lock(st.base_storage, branch, owner=st) if branch is not None else False
        try:
            invalidate = getattr(st.base_storage, "invalidate", None)
            if callable(invalidate):
                invalidate()  # a read cache must not hide another writer's objects
            now = version_at_rest(st.storage, branch, st.version_state.commit_id)
            if now != read_version:
                raise CommitConflictError(branch, read_version, now)
            st.flush()  # this handle's own pending writes
            st.reload()  # the engines as stored: the operation applies to what the token names
            _apply_and_flush(ds, op)
        finally:
            if took:
                release_lock(st.base_storage, branch)
    return version_at_rest(st.storage, branch, st.version_state.commit_id)


def _apply_and_flush(ds: "Dataset", op: Operation) -> None:
    st = ds.session
    manifests = _manifests(op)
    st.with_depth += 1  # nothing flushes until the whole operation is applied
    try:
        check_manifests(st, manifests)
        if isinstance(op, AppendChunks):
            append_manifests(st, manifests)
        elif isinstance(op, ReplaceTensor):
            replace_tensors(st, [resolve_tensor(st, op.tensor)], manifests)
        elif isinstance(op, Overwrite):
            visible = [str(k) for k in st.meta.tensor_names.values()]
            replace_tensors(st, visible, manifests)
        elif isinstance(op, DeleteRows):
            ds.delete_rows(np.asarray(op.indices, dtype=np.int64))
    except BaseException:
        st.with_depth -= 1
        st.reload()  # drop the half-applied operation: nothing of it was written
        if manifests:
            delete_chunks(st.base_storage, manifests)
        raise
    st.with_depth -= 1
    st.flush()
