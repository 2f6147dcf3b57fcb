"""Info: the key-value document of a dataset (dataset_info.json) or of a tensor
(tensor_info.json), as one mutable mapping.

Every mutating method checks that the handle may write, changes the live document in place
and then calls the owner's ``save`` (which marks the document dirty, records the change in the
commit diff and autoflushes), as deeplake 3.x's ``Info`` does. Keys read as attributes too
(``ds.info.description``); setting a public attribute sets the key.
"""
from __future__ import annotations

from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    MutableMapping,
    ValuesView,
)
from typing import Any

__all__ = ["Info"]

_MISSING: Any = object()
_SLOTS = frozenset({"_data", "_save", "_check"})


def _nothing() -> None:
    return None


class Info(MutableMapping[str, Any]):
    """A dataset's or a tensor's info.

    ``data`` is the owner's live document (changed in place); ``save`` runs after every change;
    ``check_writable`` runs before one and raises when the handle is read-only.
    """

    __slots__ = ("_check", "_data", "_save")

    _data: dict[str, Any]
    _save: Callable[[], None]
    _check: Callable[[], None]

    def __init__(
        self,
        data: dict[str, Any],
        save: Callable[[], None] = _nothing,
        check_writable: Callable[[], None] | None = None,
    ) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_save", save)
        object.__setattr__(self, "_check", check_writable or _nothing)

    # reads ------------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys(self) -> KeysView[str]:
        return self._data.keys()

    def values(self) -> ValuesView[Any]:
        return self._data.values()

    def items(self) -> ItemsView[str, Any]:
        return self._data.items()

    def __getattr__(self, key: str) -> Any:
        # only called when normal lookup fails: the document's keys read as attributes
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Info):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as dict

    def __repr__(self) -> str:
        return repr(self._data)

    def __str__(self) -> str:
        return str(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        # a pickled info is its plain document: the owner's callbacks stay in this process
        return (dict, (dict(self._data),))

    @property
    def nbytes(self) -> int:
        """Size of the document as stored (JSON, as tensor_info.json / dataset_info.json)."""
        import json

        return len(json.dumps(self._data, sort_keys=True, indent=4).encode("utf-8"))

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the document."""
        return dict(self._data)

    # writes: check, change in place, save ------------------------------------------------------
    def _changed(self) -> None:
        self._save()

    def __setitem__(self, key: str, value: Any) -> None:
        self._check()
        self._data[key] = value
        self._changed()

    def __delitem__(self, key: str) -> None:
        self._check()
        del self._data[key]
        self._changed()

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _SLOTS:
            raise AttributeError(f"Info.{key} is fixed at construction")
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; ``default`` when missing (KeyError when no
        default is given, as dict's)."""
        self._check()
        if key not in self._data:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = self._data.pop(key)
        self._changed()
        return value

    def popitem(self) -> tuple[str, Any]:
        self._check()
        item = self._data.popitem()
        self._changed()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self._data:
            return self._data[key]
        self[key] = default
        return default

    def clear(self) -> None:
        self._check()
        self._data.clear()
        self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._check()
        self._data.update(*args, **kwargs)
        self._changed()

    def replace_with(self, d: dict[str, Any]) -> None:
        """Replace the whole document (deeplake's ``Info.replace_with``)."""
        self._check()
        self._data.clear()
        self._data.update(d)
        self._changed()
