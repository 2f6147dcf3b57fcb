"""htypes: what a tensor's samples mean, as one table.

One record per htype: its default dtype, the keys deeplake 3.x stores in its tensor meta (and
which of them live in tensor_info.json instead), how its samples are stored (text-like: one
UTF-8/JSON document per sample; json-like: a JSON value; list-like: a list of strings), and
which hidden tensors it gets. Code asks the table (``htype_of(base).text_like``) instead of
comparing names. The defaults and meta keys follow deeplake 3.x so that a tensor meta we write
reads the same there.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Optional

from lakeformat.errors import HtypeError

__all__ = [
    "HTYPES", "HTYPE_DEFAULTS", "Htype", "NON_NUMERIC_DTYPES", "SAMPLE_INFO_HTYPES", "TEXT_HTYPES",
    "creates_info_tensor", "creates_shape_tensor", "htype_of", "htype_string", "is_link_htype", "is_numeric_dtype",
    "is_sequence_htype",
    "check_compressions", "is_text_like", "parse_htype",
]

# dtype names a tensor meta gives samples that are no NumPy array of numbers
NON_NUMERIC_DTYPES: tuple[Optional[str], ...] = (None, "str", "Any", "List")
_IMAGE_SAMPLE_COMPRESSIONS = ("png", "jpeg")


@dataclass(frozen=True)
class Htype:
    """One htype's facts."""

    name: str
    dtype: Optional[str]
    # keys (besides dtype) deeplake writes into a new tensor's meta, with their defaults
    meta_defaults: Mapping[str, Any] = field(default_factory=dict)
    # which of those live in tensor_info.json (the meta keeps the default)
    info_keys: tuple[str, ...] = ()
    text_like: bool = False  # one text/JSON document per sample, no numeric array
    json_like: bool = False  # samples are JSON values (dicts, lists...)
    list_like: bool = False  # samples are lists of strings; numpy() gives them as arrays
    image_like: bool = False  # decoded images: a sample_info tensor and image codecs
    label: bool = False  # class indices with names in the tensor info
    pixels: bool = False  # samples may be image files (a linked one is decoded as an image)
    shape_tensor: bool = True  # gets a hidden _shape tensor

    @property
    def allows_image_compression(self) -> bool:
        """Whether png/jpeg may compress its samples or chunks (not text-like samples)."""
        return not self.text_like

    def defaults(self) -> dict[str, Any]:
        """The meta keys of a new tensor of this htype, as deeplake's htype config gives them
        (``dtype``, the htype's own keys and, when it has some, ``_info``)."""
        out: dict[str, Any] = {"dtype": self.dtype}
        out.update({k: _fresh(v) for k, v in self.meta_defaults.items()})
        if self.info_keys:
            out["_info"] = list(self.info_keys)
        return out


def _fresh(v: Any) -> Any:
    return list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v


def _h(name: str, dtype: Optional[str], **kw: Any) -> Htype:
    if kw.get("image_like"):
        kw.setdefault("pixels", True)
    return Htype(name, dtype, **kw)


_TABLE = (
    _h("generic", None),
    _h("image", "uint8", meta_defaults={"intrinsics": None}, info_keys=("intrinsics",), image_like=True),
    _h("image.rgb", "uint8", image_like=True),
    _h("image.gray", "uint8", image_like=True),
    _h("class_label", "uint32", meta_defaults={"class_names": [], "_disable_temp_transform": False},
       info_keys=("class_names",), label=True),
    _h("bbox", "float32", meta_defaults={"coords": {}}, info_keys=("coords",)),
    _h("bbox.3d", "float32", meta_defaults={"coords": {}}, info_keys=("coords",)),
    _h("binary_mask", "bool", pixels=True),
    _h("segment_mask", "uint32", meta_defaults={"class_names": []}, info_keys=("class_names",), pixels=True),
    _h("instance_label", "uint32"),
    _h("keypoints_coco", "int32", meta_defaults={"keypoints": [], "connections": []},
       info_keys=("keypoints", "connections")),
    _h("point", "int32"),
    _h("embedding", "float32", meta_defaults={"vdb_indexes": []}),
    _h("text", "str", meta_defaults={"vdb_indexes": []}, text_like=True, shape_tensor=False),
    _h("json", "Any", text_like=True, json_like=True, shape_tensor=False),
    _h("list", "List", text_like=True, json_like=True, list_like=True),
    _h("tag", "List", text_like=True, json_like=True, list_like=True, shape_tensor=False),
    _h("intrinsics", "float32"),
    _h("polygon", "float32"),
    _h("point_cloud", "float32"),
    _h("audio", "float64"),
)

HTYPES: Mapping[str, Htype] = MappingProxyType({h.name: h for h in _TABLE})

# older names, derived from the table (callers elsewhere still read them)
TEXT_HTYPES: tuple[str, ...] = tuple(h.name for h in _TABLE if h.text_like)
SAMPLE_INFO_HTYPES: tuple[str, ...] = tuple(h.name for h in _TABLE if h.image_like)
# htype -> defaults stored in tensor_meta.json (keys listed in "_info" live in tensor_info.json)
HTYPE_DEFAULTS: dict[str, dict[str, Any]] = {h.name: h.defaults() for h in _TABLE}


def htype_of(base: Optional[str]) -> Htype:
    """The record of a base htype (no sequence[]/link[]); unknown names read as generic, as a
    meta from a newer writer may name an htype this table lacks."""
    return HTYPES.get(base or "generic") or HTYPES["generic"]


def parse_htype(htype: Optional[str]) -> tuple[str, bool, bool]:
    """'sequence[link[image]]' -> ('image', is_sequence=True, is_link=True)."""
    if htype is None:
        return "generic", False, False
    h = htype.strip()
    is_sequence = is_link = False
    if h.startswith("sequence[") and h.endswith("]"):
        is_sequence, h = True, h[len("sequence["):-1]
    if h.startswith("link[") and h.endswith("]"):
        is_link, h = True, h[len("link["):-1]
    if h.startswith("sequence["):
        raise HtypeError(f"htype {htype!r}: write sequence[link[X]], not link[sequence[X]]")
    if h == "link":
        raise HtypeError("link needs an inner htype, e.g. 'link[image]'")
    if h not in HTYPES:
        raise HtypeError(f"Unknown htype {htype!r}. Known: {', '.join(sorted(HTYPES))}")
    return h, is_sequence, is_link


def is_link_htype(htype: Optional[str]) -> bool:
    """Whether an htype string names links ('link[image]'), without checking the rest."""
    return bool(htype) and str(htype).strip().startswith("link[")


def is_sequence_htype(htype: Optional[str]) -> bool:
    """Whether an htype string names a sequence ('sequence[...]'), without checking the rest."""
    return bool(htype) and str(htype).strip().startswith("sequence[")


def htype_string(base: str, is_sequence: bool, is_link: bool) -> str:
    h = f"link[{base}]" if is_link else base
    return f"sequence[{h}]" if is_sequence else h


def creates_shape_tensor(base: str) -> bool:
    return htype_of(base).shape_tensor


def creates_info_tensor(base: str) -> bool:
    return htype_of(base).image_like


def is_text_like(base: Optional[str]) -> bool:
    return htype_of(base).text_like


def is_numeric_dtype(dtype: Optional[str]) -> bool:
    """Whether a meta's dtype names a NumPy number type (not None, "str", "Any", "List")."""
    return dtype not in NON_NUMERIC_DTYPES


def check_compressions(base: str, sample_compression: Optional[str], chunk_compression: Optional[str], where: str) -> None:
    """Refuse image codecs on text-like samples (they hold no pixels)."""
    rec = htype_of(base)
    if rec.allows_image_compression:
        return
    for kind, c in (("sample", sample_compression), ("chunk", chunk_compression)):
        if c in _IMAGE_SAMPLE_COMPRESSIONS:
            raise HtypeError(f"{where}: {kind}_compression {c!r} is for images, not {base!r} samples")
