"""htypes: what a tensor's samples mean, their default dtype and the rules they obey.

The defaults and meta keys follow deeplake 3.x so that a tensor meta we write reads the same
there.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from lakeformat.errors import HtypeError

TEXT_HTYPES = ("text", "json", "list", "tag")

# htype -> defaults stored in tensor_meta.json (keys listed in "_info" live in tensor_info.json)
HTYPE_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "generic": {"dtype": None},
    "image": {"dtype": "uint8", "intrinsics": None, "_info": ["intrinsics"]},
    "image.rgb": {"dtype": "uint8"},
    "image.gray": {"dtype": "uint8"},
    "class_label": {"dtype": "uint32", "class_names": [], "_info": ["class_names"], "_disable_temp_transform": False},
    "bbox": {"dtype": "float32", "coords": {}, "_info": ["coords"]},
    "bbox.3d": {"dtype": "float32", "coords": {}, "_info": ["coords"]},
    "binary_mask": {"dtype": "bool"},
    "segment_mask": {"dtype": "uint32", "class_names": [], "_info": ["class_names"]},
    "instance_label": {"dtype": "uint32"},
    "keypoints_coco": {"dtype": "int32", "keypoints": [], "connections": [], "_info": ["keypoints", "connections"]},
    "point": {"dtype": "int32"},
    "embedding": {"dtype": "float32", "vdb_indexes": []},
    "text": {"dtype": "str", "vdb_indexes": []},
    "json": {"dtype": "Any"},
    "list": {"dtype": "List"},
    "tag": {"dtype": "List"},
    "intrinsics": {"dtype": "float32"},
    "polygon": {"dtype": "float32"},
    "point_cloud": {"dtype": "float32"},
    "audio": {"dtype": "float64"},
}

# Which hidden tensors each htype gets (deeplake 3.x's rules).
SAMPLE_INFO_HTYPES = ("image", "image.rgb", "image.gray")


def parse_htype(htype: Optional[str]) -> Tuple[str, bool, bool]:
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
    if h not in HTYPE_DEFAULTS:
        raise HtypeError(f"Unknown htype {htype!r}. Known: {', '.join(sorted(HTYPE_DEFAULTS))}")
    return h, is_sequence, is_link


def htype_string(base: str, is_sequence: bool, is_link: bool) -> str:
    h = f"link[{base}]" if is_link else base
    return f"sequence[{h}]" if is_sequence else h


def creates_shape_tensor(base: str) -> bool:
    return base not in ("text", "json", "tag")


def creates_info_tensor(base: str) -> bool:
    return base in SAMPLE_INFO_HTYPES


def is_text_like(base: str) -> bool:
    return base in TEXT_HTYPES
