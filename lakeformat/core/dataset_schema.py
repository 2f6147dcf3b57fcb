"""Tensor and group management of a `Dataset`: create, delete and rename tensors, groups, and
the hidden tensors (`_<t>_shape`, `_<t>_id`, `_<t>_info`) that come with them. Mixed into
`Dataset`, whose state and engines it works on."""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union, cast

import numpy as np

from lakeformat import constants as C
from lakeformat.codecs import CHUNK_COMPRESSIONS, SAMPLE_COMPRESSIONS
from lakeformat.codecs.image_codecs import normalize_image_compression
from lakeformat.core import keys
from lakeformat.core.chunk_engine import ChunkEngine
from lakeformat.core.meta import TensorMeta
from lakeformat.core.tensor import Tensor
from lakeformat.errors import (
    HtypeError,
    InvalidTensorNameError,
    TensorAlreadyExistsError,
    TensorDoesNotExistError,
)
from lakeformat.htypes import (
    HTYPE_DEFAULTS,
    check_compressions,
    creates_info_tensor,
    creates_shape_tensor,
    htype_of,
    parse_htype,
)

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset
    from lakeformat.core.index import Index
    from lakeformat.core.meta import DatasetMeta
    from lakeformat.core.session import Session

logger = logging.getLogger(__name__)

HIDDEN_CHUNK_COMPRESSION = "lz4"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class SchemaOps:
    """create_tensor / create_group / delete_tensor / rename_tensor, for `Dataset`."""

    if TYPE_CHECKING:  # what `Dataset` gives the mixin (its state and helpers)
        @property
        def session(self) -> Session: ...
        index: Index
        group: str

        def __init__(self, state: Session, index: Optional[Index] = None, group: str = "") -> None: ...
        @property
        def meta(self) -> DatasetMeta: ...
        def _check_writable_view(self) -> None: ...
        def _full_name(self, name: str) -> str: ...
        def _tensor(self, name: str) -> Tensor: ...
        def _autoflush(self) -> None: ...
        def flush(self) -> None: ...

    def create_tensor(
        self,
        name: str,
        htype: Optional[str] = None,
        dtype: Optional[Union[str, np.dtype[Any], type]] = None,
        sample_compression: Optional[str] = None,
        chunk_compression: Optional[str] = None,
        hidden: bool = False,
        create_sample_info_tensor: bool = True,
        create_shape_tensor: bool = True,
        create_id_tensor: bool = True,
        verify: bool = True,
        exist_ok: bool = False,
        max_chunk_size: Optional[int] = None,
        tiling_threshold: Optional[int] = None,
        class_names: Optional[Sequence[str]] = None,
        chunk_compression_level: Optional[int] = None,
        nullable: bool = False,
        **kwargs: Any,
    ) -> Tensor:
        """Create a tensor. `htype` is one of lakeformat.htypes (`image`, `class_label`,
        `text`, `json`, `bbox`, `embedding`...), optionally inside `sequence[...]` and/or
        `link[...]`. `sample_compression`: png, jpeg, lz4, zstd; `chunk_compression`: lz4 or
        zstd (zstd is our extension: deeplake 3.x cannot read it). `nullable=True` keeps a
        None of a numeric tensor as a typed null (a placeholder plus a hidden validity tensor,
        lakeformat.core.nulls) instead of deeplake 3.x's empty sample."""
        self._check_writable_view()
        full = self._full_name(name)
        if not full or any(not _NAME_RE.match(p) for p in full.split("/")):
            raise InvalidTensorNameError(f"{name!r} is not a valid tensor name (letters, digits, '_', '-', '.', groups with '/')")
        if full in self.meta.tensor_names or full in self.meta.groups:
            if exist_ok and full in self.meta.tensor_names:
                return self._tensor(name)
            raise TensorAlreadyExistsError(full)
        if full in dir(type(self)):
            raise InvalidTensorNameError(f"{name!r} is the name of a Dataset attribute")
        base, is_seq, is_link = parse_htype(htype)
        sample_compression = normalize_image_compression(sample_compression)
        chunk_compression = normalize_image_compression(chunk_compression) if chunk_compression else None
        if sample_compression not in SAMPLE_COMPRESSIONS:
            raise HtypeError(f"tensor {full!r}: sample_compression {sample_compression!r} is not one of {SAMPLE_COMPRESSIONS[1:]}")
        if chunk_compression not in CHUNK_COMPRESSIONS:
            raise HtypeError(f"tensor {full!r}: chunk_compression {chunk_compression!r} is not one of {CHUNK_COMPRESSIONS[1:]}")
        if sample_compression and chunk_compression:
            raise HtypeError(f"tensor {full!r}: give sample_compression or chunk_compression, not both")
        defaults = dict(HTYPE_DEFAULTS[base])
        if dtype is not None:
            if htype_of(base).text_like:
                raise HtypeError(f"tensor {full!r}: htype {base} takes no dtype")
            try:
                dtype_name: Optional[str] = np.dtype(dtype).name
            except TypeError as e:
                raise HtypeError(f"tensor {full!r}: bad dtype {dtype!r}: {e}") from None
        else:
            dtype_name = defaults.get("dtype")
        check_compressions(base, sample_compression, chunk_compression, f"tensor {full!r}")
        if "jpeg" in (sample_compression, chunk_compression) and dtype_name not in (None, "uint8"):
            raise HtypeError(f"tensor {full!r}: jpeg stores uint8 only, not {dtype_name}")
        if is_link and sample_compression is None and base.startswith("image"):
            sample_compression = None
        if max_chunk_size is not None and int(max_chunk_size) <= 0:
            raise HtypeError("max_chunk_size must be positive")
        extra: Dict[str, Any] = {k: v for k, v in defaults.items() if k != "dtype"}
        if class_names is not None:
            if base not in ("class_label", "segment_mask"):
                raise HtypeError(f"tensor {full!r}: class_names is for class_label tensors")
            extra["class_names"] = list(class_names)
            if class_names:
                extra["class_names_fixed"] = True  # our key: labels outside the names are errors
        for k, v in kwargs.items():
            if k not in extra and k not in ("coords", "keypoints", "connections", "intrinsics"):
                raise HtypeError(f"tensor {full!r}: unknown option {k!r}")
            extra[k] = v
        if chunk_compression == "zstd" and chunk_compression_level is not None:
            extra["zstd_level"] = int(chunk_compression_level)
        if not verify:
            extra["verify"] = False
        meta = TensorMeta.new(
            full, base, dtype_name, sample_compression, chunk_compression,
            int(max_chunk_size) if max_chunk_size else None,
            int(tiling_threshold) if tiling_threshold is not None else None,
            hidden, is_seq, is_link, extra,
        )
        if not verify:
            meta = meta.replace(verify=False)
        key = full
        if self._tensor_folder(key) in self.session.dropped:
            self.flush()  # a deleted tensor of this name: its folder goes before the new one is made
        eng = ChunkEngine(key, self.session.storage, self.session.vs, meta)
        if class_names is not None:
            eng.info["class_names"] = list(class_names)
        if nullable:
            eng.info["nullable"] = True
        self.session.add_engine(eng)
        self.session.meta = self.session.meta.with_tensor(full, key, hidden)
        self.register_groups(full)
        self.session.meta_dirty = True
        if not hidden:
            make_info = create_sample_info_tensor and creates_info_tensor(base) and verify
            make_shape = create_shape_tensor and creates_shape_tensor(base) and (verify or not is_link)
            if make_info:
                self._create_hidden(key, "info", "json", None, "extend_info", "update_info", True)
            if make_shape:
                self._create_hidden(key, "shape", "generic", "int64", "extend_shape", "update_shape", True)
            if create_id_tensor:
                self._create_hidden(key, "id", "generic", "uint64", "extend_id", None, False)
        self._autoflush()
        return self._tensor(name)

    def _create_hidden(self, parent: str, kind: str, htype: str, dtype: Optional[str], extend: str, update: Optional[str], flatten: bool) -> None:
        hkey = keys.hidden_key(parent, kind)
        base = htype
        extra = {k: v for k, v in HTYPE_DEFAULTS[base].items() if k != "dtype"}
        # lz4 chunks (which deeplake 3.x reads and appends to): a scalar tensor's shapes are
        # one value repeated and its ids about half a byte each (sample_ids.py), so its hidden
        # tensors cost next to nothing at rest
        meta = TensorMeta.new(hkey, base, dtype or HTYPE_DEFAULTS[base]["dtype"], None, HIDDEN_CHUNK_COMPRESSION,
                              C.HIDDEN_TENSOR_MAX_CHUNK_SIZE, None, True, False, False, extra)
        meta = meta.without("vdb_indexes")
        self.session.add_engine(ChunkEngine(hkey, self.session.storage, self.session.vs, meta))
        self.session.meta = self.session.meta.with_tensor(hkey, hkey, True)
        link = {"extend": extend, "flatten_sequence": flatten}
        if update:
            link["update"] = update
        pm = self.session.engine(parent).meta
        links = dict(pm.links or {})
        links[hkey] = link
        self.session.engine(parent).set_meta(links=links)

    def register_groups(self, full: str) -> None:
        """Make the groups that hold tensor (or group) `full`, as the dataset meta lists them."""
        parts = full.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.session.meta = self.session.meta.with_group("/".join(parts[:i]))

    def create_group(self, name: str, exist_ok: bool = False) -> "Dataset":
        self._check_writable_view()
        full = self._full_name(name)
        if full in self.meta.tensor_names:
            raise TensorAlreadyExistsError(full)
        if full in self.meta.groups and not exist_ok:
            raise TensorAlreadyExistsError(full)
        self.register_groups(full + "/x")
        self.session.meta_dirty = True
        self._autoflush()
        # the mixin is only ever a Dataset (or its subclass, the View)
        return cast("Dataset", type(self)(self.session, self.index, full))

    def delete_tensor(self, name: str, large_ok: bool = True) -> None:
        self._check_writable_view()
        full = self._full_name(name)
        if full not in self.meta.tensor_names:
            raise TensorDoesNotExistError(full)
        key = self.meta.tensor_names[full]
        eng = self.session.engine(key)
        mask = eng.info.get("null_mask")  # the validity tensor (lakeformat.core.nulls) goes too
        for hidden in list((eng.meta.links or {}).keys()) + ([mask] if isinstance(mask, str) else []):
            if hidden in self.meta.tensors:
                hname = next(n for n, k in self.meta.tensor_names.items() if k == hidden)
                self.session.meta = self.session.meta.without_tensor(hname)
                self._drop_tensor_files(hidden)
        self.session.meta = self.session.meta.without_tensor(full)
        self._drop_tensor_files(key)
        self.session.diff.tensor_deleted(full)
        self.session.meta_dirty = True
        self._autoflush()

    def _drop_tensor_files(self, key: str) -> None:
        """Forget a tensor; its folder goes once the flush that drops it from the dataset
        meta is published (before that, a crash must leave it whole)."""
        st = self.session
        st.forget_engine(key)
        st.schema_edited = True
        st.dropped.append(self._tensor_folder(key))

    def _tensor_folder(self, key: str) -> str:
        c = self.session.vs.commit_id
        return f"{key}/" if c == C.FIRST_COMMIT_ID else f"versions/{c}/{key}/"

    def rename_tensor(self, name: str, new_name: str) -> Tensor:
        self._check_writable_view()
        full, new_full = self._full_name(name), self._full_name(new_name)
        if full not in self.meta.tensor_names:
            raise TensorDoesNotExistError(full)
        if new_full in self.meta.tensor_names:
            raise TensorAlreadyExistsError(new_full)
        if any(not _NAME_RE.match(p) for p in new_full.split("/")):
            raise InvalidTensorNameError(f"{new_name!r} is not a valid tensor name")
        key = self.meta.tensor_names[full]
        self.session.meta = self.session.meta.with_renamed_tensor(full, new_full)
        self.session.engine(key).set_meta(name=new_full)
        self.session.engine(key).meta_dirty = True
        self.session.schema_edited = True  # two objects (tensor and dataset meta) change together
        self.register_groups(new_full)
        self.session.diff.tensor_renamed(full, new_full)
        self.session.meta_dirty = True
        self._autoflush()
        return self._tensor(new_name)

    # ==========================================================================================
    # writes
