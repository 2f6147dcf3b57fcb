"""Opening, creating and deleting datasets by URL."""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from lakeformat import constants as C
from lakeformat.core import checksums as CS
from lakeformat.core import keys
from lakeformat.core.dataset import Dataset
from lakeformat.core.session import Session
from lakeformat.core.version_state import VersionState
from lakeformat.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    NotADatasetError,
)
from lakeformat.storage import StorageProvider, storage_from_url
from lakeformat.core.version_tree import VersionTree

logger = logging.getLogger(__name__)


def _split_version(url: str) -> Tuple[str, Optional[str]]:
    """'path@<branch or commit id>' -> (path, version)."""
    tail = url.rsplit("/", 1)[-1]
    if "@" in tail:
        base, _, version = url.rpartition("@")
        return base, version or None
    return url, None


def _is_dataset(storage: StorageProvider) -> bool:
    return storage.exists(keys.dataset_meta_key(C.FIRST_COMMIT_ID)) or storage.exists(keys.version_control_info_key())


def exists(url: str, creds: Optional[Dict[str, Any]] = None) -> bool:
    """Whether a dataset exists at `url`."""
    if isinstance(url, StorageProvider):
        return _is_dataset(url)
    url, _ = _split_version(str(url))
    return _is_dataset(storage_from_url(url, creds, read_only=True, cache_size=None))


def _load_tree(storage: StorageProvider) -> VersionTree:
    try:
        return VersionTree.from_bytes(storage.get(keys.version_control_info_key()))
    except KeyError:
        return VersionTree()


def _probe(storage: StorageProvider) -> Tuple[Optional[VersionTree], Dict[str, Optional[bytes]]]:
    """The version tree of the dataset at `storage` (None if there is no dataset), and the
    objects read with it, in one round trip: the two that mark a dataset, the link creds, and
    the first commit's dataset objects (what opening reads when nothing was committed yet)."""
    wanted = [keys.version_control_info_key(), keys.linked_creds_key()] + Session.opening_keys(C.FIRST_COMMIT_ID)
    got = storage.get_many(wanted, missing_ok=True)
    info, meta = got[keys.version_control_info_key()], got[keys.dataset_meta_key(C.FIRST_COMMIT_ID)]
    if info is None and meta is None:
        return None, got
    return (VersionTree.from_bytes(info) if info is not None else VersionTree()), got


def _open(url: str, storage: StorageProvider, read_only: bool, version: Optional[str], tree: Optional[VersionTree] = None,
          prefetched: Optional[Dict[str, Optional[bytes]]] = None) -> Dataset:
    tree = tree if tree is not None else _load_tree(storage)
    branch: Optional[str] = C.DEFAULT_BRANCH
    if version is None:
        commit_id = tree.branches.get(C.DEFAULT_BRANCH) or next(iter(tree.branches.values()))
        if C.DEFAULT_BRANCH not in tree.branches:
            branch = next(iter(tree.branches))
    elif version in tree.branches:
        branch, commit_id = version, tree.branches[version]
    else:
        commit_id = tree.resolve(version)
        node = tree.node(commit_id)
        branch = node["branch"] if tree.is_head(commit_id) else None
    vs = VersionState(storage, tree, commit_id, branch)
    return Dataset(Session(storage, vs, read_only, url, prefetched))


def load(
    url: str,
    read_only: bool = False,
    creds: Optional[Dict[str, Any]] = None,
    version: Optional[str] = None,
    cache_size: Optional[int] = C.DEFAULT_CACHE_SIZE,
    lock: bool = True,
    verify_reads: bool = False,
) -> Dataset:
    """Open the dataset at `url` (a local path, memory://, s3://, gs://, az://...).

    `version` (or a `url@version` suffix) opens a branch or a commit id: a past commit opens
    read-only. `creds` go to fsspec (keys, endpoint_url...). Whole chunks read are checked
    against the checksums our writers keep when they are decoded anyway (chunk or sample
    compression); `verify_reads=True` checks every chunk read (and reads chunks whole to do
    so). A mismatch raises `CorruptDataError` naming the tensor, the chunk and its samples.
    """
    if isinstance(url, StorageProvider):
        storage, at = url, None
        url = storage.root
    else:
        url, at = _split_version(str(url))
        storage = storage_from_url(url, creds, read_only=read_only, cache_size=cache_size)
    version = version or at
    tree, prefetched = _probe(storage)
    if tree is None:
        if storage.list(""):
            raise NotADatasetError(f"{url!r} holds files but no dataset (no {C.DATASET_META_FILENAME} or {C.VERSION_CONTROL_INFO_FILENAME}).")
        raise DatasetNotFoundError(f"No dataset at {url!r}.")
    ds = _open(url, storage, read_only, version, tree, prefetched)
    if verify_reads:
        ds.version_state.verify_reads = True  # read by every chunk engine of this handle
    if lock and not ds.read_only:
        # (imported here, not at the top: a process forked after `import lakeformat` must
        # not inherit the locks module's per-process owner id)
        from lakeformat.version_control.locks import acquire_branch_lock, live_holder

        # a branch this process already writes: the same state again, so that both handles'
        # writes land in one place (two states of one branch would overwrite each other)
        held = live_holder(storage, ds.branch)
        if held is not None and not held.read_only and held.version_state.is_head:
            if verify_reads:
                held.version_state.verify_reads = True
            return Dataset(held)
        acquire_branch_lock(ds)
    return ds


def empty(
    url: str,
    overwrite: bool = False,
    creds: Optional[Dict[str, Any]] = None,
    cache_size: Optional[int] = C.DEFAULT_CACHE_SIZE,
    lock: bool = True,
) -> Dataset:
    """Create an empty dataset at `url`; `overwrite=True` replaces an existing one."""
    storage = storage_from_url(url, creds, cache_size=cache_size)
    url = storage.root if isinstance(url, StorageProvider) else str(url)
    if _is_dataset(storage):
        if not overwrite:
            raise DatasetExistsError(f"A dataset already exists at {url!r}; pass overwrite=True to replace it.")
        from lakeformat.version_control.locks import surrender

        # handles of the replaced dataset in this process must not write into the new one
        for state in surrender(storage):
            state.read_only = True
        storage.clear()
    elif overwrite is False and [k for k in storage.list("") if k != CS.SIDE_FILENAME]:
        # (a checksum side file alone is what a creation killed at its first write leaves)
        raise NotADatasetError(f"{url!r} is not empty and holds no dataset; refusing to write into it.")
    tree = VersionTree()
    vs = VersionState(storage, tree, C.FIRST_COMMIT_ID, C.DEFAULT_BRANCH)
    ds = Dataset(Session(storage, vs, False, url))
    ds.session.mark_meta_dirty()
    ds.session.mark_tree_dirty()
    ds.flush()
    if lock:
        from lakeformat.version_control.locks import acquire_branch_lock

        acquire_branch_lock(ds)
    return ds


def dataset(url: str, read_only: bool = False, overwrite: bool = False, creds: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Dataset:
    """Load the dataset at `url`, or create an empty one if there is none."""
    if not overwrite and exists(url, creds):
        return load(url, read_only=read_only, creds=creds, **kwargs)
    return empty(url, overwrite=overwrite, creds=creds, **kwargs)


def delete(url: str, creds: Optional[Dict[str, Any]] = None, large_ok: bool = True) -> None:
    """Delete the dataset at `url` with all its versions."""
    storage = storage_from_url(str(url), creds, cache_size=None)
    if not _is_dataset(storage):
        raise DatasetNotFoundError(f"No dataset at {url!r}.")
    storage.clear()
    import os

    if "://" not in str(url) and os.path.isdir(str(url)):
        try:
            os.rmdir(str(url))
        except OSError:
            pass
