"""Dataset and tensor metas: JSON documents that round-trip every key, known or not, so that
fields a newer writer adds survive our rewrite."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from lakeformat import constants as C
from lakeformat.errors import CorruptDataError, UnsupportedFormatVersionError


def dumps(d: Dict[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, indent=4).encode("utf-8")


def loads(data: bytes, key: str = "") -> Dict[str, Any]:
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, and ints past 4300 digits
        raise CorruptDataError(f"not a JSON document: {e}", key) from e
    except RecursionError:
        raise CorruptDataError("JSON document nested too deep", key) from None


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_dataset_meta(d: Dict[str, Any], key: str) -> None:
    """The fields a reader relies on have the types the layout gives them."""
    for name in ("tensors", "hidden_tensors", "groups"):
        if name in d and not _is_str_list(d[name]):
            raise CorruptDataError(f"dataset meta's {name!r} is not a list of names", key)
    names = d.get("tensor_names")
    if names is not None and not (isinstance(names, dict) and all(isinstance(v, str) for v in names.values())):
        raise CorruptDataError("dataset meta's 'tensor_names' is not a mapping of names to keys", key)


def _check_tensor_meta(d: Dict[str, Any], key: str) -> None:
    if d.get("htype") is not None and not isinstance(d["htype"], str):
        raise CorruptDataError(f"tensor meta's 'htype' is {d['htype']!r}, not a string", key)
    if "length" in d and not (_is_int(d["length"]) and d["length"] >= 0):
        raise CorruptDataError(f"tensor meta's 'length' is {d['length']!r}, not a count", key)
    for name in ("min_shape", "max_shape"):
        v = d.get(name)
        if v is not None and not (isinstance(v, list) and all(_is_int(x) for x in v)):
            raise CorruptDataError(f"tensor meta's {name!r} is not a list of integers", key)
    for name in ("dtype", "sample_compression", "chunk_compression", "typestr", "name"):
        v = d.get(name)
        if v is not None and not isinstance(v, str):
            raise CorruptDataError(f"tensor meta's {name!r} is {v!r}, not a string", key)
    for name in ("max_chunk_size", "tiling_threshold"):
        v = d.get(name)
        if v is not None and not _is_int(v):
            raise CorruptDataError(f"tensor meta's {name!r} is {v!r}, not an integer", key)


def check_version(version: Optional[str], where: str) -> None:
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


class DatasetMeta:
    """dataset_meta.json: the tensors (by key), their names, groups and hidden tensors."""

    def __init__(self, d: Optional[Dict[str, Any]] = None):
        self.d: Dict[str, Any] = d if d is not None else {
            "allow_delete": True,
            "default_index": [{"start": None, "step": None, "stop": None}],
            "groups": [],
            "hidden_tensors": [],
            "tensor_names": {},
            "tensors": [],
            "version": C.FORMAT_VERSION,
        }
        self.d.setdefault("tensor_names", {k: k for k in self.d.get("tensors", [])})
        self.d.setdefault("hidden_tensors", [])
        self.d.setdefault("groups", [])

    @classmethod
    def from_bytes(cls, data: bytes, key: str = C.DATASET_META_FILENAME) -> "DatasetMeta":
        d = loads(data, key)
        if not isinstance(d, dict) or "tensors" not in d:
            raise CorruptDataError("dataset meta has no 'tensors'", key)
        _check_dataset_meta(d, key)
        check_version(d.get("version"), "This dataset")
        return cls(d)

    def to_bytes(self) -> bytes:
        return dumps(self.d)

    def copy(self) -> "DatasetMeta":
        return DatasetMeta(json.loads(json.dumps(self.d)))

    @property
    def tensors(self) -> List[str]:
        return self.d["tensors"]

    @property
    def tensor_names(self) -> Dict[str, str]:
        """name -> key (a renamed tensor keeps its key)."""
        return self.d["tensor_names"]

    @property
    def hidden_tensors(self) -> List[str]:
        return self.d["hidden_tensors"]

    @property
    def groups(self) -> List[str]:
        return self.d["groups"]

    def add_tensor(self, name: str, key: str, hidden: bool) -> None:
        self.d["tensors"].append(key)
        self.d["tensor_names"][name] = key
        if hidden:
            self.d["hidden_tensors"].append(key)

    def remove_tensor(self, name: str) -> str:
        key = self.d["tensor_names"].pop(name)
        self.d["tensors"].remove(key)
        if key in self.d["hidden_tensors"]:
            self.d["hidden_tensors"].remove(key)
        return key

    def rename_tensor(self, old: str, new: str) -> None:
        key = self.d["tensor_names"].pop(old)
        self.d["tensor_names"][new] = key

    def add_group(self, name: str) -> None:
        if name not in self.d["groups"]:
            self.d["groups"].append(name)


class TensorMeta:
    """tensor_meta.json of one tensor."""

    def __init__(self, d: Dict[str, Any]):
        self.d = d

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
        extra: Dict[str, Any],
    ) -> "TensorMeta":
        d: Dict[str, Any] = {
            "chunk_compression": chunk_compression,
            "dtype": dtype,
            "hidden": hidden,
            "htype": htype,
            "is_link": is_link,
            "is_sequence": is_sequence,
            "length": 0,
            "links": {},
            "max_chunk_size": max_chunk_size,
            "max_shape": [],
            "min_shape": [],
            "name": name,
            "sample_compression": sample_compression,
            "tiling_threshold": tiling_threshold,
            "typestr": None,
            "verify": True,
            "version": C.FORMAT_VERSION,
        }
        d.update(extra)
        return cls(d)

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "TensorMeta":
        d = loads(data, key)
        if not isinstance(d, dict) or "htype" not in d:
            raise CorruptDataError("tensor meta has no 'htype'", key)
        _check_tensor_meta(d, key)
        check_version(d.get("version"), f"Tensor meta {key!r}")
        return cls(d)

    def to_bytes(self) -> bytes:
        return dumps(self.d)

    def copy(self) -> "TensorMeta":
        return TensorMeta(json.loads(json.dumps(self.d)))

    # plain accessors -------------------------------------------------------------------------
    def __getattr__(self, item: str) -> Any:
        d = self.__dict__.get("d")
        if d is not None and item in d:
            return d[item]
        if item in ("zstd_level", "class_names", "coords"):
            return None
        raise AttributeError(item)

    def set(self, key: str, value: Any) -> None:
        self.d[key] = value

    @property
    def base_htype(self) -> str:
        return self.d.get("htype") or "generic"

    @property
    def length(self) -> int:
        return int(self.d.get("length", 0))

    @length.setter
    def length(self, n: int) -> None:
        self.d["length"] = int(n)

    @property
    def ndim(self) -> Optional[int]:
        ms = self.d.get("min_shape") or []
        return len(ms) if ms or self.length else None

    def update_shape_interval(self, min_shape, max_shape) -> None:
        cur_min, cur_max = self.d.get("min_shape") or [], self.d.get("max_shape") or []
        if not cur_min and not cur_max:
            self.d["min_shape"], self.d["max_shape"] = [int(x) for x in min_shape], [int(x) for x in max_shape]
            return
        self.d["min_shape"] = [int(min(a, b)) for a, b in zip(cur_min, min_shape)]
        self.d["max_shape"] = [int(max(a, b)) for a, b in zip(cur_max, max_shape)]
