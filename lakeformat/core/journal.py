"""The journal of a flush: what an unfinished flush overwrote, and the store as it was before it.

A flush that edits published objects first writes a marker holding a journal (`encode_journal`)
of every object it will overwrite; a reader finding the marker reads through a `JournalOverlay`
of it, as if the flush never began (lakeformat.core.session settles it before the next flush).
"""
from __future__ import annotations

import base64
import builtins
import json
from typing import Any

from lakeformat.errors import KeyNotFoundInStorageError
from lakeformat.storage import StorageProvider


class JournalOverlay(StorageProvider):
    """A store seen as it was before an unfinished flush: the objects the flush's journal
    saved (None: absent then) hide what the flush wrote over them. Writes go through to the
    store and drop the saved copies they replace."""

    def __init__(self, base: StorageProvider, saved: dict[str, bytes | None]):
        self.base = base
        self.saved = dict(saved)
        for a in ("root", "read_only", "reads_into_cheaply", "concurrency", "request_latency_s", "bandwidth_bytes_s"):
            setattr(self, a, getattr(base, a))
        if hasattr(base, "set_parts"):
            self.set_parts = self._set_parts

    def __getattr__(self, name: str) -> Any:  # invalidate, ... of the store below
        base = self.__dict__.get("base")
        if base is None:
            raise AttributeError(name)
        return getattr(base, name)

    def get(self, key: str) -> bytes:
        if key in self.saved:
            v = self.saved[key]
            if v is None:
                raise KeyNotFoundInStorageError(key)
            return v
        return self.base.get(key)

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        if key in self.saved:
            return self.get(key)[start:end]
        return self.base.get_range(key, start, end)

    def get_ranges(self, key: str, starts: Any, ends: Any) -> builtins.list[bytes]:
        if key in self.saved:
            return [self.get(key)[a:b] for a, b in zip(starts, ends)]
        return self.base.get_ranges(key, starts, ends)

    def read_into(self, key: str, start: int, out: Any) -> None:
        if key in self.saved:
            return StorageProvider.read_into(self, key, start, out)
        return self.base.read_into(key, start, out)

    def get_many(self, keys_: Any, missing_ok: bool = False) -> dict[str, bytes | None]:
        keys_ = list(keys_)
        mine = [k for k in keys_ if k in self.saved]
        out = self.base.get_many([k for k in keys_ if k not in self.saved], missing_ok) if len(mine) < len(keys_) else {}
        for k in mine:
            if self.saved[k] is None and not missing_ok:
                raise KeyNotFoundInStorageError(k)
            out[k] = self.saved[k]
        return {k: out[k] for k in keys_}

    def set(self, key: str, value: bytes) -> None:
        self.saved.pop(key, None)
        self.base.set(key, value)

    def _set_parts(self, key: str, parts: Any) -> None:
        self.saved.pop(key, None)
        self.base.set_parts(key, parts)  # type: ignore[attr-defined]  # present when the base has it (see __init__)

    def set_many(self, items: dict[str, bytes]) -> None:
        for k in items:
            self.saved.pop(k, None)
        self.base.set_many(items)

    def delete(self, key: str) -> None:
        self.saved.pop(key, None)
        self.base.delete(key)

    def delete_prefix(self, prefix: str) -> None:
        for k in [k for k in self.saved if k.startswith(prefix)]:
            self.saved.pop(k)
        self.base.delete_prefix(prefix)

    def clear(self) -> None:
        self.saved.clear()
        self.base.clear()

    def exists(self, key: str) -> bool:
        if key in self.saved:
            return self.saved[key] is not None
        return self.base.exists(key)

    def size(self, key: str) -> int:
        if key in self.saved:
            return len(self.get(key))
        return self.base.size(key)

    def list(self, prefix: str = "") -> builtins.list[str]:
        out = set(self.base.list(prefix))
        for k, v in self.saved.items():
            if k.startswith(prefix):
                if v is None:
                    out.discard(k)
                else:
                    out.add(k)
        return sorted(out)

    def flush(self) -> None:
        self.base.flush()

    def close(self) -> None:
        self.base.close()

    # shared objects (locks, the version tree) are never in a journal: the store's own
    # conditional writes, untouched
    @property
    def conditional_writes(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.base, "conditional_writes", False))

    def get_versioned(self, key: str) -> Any:
        return self.base.get_versioned(key)

    def set_if_absent(self, key: str, value: bytes) -> bool:
        self.saved.pop(key, None)
        return self.base.set_if_absent(key, value)

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        self.saved.pop(key, None)
        return self.base.set_if_match(key, value, version)

    def delete_if_match(self, key: str, version: str) -> bool:
        self.saved.pop(key, None)
        return self.base.delete_if_match(key, version)


def encode_journal(saved: dict[str, bytes | None], lengths: dict[str, int]) -> bytes:
    """A flush marker with a journal: the objects to restore, and the lengths a still
    earlier crashed flush left to roll back to (applied on top of them)."""
    restore = {k: (base64.b64encode(v).decode() if v is not None else None) for k, v in saved.items()}
    return json.dumps({"restore": restore, "lengths": lengths}).encode()


def decode_journal(raw: bytes) -> tuple[dict[str, int], dict[str, bytes | None] | None]:
    """(lengths to roll back to, objects to restore) from a flush marker."""
    try:
        d = json.loads(raw)
        lengths = {k: int(v) for k, v in d.get("lengths", {}).items()}
        if "restore" in d:
            return lengths, {k: (base64.b64decode(v) if v is not None else None) for k, v in d["restore"].items()}
        return lengths, None
    except (KeyError, ValueError, TypeError, AttributeError):
        return {}, None
