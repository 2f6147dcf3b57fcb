"""The checksum side files a loader's workers check chunks against, read once in the parent.

A worker that opens a side file itself pays a round trip per folder (ten small objects) before
its first chunk is checked, in every worker and every epoch; the parent has most of them
already (an engine reads its own folder's side file when it opens). Here they are gathered
once, in the parent, and handed to the workers with the read job (plain data, pickled with
it for spawned workers).
"""
from __future__ import annotations

from typing import Any, Iterable, Set

from lakeformat.core.checksums import FolderChecksums
from lakeformat.core.layout import chunk_folder  # re-exported: the worker's reading of a key


def gather_tables(storage: Any, engines: Iterable[Any], chunk_keys: Iterable[str]) -> FolderChecksums:
    """A `FolderChecksums` holding the side file of every folder `chunk_keys` live in: those
    the engines read when they opened, the rest read here (one batched read per folder)."""
    out = FolderChecksums()
    for eng in engines:
        sums = getattr(eng, "sums", None)
        folders = getattr(sums, "folders", None)
        if folders is not None:
            out.tables.update(folders.tables)
    seen: Set[str] = set()
    for key in chunk_keys:
        parent = key[: key.rfind("/") + 1]  # a folder's chunks share it: parsed once per folder
        if parent in seen:
            continue
        seen.add(parent)
        f = chunk_folder(key)
        if f is not None and f not in out.tables:
            out.get(storage, f[0], f[1])  # read and classified once, here
    return out
