"""Where each object lives in the storage, per commit (Deep Lake 3.x's key layout).

The first commit's objects sit at the root; every later commit's under versions/<commit_id>/.
"""
from __future__ import annotations

import posixpath

from lakeformat import constants as C


def _versioned(commit_id: str, *parts: str) -> str:
    if commit_id == C.FIRST_COMMIT_ID:
        return "/".join(parts)
    return "/".join(("versions", commit_id) + parts)


def dataset_meta_key(commit_id: str) -> str:
    return _versioned(commit_id, C.DATASET_META_FILENAME)


def dataset_info_key(commit_id: str) -> str:
    return _versioned(commit_id, C.DATASET_INFO_FILENAME)


def dataset_diff_key(commit_id: str) -> str:
    return _versioned(commit_id, C.DATASET_DIFF_FILENAME)


def commit_info_key(commit_id: str) -> str:
    return _versioned(commit_id, C.COMMIT_INFO_FILENAME)


def tensor_meta_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.TENSOR_META_FILENAME)


def tensor_info_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.TENSOR_INFO_FILENAME)


def chunk_key(key: str, chunk_name: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.CHUNKS_FOLDER, chunk_name)


def chunk_id_encoder_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.CHUNK_ID_FOLDER, C.UNSHARDED)


def tile_encoder_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.TILE_FOLDER, C.UNSHARDED)


def creds_encoder_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.CREDS_FOLDER, C.UNSHARDED)


def sequence_encoder_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.SEQUENCE_FOLDER, C.UNSHARDED)


def chunk_set_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.CHUNK_SET_FILENAME)


def commit_diff_key(key: str, commit_id: str) -> str:
    return _versioned(commit_id, key, C.COMMIT_DIFF_FILENAME)


def version_control_info_key() -> str:
    return C.VERSION_CONTROL_INFO_FILENAME


def linked_creds_key() -> str:
    return C.LINKED_CREDS_FILENAME


def dataset_lock_key() -> str:
    return C.DATASET_LOCK_FILENAME


def hidden_key(tensor_key: str, kind: str) -> str:
    """'a/b/img', 'shape' -> 'a/b/_img_shape'."""
    group, name = posixpath.split(tensor_key)
    return posixpath.join(group, f"_{name}_{kind}")


def flush_marker_key(commit_id: str) -> str:
    """Our own marker, present only while a multi-tensor flush is under way."""
    return _versioned(commit_id, "lakeformat_flush.json")
