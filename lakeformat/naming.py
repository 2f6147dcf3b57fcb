"""Tensor-name cleaning shared by the connectors: which names are valid, which collide with
the format's own files or hidden tensors, and how a source's column name becomes one.

Each connector keeps its own choice of a fallback name (the destination prefixes ``f_`` and
numbers duplicates; the SQL backfill appends ``_``), built from these pieces."""
from __future__ import annotations

import re

from lakeformat import constants as C

__all__ = ["HIDDEN_LIKE", "LAYOUT_NAMES", "is_valid_name", "replace_bad_chars", "unsafe_name"]

# a tensor name a folder on every store can have: letters, digits, '_', '.', '-', not starting with '.' or '-'
_NAME_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")

# names of the format's own files and folders at a dataset's (or a version's) root: a tensor
# folder of that name would stand where a file must be, or the other way round
LAYOUT_NAMES: frozenset[str] = frozenset({
    C.DATASET_META_FILENAME, C.DATASET_INFO_FILENAME, C.DATASET_DIFF_FILENAME, C.DATASET_LOCK_FILENAME,
    C.COMMIT_INFO_FILENAME, C.VERSION_CONTROL_INFO_FILENAME, C.VERSION_CONTROL_INFO_LOCK_FILENAME,
    C.LINKED_CREDS_FILENAME, "versions", "lakeformat_flush.json", "lakeformat_checksums.json", "queries.json",
})
# hidden tensors of a tensor X are `_X_id`, `_X_shape`, `_X_info`, `_X_null`: a name of that form
# would collide with the hidden tensor of another tensor
HIDDEN_LIKE = re.compile(r"^_.+_(id|shape|info|null\d*)$")


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a tensor name as it stands."""
    return bool(_NAME_OK.match(name or ""))


def replace_bad_chars(name: str, fill: str = "_") -> str:
    """``name`` with every character a tensor name cannot hold replaced by ``fill``."""
    return _BAD_CHARS.sub(fill, name)


def unsafe_name(name: str) -> bool:
    """Whether a (valid) tensor name is one of the layout's own names, case-insensitively
    (object stores and local folders on macOS/Windows may fold case), or a hidden tensor's."""
    return name.lower() in LAYOUT_NAMES or bool(HIDDEN_LIKE.match(name))
