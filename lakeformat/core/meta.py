"""Dataset and tensor metas (dataset_meta.json, tensor_meta.json) as typed values.

Every key deeplake 3.9.52 writes has a typed field; any other key (a newer writer's, or an
htype's own such as ``class_names``) is kept in ``extra``, so a meta read and written back is
the same JSON document: same keys, same values. A key the document did not have is not added
on the way back unless it was set (``present`` records which known keys the document had).

Both are frozen: a change makes a new meta (``meta.replace(length=n)``,
``meta.with_tensor(...)``); the chunk engine swaps its meta with
``ChunkEngine.set_meta(**changes)``, a schema edit assigns ``session.meta``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Optional

from lakeformat import constants as C
from lakeformat.errors import CorruptDataError, UnsupportedFormatVersionError

__all__ = ["DatasetMeta", "TensorMeta", "check_version", "dumps", "loads"]


def dumps(d: Mapping[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, indent=4).encode("utf-8")


def loads(data: bytes, key: str = "") -> Any:
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, and ints past 4300 digits
        raise CorruptDataError(f"not a JSON document: {e}", key) from e
    except RecursionError:
        raise CorruptDataError("JSON document nested too deep", key) from None


def check_version(version: Any, where: str) -> None:
    if not version:
        return
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise UnsupportedFormatVersionError(f"{where}: unreadable format version {version!r}") from None
    if major > C.SUPPORTED_MAJOR:
        raise UnsupportedFormatVersionError(
            f"{where} was written by format version {version}; this lakeformat reads "
            f"{C.SUPPORTED_MAJOR}.x. Upgrade lakeformat to open it."
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _json_copy(v: Any) -> Any:
    return copy.deepcopy(v)


# --------------------------------------------------------------------------------- tensor meta
# what each typed field must hold, checked in from_dict; the message names the key
def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _opt_int(v: Any) -> bool:
    return v is None or _is_int(v)


def _count(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _opt_shape(v: Any) -> bool:
    return v is None or (isinstance(v, list) and all(_is_int(x) for x in v))


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _opt_dict(v: Any) -> bool:
    return v is None or isinstance(v, dict)


_TENSOR_CHECKS = {
    "htype": (_opt_str, "not a string"),
    "dtype": (_opt_str, "not a string"),
    "sample_compression": (_opt_str, "not a string"),
    "chunk_compression": (_opt_str, "not a string"),
    "typestr": (_opt_str, "not a string"),
    "name": (_opt_str, "not a string"),
    "length": (_count, "not a count"),
    "min_shape": (_opt_shape, "not a list of integers"),
    "max_shape": (_opt_shape, "not a list of integers"),
    "max_chunk_size": (_opt_int, "not an integer"),
    "tiling_threshold": (_opt_int, "not an integer"),
    "hidden": (_bool, "not a boolean"),
    "is_link": (_bool, "not a boolean"),
    "is_sequence": (_bool, "not a boolean"),
    "verify": (_bool, "not a boolean"),
    "links": (_opt_dict, "not a mapping"),
}
_SHAPE_FIELDS = ("min_shape", "max_shape")
# keys an htype may carry that read as None when absent (the engine asks for them freely)
_OPTIONAL_EXTRAS = ("zstd_level", "class_names", "coords")


def _ints(v: Iterable[Any]) -> tuple[int, ...]:
    tolist = getattr(v, "tolist", None)  # a NumPy row: one call, Python ints out
    return tuple(int(x) for x in (tolist() if tolist is not None else v))


def _shape(v: Optional[Iterable[Any]]) -> Optional[tuple[int, ...]]:
    return None if v is None else tuple(int(x) for x in v)


@dataclass(frozen=True)
class TensorMeta:
    """tensor_meta.json of one tensor."""

    htype: Optional[str] = "generic"
    dtype: Optional[str] = None
    sample_compression: Optional[str] = None
    chunk_compression: Optional[str] = None
    length: int = 0
    min_shape: Optional[tuple[int, ...]] = ()
    max_shape: Optional[tuple[int, ...]] = ()
    max_chunk_size: Optional[int] = None
    tiling_threshold: Optional[int] = None
    hidden: bool = False
    is_link: bool = False
    is_sequence: bool = False
    verify: bool = True
    links: Optional[Mapping[str, Any]] = None
    name: Optional[str] = None
    typestr: Optional[str] = None
    version: Any = C.FORMAT_VERSION
    # keys with no field of their own (class_names, coords, vdb_indexes, _info, a newer
    # writer's...), kept as read
    extra: Mapping[str, Any] = field(default_factory=dict)
    # which typed keys the document has (a key it lacks is not added when written back)
    present: frozenset[str] = field(default=frozenset(), compare=False)

    # construction ----------------------------------------------------------------------------
    @classmethod
    def new(
        cls,
        name: str,
        htype: str,
        dtype: Optional[str],
        sample_compression: Optional[str],
        chunk_compression: Optional[str],
        max_chunk_size: Optional[int],
        tiling_threshold: Optional[int],
        hidden: bool,
        is_sequence: bool,
        is_link: bool,
        extra: Mapping[str, Any],
    ) -> TensorMeta:
        """The meta of a new, empty tensor (every typed key present, as deeplake writes it)."""
        base = cls(
            htype=htype, dtype=dtype, sample_compression=sample_compression,
            chunk_compression=chunk_compression, max_chunk_size=max_chunk_size,
            tiling_threshold=tiling_threshold, hidden=hidden, is_sequence=is_sequence,
            is_link=is_link, links={}, max_shape=(), min_shape=(), name=name,
            present=_TENSOR_KEYS,
        )
        return base.replace(**dict(extra)) if extra else base

    @classmethod
    def from_dict(cls, d: Any, key: str = "") -> TensorMeta:
        """Check a parsed tensor_meta.json and type it; CorruptDataError names the bad key."""
        if not isinstance(d, dict) or "htype" not in d:
            raise CorruptDataError("tensor meta has no 'htype'", key)
        for name, (ok, what) in _TENSOR_CHECKS.items():
            if name in d and not ok(d[name]):
                raise CorruptDataError(f"tensor meta's {name!r} is {d[name]!r}, {what}", key)
        check_version(d.get("version"), f"Tensor meta {key!r}")
        typed: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in d.items():
            if k in _TENSOR_KEYS:
                typed[k] = _shape(v) if k in _SHAPE_FIELDS else v
            else:
                extra[k] = v
        return cls(**typed, extra=extra, present=frozenset(typed))

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> TensorMeta:
        return cls.from_dict(loads(data, key), key)

    # writing ---------------------------------------------------------------------------------
    def _doc(self) -> dict[str, Any]:
        """The JSON document, sharing the meta's values (to serialize, not to change)."""
        out: dict[str, Any] = {}
        for k in self.present:
            v = getattr(self, k)
            out[k] = list(v) if k in _SHAPE_FIELDS and v is not None else v
        out.update(self.extra)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (a fresh copy: changing it changes no meta)."""
        return _json_copy(self._doc())  # type: ignore[no-any-return]

    def to_bytes(self) -> bytes:
        return dumps(self._doc())

    @property
    def d(self) -> Mapping[str, Any]:
        """The document, read-only (older code read ``meta.d[key]``)."""
        return MappingProxyType(self.to_dict())

    # changes: each returns a new meta --------------------------------------------------------
    def replace(self, **changes: Any) -> TensorMeta:
        """A meta with these keys set: typed keys by field, any other key in ``extra``."""
        # the fields copied in one step into a new instance (no slots for this reason): the
        # engine swaps its meta at every extend, and dataclasses.replace costs several times more
        new = object.__new__(TensorMeta)
        fields_of = new.__dict__
        fields_of.update(self.__dict__)
        extra: Optional[dict[str, Any]] = None
        added: list[str] = []
        for k, v in changes.items():
            if k in _TENSOR_KEYS:
                fields_of[k] = _shape(v) if k in _SHAPE_FIELDS else v
                if k not in self.present:
                    added.append(k)
            else:
                if extra is None:
                    extra = dict(self.extra)
                extra[k] = v
        if extra is not None:
            fields_of["extra"] = extra
        if added:
            fields_of["present"] = self.present | frozenset(added)
        return new

    def without(self, *names: str) -> TensorMeta:
        """A meta without these keys (typed keys go back to their defaults, unwritten)."""
        extra = {k: v for k, v in self.extra.items() if k not in names}
        defaults = {f.name: f.default for f in fields(self) if f.name in names and f.name in _TENSOR_KEYS}
        fields_now = {f.name: getattr(self, f.name) for f in fields(self)}
        fields_now.update(defaults)
        fields_now["extra"] = extra
        fields_now["present"] = self.present - frozenset(names)
        return TensorMeta(**fields_now)

    def with_shape_interval(self, min_shape: Iterable[Any], max_shape: Iterable[Any]) -> TensorMeta:
        """A meta whose shape interval also covers samples of shapes min_shape..max_shape
        (itself when it already does: the common case of an extend)."""
        lo, hi = _ints(min_shape), _ints(max_shape)
        cur_min, cur_max = self.min_shape or (), self.max_shape or ()
        if cur_min or cur_max:
            if lo == cur_min and hi == cur_max:
                return self
            lo, hi = tuple(map(min, cur_min, lo)), tuple(map(max, cur_max, hi))
        if lo == self.min_shape and hi == self.max_shape:
            return self
        return self.replace(min_shape=lo, max_shape=hi)

    def copy(self) -> TensorMeta:
        return self  # immutable

    # derived reads ---------------------------------------------------------------------------
    def __getattr__(self, item: str) -> Any:
        # only called when normal lookup fails: an extra key read as an attribute
        if item.startswith("__"):
            raise AttributeError(item)
        extra = self.__dict__.get("extra", {})
        if item in extra:
            return extra[item]
        if item in _OPTIONAL_EXTRAS:
            return None
        raise AttributeError(item)

    @property
    def base_htype(self) -> str:
        return self.htype or "generic"

    @property
    def ndim(self) -> Optional[int]:
        ms = self.min_shape or ()
        return len(ms) if ms or self.length else None


_FIELD_NAMES = tuple(f.name for f in fields(TensorMeta))
_TENSOR_KEYS = frozenset(_FIELD_NAMES) - {"extra", "present"}


# -------------------------------------------------------------------------------- dataset meta
_DATASET_KEYS = ("allow_delete", "default_index", "groups", "hidden_tensors", "tensor_names", "tensors", "version")


@dataclass(frozen=True, slots=True)
class DatasetMeta:
    """dataset_meta.json: the tensors (by key), their names, groups and hidden tensors.

    Frozen, like ``TensorMeta``: a schema edit makes a new meta (``meta.with_tensor(...)``)
    that the session then holds (``session.meta = ...``)."""

    tensors: tuple[str, ...] = ()
    tensor_names: Mapping[str, str] = field(default_factory=dict)  # name -> key (a rename keeps the key)
    hidden_tensors: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    allow_delete: Any = True
    default_index: Any = field(default_factory=lambda: [{"start": None, "step": None, "stop": None}])
    version: Any = C.FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)
    present: frozenset[str] = field(default=frozenset(_DATASET_KEYS), compare=False)

    @classmethod
    def from_dict(cls, d: Any, key: str = C.DATASET_META_FILENAME) -> DatasetMeta:
        if not isinstance(d, dict) or "tensors" not in d:
            raise CorruptDataError("dataset meta has no 'tensors'", key)
        for name in _NAME_LISTS:
            if name in d and not _is_str_list(d[name]):
                raise CorruptDataError(f"dataset meta's {name!r} is not a list of names", key)
        names = d.get("tensor_names")
        if names is not None and not (isinstance(names, dict) and all(isinstance(v, str) for v in names.values())):
            raise CorruptDataError("dataset meta's 'tensor_names' is not a mapping of names to keys", key)
        check_version(d.get("version"), "This dataset")
        typed: dict[str, Any] = {k: v for k, v in d.items() if k in _DATASET_KEYS}
        extra = {k: _json_copy(v) for k, v in d.items() if k not in _DATASET_KEYS}
        # a reader relies on these three: an older document without them gets them written
        typed.setdefault("tensor_names", {k: k for k in typed["tensors"]})
        typed.setdefault("hidden_tensors", [])
        typed.setdefault("groups", [])
        if typed["tensor_names"] is None:
            typed["tensor_names"] = {k: k for k in typed["tensors"]}
        present = frozenset(typed)
        for name in _NAME_LISTS:
            typed[name] = tuple(typed[name])
        typed["tensor_names"] = dict(typed["tensor_names"])
        for name in ("allow_delete", "default_index", "version"):
            if name in typed:
                typed[name] = _json_copy(typed[name])
        return cls(**typed, extra=extra, present=present)

    @classmethod
    def from_bytes(cls, data: bytes, key: str = C.DATASET_META_FILENAME) -> DatasetMeta:
        return cls.from_dict(loads(data, key), key)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in self.present:
            v = getattr(self, k)
            out[k] = list(v) if k in _NAME_LISTS else dict(v) if k == "tensor_names" else _json_copy(v)
        out.update(_json_copy(dict(self.extra)))
        return out

    def to_bytes(self) -> bytes:
        return dumps(self.to_dict())

    @property
    def d(self) -> Mapping[str, Any]:
        """The document, read-only."""
        return MappingProxyType(self.to_dict())

    def copy(self) -> DatasetMeta:
        return self  # immutable

    # schema edits: each returns a new meta ---------------------------------------------------
    def _with(self, **changes: Any) -> DatasetMeta:
        return dataclasses.replace(self, **changes)

    def with_tensor(self, name: str, key: str, hidden: bool) -> DatasetMeta:
        """This meta with tensor `key` added under `name` (and listed hidden when `hidden`)."""
        return self._with(
            tensors=(*self.tensors, key),
            tensor_names={**self.tensor_names, name: key},
            hidden_tensors=(*self.hidden_tensors, key) if hidden else self.hidden_tensors,
        )

    def without_tensor(self, name: str) -> DatasetMeta:
        """This meta without the tensor named `name` (its key leaves every list)."""
        key = self.tensor_names[name]
        tensors = list(self.tensors)
        tensors.remove(key)  # the first occurrence only, as list.remove did before
        hidden = list(self.hidden_tensors)
        if key in hidden:
            hidden.remove(key)
        names = {n: k for n, k in self.tensor_names.items() if n != name}
        return self._with(tensors=tuple(tensors), tensor_names=names, hidden_tensors=tuple(hidden))

    def with_renamed_tensor(self, old: str, new: str) -> DatasetMeta:
        """This meta with tensor `old` named `new` (same key; the name moves to the end)."""
        names = {n: k for n, k in self.tensor_names.items() if n != old}
        names[new] = self.tensor_names[old]
        return self._with(tensor_names=names)

    def with_group(self, name: str) -> DatasetMeta:
        """This meta with group `name` listed (itself when it already is)."""
        return self if name in self.groups else self._with(groups=(*self.groups, name))


_NAME_LISTS = ("tensors", "hidden_tensors", "groups")
