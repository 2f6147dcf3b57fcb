"""`Dataset`: tensors (columns) under one storage root, at one commit, plus views of them.

A `Dataset` object is a handle: its index (all samples, or a selection) and group prefix, over
a `_DatasetState` that every view of the same open dataset shares.
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat import constants as C
from lakeformat.codecs import CHUNK_COMPRESSIONS, SAMPLE_COMPRESSIONS
from lakeformat.codecs.image_codecs import normalize_image_compression
from lakeformat.core import keys
from lakeformat.core.chunk_engine import ChunkEngine
from lakeformat.core.index import Index
from lakeformat.core.links import LinkCreds, LinkResolver
from lakeformat.core.meta import DatasetMeta, TensorMeta
from lakeformat.core.serialize import Context, Serializer, SerializedBatch
from lakeformat.core.tensor import Tensor
from lakeformat.core.version_state import VersionState
from lakeformat.errors import (
    HtypeError,
    InvalidTensorNameError,
    LakeFormatError,
    ReadOnlyError,
    SampleError,
    TensorAlreadyExistsError,
    TensorDoesNotExistError,
)
from lakeformat.htypes import (
    HTYPE_DEFAULTS,
    creates_info_tensor,
    creates_shape_tensor,
    parse_htype,
)
from lakeformat.storage import StorageProvider
from lakeformat.version_control.objects import DatasetDiff

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# sealed chunks are written early once this many bytes wait in memory (the metas still point
# at the old state, so an early write is invisible until the next flush)
STAGED_BYTES_LIMIT = 64 * 1024 * 1024


class _DatasetState:
    def __init__(self, storage: StorageProvider, vs: VersionState, read_only: bool, path: str):
        self.storage = storage
        self.vs = vs
        self.read_only = read_only
        self.path = path
        self.engines: Dict[str, ChunkEngine] = {}
        self.lock = threading.RLock()
        self.with_depth = 0
        self.link_creds = LinkCreds.load(storage)
        self.links = LinkResolver(self.link_creds)
        self.load_commit(vs.commit_id)

    def load_commit(self, commit_id: str) -> None:
        self.vs.commit_id = commit_id
        self.engines = {}
        mk = keys.dataset_meta_key(commit_id)
        try:
            self.meta = DatasetMeta.from_bytes(self.storage.get(mk), mk)
        except KeyError:
            self.meta = DatasetMeta()
        self.meta_dirty = False
        try:
            self.info: Dict[str, Any] = json.loads(self.storage.get(keys.dataset_info_key(commit_id)))
        except KeyError:
            self.info = {}
        self.info_dirty = False
        try:
            self.diff = DatasetDiff.from_bytes(self.storage.get(keys.dataset_diff_key(commit_id)))
        except KeyError:
            self.diff = DatasetDiff()
        self.tree_dirty = False
        # a marker left by a flush that did not finish: roll its tensors back to before it
        try:
            self.rollback: Dict[str, int] = json.loads(self.storage.get(keys.flush_marker_key(commit_id)))["lengths"]
        except (KeyError, ValueError):
            self.rollback = {}


class Dataset:
    """A dataset of tensors.

    >>> ds = lakeformat.empty("./animals", overwrite=True)        # doctest: +SKIP
    >>> with ds:                                                   # doctest: +SKIP
    ...     ds.create_tensor("images", htype="image", sample_compression="png")
    ...     ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    ...     ds.append({"images": np.zeros((32, 32, 3), np.uint8), "labels": "dog"})
    """

    def __init__(self, state: _DatasetState, index: Optional[Index] = None, group: str = ""):
        self.__dict__["_state"] = state
        self.__dict__["index"] = index or Index()
        self.__dict__["group"] = group

    # ==========================================================================================
    # basic properties
    @property
    def path(self) -> str:
        return self._state.path

    @property
    def storage(self) -> StorageProvider:
        return self._state.storage

    @property
    def read_only(self) -> bool:
        return self._state.read_only or not self._state.vs.is_head

    @property
    def meta(self) -> DatasetMeta:
        return self._state.meta

    @property
    def version_state(self) -> VersionState:
        return self._state.vs

    @property
    def is_view(self) -> bool:
        return self.index.samples is not None

    @property
    def _links(self) -> LinkResolver:
        return self._state.links

    def _engine(self, key: str) -> ChunkEngine:
        st = self._state
        eng = st.engines.get(key)
        if eng is None:
            with st.lock:
                eng = st.engines.get(key)
                if eng is None:
                    eng = ChunkEngine(key, st.storage, st.vs)
                    st.engines[key] = eng
                    if key in st.rollback:
                        eng.clamp(int(st.rollback[key]))
                    self._align_hidden(eng)
        return eng

    def _align_hidden(self, eng: ChunkEngine) -> None:
        """Hidden tensors are flushed before their parent; after a crash one may be ahead of
        it. The parent's meta is the commit point: clamp them to it."""
        st = self._state
        for hkey, link in (eng.meta.links or {}).items():
            if hkey not in st.meta.tensors or hkey in st.engines:
                continue
            h = ChunkEngine(hkey, st.storage, st.vs)
            st.engines[hkey] = h
            if hkey in st.rollback:
                h.clamp(int(st.rollback[hkey]))
            want = eng.num_items if link.get("flatten_sequence") else eng.num_samples
            if h.num_samples > want and h.seq is None:
                h.clamp(want)

    def _full_name(self, name: str) -> str:
        name = name.strip("/")
        return posixpath.join(self.group, name) if self.group else name

    # ==========================================================================================
    # tensors and groups
    @property
    def tensors(self) -> Dict[str, Tensor]:
        """Visible tensors of this dataset (or group), by name relative to it."""
        out = {}
        prefix = self.group + "/" if self.group else ""
        for name, key in self.meta.tensor_names.items():
            if key in self.meta.hidden_tensors or not name.startswith(prefix):
                continue
            out[name[len(prefix):]] = Tensor(name, key, self, self.index)
        return out

    @property
    def _all_tensors(self) -> Dict[str, Tensor]:
        return {name: Tensor(name, key, self, self.index) for name, key in self.meta.tensor_names.items()}

    @property
    def groups(self) -> Dict[str, "Dataset"]:
        prefix = self.group + "/" if self.group else ""
        out = {}
        for g in self.meta.groups:
            if g.startswith(prefix) and "/" not in g[len(prefix):]:
                out[g[len(prefix):]] = Dataset(self._state, self.index, g)
        return out

    def _tensor(self, name: str) -> Tensor:
        full = self._full_name(name)
        key = self.meta.tensor_names.get(full)
        if key is None:
            raise TensorDoesNotExistError(full)
        return Tensor(full, key, self, self.index)

    def __getitem__(self, item: Any) -> Union[Tensor, "Dataset"]:
        if isinstance(item, str):
            full = self._full_name(item)
            if full in self.meta.tensor_names:
                return self._tensor(item)
            if full in self.meta.groups:
                return Dataset(self._state, self.index, full)
            raise TensorDoesNotExistError(full)
        if isinstance(item, (list, tuple)) and item and all(isinstance(x, str) for x in item):
            raise LakeFormatError("selecting several tensors by name is not supported; index them one by one")
        return Dataset(self._state, self.index.compose(item, self._base_length()), self.group)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except TensorDoesNotExistError:
            raise AttributeError(f"Dataset has no attribute, tensor or group {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"cannot set {name!r}: assign samples with ds.{name}.append(...) or ds.{name}[i] = ...")

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _base_length(self) -> int:
        lengths = [t.num_samples for t in self._visible_full_tensors()]
        return min(lengths) if lengths else 0

    def _visible_full_tensors(self) -> List[Tensor]:
        return [Tensor(n, k, self, Index()) for n, k in self.meta.tensor_names.items() if k not in self.meta.hidden_tensors and (not self.group or n.startswith(self.group + "/"))]

    def __len__(self) -> int:
        return self.index.length(self._base_length())

    @property
    def num_samples(self) -> int:
        return len(self)

    @property
    def max_len(self) -> int:
        lengths = [t.num_samples for t in self._visible_full_tensors()]
        return max(lengths) if lengths else 0

    def _check_writable(self) -> None:
        if self._state.read_only:
            raise ReadOnlyError(f"Dataset {self.path!r} was opened read-only.")
        if not self._state.vs.is_head:
            raise ReadOnlyError(
                f"Dataset {self.path!r} is at commit {self._state.vs.commit_id}, which is read-only; "
                "check out a branch to write (ds.checkout('main'), or ds.checkout('new', create=True))."
            )

    def _check_writable_view(self) -> None:
        self._check_writable()
        if self.is_view:
            raise ReadOnlyError("A view of a dataset is read-only; write through the dataset itself.")

    def create_tensor(
        self,
        name: str,
        htype: Optional[str] = None,
        dtype: Optional[Union[str, np.dtype, type]] = None,
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
        **kwargs: Any,
    ) -> Tensor:
        """Create a tensor. `htype` is one of lakeformat.htypes (`image`, `class_label`,
        `text`, `json`, `bbox`, `embedding`...), optionally inside `sequence[...]` and/or
        `link[...]`. `sample_compression`: png, jpeg, lz4, zstd; `chunk_compression`: lz4 or
        zstd (zstd is our extension: deeplake 3.x cannot read it)."""
        self._check_writable_view()
        full = self._full_name(name)
        if not full or any(not _NAME_RE.match(p) for p in full.split("/")):
            raise InvalidTensorNameError(f"{name!r} is not a valid tensor name (letters, digits, '_', '-', '.', groups with '/')")
        if full in self.meta.tensor_names or full in self.meta.groups:
            if exist_ok and full in self.meta.tensor_names:
                return self._tensor(name)
            raise TensorAlreadyExistsError(full)
        if full in dir(Dataset):
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
            if base in ("text", "json", "list", "tag"):
                raise HtypeError(f"tensor {full!r}: htype {base} takes no dtype")
            try:
                dtype_name: Optional[str] = np.dtype(dtype).name
            except TypeError as e:
                raise HtypeError(f"tensor {full!r}: bad dtype {dtype!r}: {e}") from None
        else:
            dtype_name = defaults.get("dtype")
        if base in ("text", "json", "list", "tag") and sample_compression in ("png", "jpeg"):
            raise HtypeError(f"tensor {full!r}: {base} samples cannot be {sample_compression}-compressed")
        if chunk_compression in ("png", "jpeg") and base in ("text", "json", "list", "tag"):
            raise HtypeError(f"tensor {full!r}: {base} chunks cannot be {chunk_compression}-compressed")
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
            meta.set("verify", False)
        key = full
        eng = ChunkEngine(key, self._state.storage, self._state.vs, meta)
        if class_names is not None:
            eng.info["class_names"] = list(class_names)
        self._state.engines[key] = eng
        self.meta.add_tensor(full, key, hidden)
        self._register_groups(full)
        self._state.meta_dirty = True
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
        meta = TensorMeta.new(hkey, base, dtype or HTYPE_DEFAULTS[base]["dtype"], None, None, C.HIDDEN_TENSOR_MAX_CHUNK_SIZE, None, True, False, False, extra)
        meta.d.pop("vdb_indexes", None)
        self._state.engines[hkey] = ChunkEngine(hkey, self._state.storage, self._state.vs, meta)
        self.meta.add_tensor(hkey, hkey, True)
        link = {"extend": extend, "flatten_sequence": flatten}
        if update:
            link["update"] = update
        pm = self._engine(parent).meta
        links = dict(pm.links or {})
        links[hkey] = link
        pm.set("links", links)

    def _register_groups(self, full: str) -> None:
        parts = full.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.meta.add_group("/".join(parts[:i]))

    def create_group(self, name: str, exist_ok: bool = False) -> "Dataset":
        self._check_writable_view()
        full = self._full_name(name)
        if full in self.meta.tensor_names:
            raise TensorAlreadyExistsError(full)
        if full in self.meta.groups and not exist_ok:
            raise TensorAlreadyExistsError(full)
        self._register_groups(full + "/x")
        self._state.meta_dirty = True
        self._autoflush()
        return Dataset(self._state, self.index, full)

    def delete_tensor(self, name: str, large_ok: bool = True) -> None:
        self._check_writable_view()
        full = self._full_name(name)
        if full not in self.meta.tensor_names:
            raise TensorDoesNotExistError(full)
        key = self.meta.tensor_names[full]
        eng = self._engine(key)
        for hidden in list((eng.meta.links or {}).keys()):
            if hidden in self.meta.tensors:
                self.meta.remove_tensor(next(n for n, k in self.meta.tensor_names.items() if k == hidden))
                self._drop_tensor_files(hidden)
        self.meta.remove_tensor(full)
        self._drop_tensor_files(key)
        self._state.diff.tensor_deleted(full)
        self._state.meta_dirty = True
        self._autoflush()

    def _drop_tensor_files(self, key: str) -> None:
        st = self._state
        st.engines.pop(key, None)
        if st.vs.commit_id == C.FIRST_COMMIT_ID:
            st.storage.delete_prefix(key + "/")
        else:
            st.storage.delete_prefix(f"versions/{st.vs.commit_id}/{key}/")

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
        self.meta.rename_tensor(full, new_full)
        self._engine(key).meta.set("name", new_full)
        self._engine(key).meta_dirty = True
        self._register_groups(new_full)
        self._state.diff.tensor_renamed(full, new_full)
        self._state.meta_dirty = True
        self._autoflush()
        return self._tensor(new_name)

    # ==========================================================================================
    # writes
    def append(self, sample: Dict[str, Any], skip_ok: bool = False, append_empty: bool = False) -> None:
        self.extend({k: [v] for k, v in sample.items()}, skip_ok=skip_ok, append_empty=append_empty)

    def extend(self, samples: Dict[str, Any], skip_ok: bool = False, append_empty: bool = False, progressbar: bool = False) -> None:
        """Append a batch to several tensors at once; all of it lands or none of it does."""
        self._check_writable_view()
        if not isinstance(samples, dict):
            raise LakeFormatError("ds.extend takes a dict of tensor name -> samples")
        resolved: Dict[str, Any] = {}
        lengths = set()
        for name, vals in samples.items():
            t = self._tensor(name)
            resolved[t.key] = vals
            lengths.add(len(vals))
        if len(lengths) > 1:
            raise SampleError(f"ds.extend got different numbers of samples per tensor: { {k: len(v) for k, v in samples.items()} }")
        n = lengths.pop() if lengths else 0
        missing = [t for name, t in self.tensors.items() if t.key not in resolved]
        if missing and not (skip_ok or append_empty):
            raise SampleError(
                "ds.append/extend needs a value for every tensor; missing: "
                + ", ".join(t.name for t in missing) + " (pass skip_ok=True or append_empty=True)"
            )
        if append_empty:
            for t in missing:
                resolved[t.key] = [None] * n
        self._extend_tensors(resolved, progressbar=progressbar)

    def _serialize(self, key: str, values: Any, start: Optional[int] = None) -> SerializedBatch:
        eng = self._engine(key)
        m = eng.meta
        info = eng.info
        ctx = Context(
            name=m.name,
            start_index=eng.num_samples if start is None else start,
            class_names=list(info.get("class_names", []) or []),
            class_names_fixed=bool(m.d.get("class_names_fixed", False)),
            creds_lookup=self._state.link_creds.encode,
            shape_of_link=self._state.links.shape_of,
            tiling_threshold=eng.tiling_threshold,
        )
        return Serializer(m, ctx).serialize(values)

    def _hidden_batches(self, key: str, batch: SerializedBatch, values: Any) -> Dict[str, SerializedBatch]:
        eng = self._engine(key)
        out: Dict[str, SerializedBatch] = {}
        for hkey, link in (eng.meta.links or {}).items():
            if hkey not in self.meta.tensors:
                continue
            kind = link.get("extend")
            if kind == "extend_id":
                # a generator seeded from the OS per batch: fast, and forked writers never
                # share a stream of ids
                rng = np.random.Generator(np.random.PCG64(int.from_bytes(os.urandom(16), "little")))
                ids = rng.integers(0, np.iinfo(np.uint64).max, size=(batch.num_samples, 1), dtype=np.uint64, endpoint=True)
                out[hkey] = self._serialize(hkey, ids)
            elif kind in ("extend_shape", "extend_len"):
                shapes = batch.real_shapes if batch.real_shapes is not None else batch.shapes
                out[hkey] = self._serialize(hkey, np.ascontiguousarray(shapes, dtype=np.int64))
            elif kind == "extend_info":
                infos = batch.infos if batch.infos is not None else [{} for _ in range(batch.num_items)]
                out[hkey] = self._serialize(hkey, infos)
        return out

    def _extend_tensors(self, values: Dict[str, Any], progressbar: bool = False) -> None:
        st = self._state
        with st.lock:
            # 1. serialize (and so validate) everything before touching any state
            batches: List[Tuple[str, SerializedBatch]] = []
            for key, vals in values.items():
                b = self._serialize(key, vals)
                batches.append((key, b))
                batches.extend(self._hidden_batches(key, b, vals).items())
            # 2. apply: in-memory only, cannot fail on bad input
            for key, b in batches:
                self._engine(key).extend(b)
            self._after_write()

    def _after_write(self) -> None:
        st = self._state
        staged = sum(e.staged_nbytes() for e in st.engines.values())
        if staged > STAGED_BYTES_LIMIT:
            for e in st.engines.values():
                e.write_chunks()
        self._autoflush()

    def _update(self, key: str, items: List[int], values: List[Any]) -> None:
        self._check_writable_view()
        st = self._state
        with st.lock:
            eng = self._engine(key)
            prepared = []
            for item, value in zip(items, values):
                if eng.seq is not None:
                    raise LakeFormatError(f"tensor {eng.meta.name!r}: replace a whole sequence by popping and appending")
                b = self._serialize(key, [value], start=item)
                hidden = {}
                for hkey, link in (eng.meta.links or {}).items():
                    if hkey not in self.meta.tensors:
                        continue
                    kind = link.get("extend")
                    if kind in ("extend_shape", "extend_len"):
                        shapes = b.real_shapes if b.real_shapes is not None else b.shapes
                        hidden[hkey] = self._serialize(hkey, np.ascontiguousarray(shapes, dtype=np.int64), start=item)
                    elif kind == "extend_info":
                        hidden[hkey] = self._serialize(hkey, b.infos or [{}], start=item)
                prepared.append((item, b, hidden))
            for item, b, hidden in prepared:
                eng.update_item(item, b)
                eng.commit_diff.update_data(item)
                for hkey, hb in hidden.items():
                    self._engine(hkey).update_item(item, hb)
            self._after_write()

    def _pop_tensor(self, key: str, index: int) -> None:
        self._check_writable_view()
        st = self._state
        with st.lock:
            eng = self._engine(key)
            n = eng.num_samples
            if index < 0:
                index += n
            if not 0 <= index < n:
                raise IndexError(f"pop index {index} out of range for tensor {eng.meta.name!r} of length {n}")
            sample_id = self._sample_id(key, index)
            # hidden tensors linked with flatten_sequence hold one row per item of a sequence
            item_range = eng.seq.item_ranges(np.array([index])) if eng.seq is not None else None
            eng.pop_sample(index, sample_id)
            for hkey in (eng.meta.links or {}):
                if hkey in self.meta.tensors:
                    h = self._engine(hkey)
                    if item_range is not None and eng.meta.links[hkey].get("flatten_sequence"):
                        for item in range(int(item_range[1][0]) - 1, int(item_range[0][0]) - 1, -1):
                            if item < h.num_samples:
                                h.pop_sample(item, None)
                    elif h.num_samples > index:
                        h.pop_sample(index, None)
            self._after_write()

    def _sample_id(self, key: str, index: int) -> Optional[int]:
        eng = self._engine(key)
        for hkey, link in (eng.meta.links or {}).items():
            if link.get("extend") == "extend_id" and hkey in self.meta.tensors:
                h = self._engine(hkey)
                if h.num_samples > index:
                    return int(Tensor(hkey, hkey, self, Index(index)).numpy().reshape(-1)[0])
        return None

    def pop(self, index: Optional[int] = None) -> None:
        """Remove sample `index` (default: the last) from every tensor."""
        self._check_writable_view()
        if index is None:
            index = len(self) - 1
        with self._state.lock:
            for t in self._visible_full_tensors():
                if index < t.num_samples:
                    self._pop_tensor(t.key, index)

    # ==========================================================================================
    # flushing
    def __enter__(self) -> "Dataset":
        self._state.with_depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._state.with_depth -= 1
        if self._state.with_depth == 0 and not self._state.read_only:
            self.flush()

    def _autoflush(self) -> None:
        if self._state.with_depth == 0:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered. Tensors first (chunks, encoders, meta), then the dataset
        meta: a crash in between leaves the previous state readable."""
        st = self._state
        if st.read_only:
            return
        with st.lock:
            c = st.vs.commit_id
            # Several tensors grow in one flush: a marker holding their lengths before it makes
            # the flush all-or-nothing (a reader finding the marker rolls them back to it).
            if st.rollback:
                for key in list(st.rollback):
                    self._engine(key) if key in st.meta.tensors else None
            grown = {e.key: e.flushed_items for e in st.engines.values() if e.meta.length != e.flushed_items}
            marker = keys.flush_marker_key(c)
            if st.rollback:
                grown = {**{k: int(v) for k, v in st.rollback.items()}, **grown}
            if len(grown) > 1:
                st.storage.set(marker, json.dumps({"lengths": grown}).encode())
            # hidden tensors before their parents: a crash leaves them ahead, never behind
            engines = sorted(st.engines.values(), key=lambda e: not e.meta.hidden)
            for eng in engines:
                eng.flush()
            if st.meta_dirty:
                st.storage.set(keys.dataset_meta_key(c), st.meta.to_bytes())
                st.meta_dirty = False
            if st.info_dirty:
                st.storage.set(keys.dataset_info_key(c), json.dumps(st.info, sort_keys=True, indent=4).encode())
                st.info_dirty = False
            if st.diff.dirty:
                st.storage.set(keys.dataset_diff_key(c), st.diff.to_bytes())
                st.diff.dirty = False
            if st.link_creds.dirty:
                st.storage.set(keys.linked_creds_key(), st.link_creds.to_bytes())
                st.link_creds.dirty = False
            if st.tree_dirty:
                from lakeformat.version_control.api import save_tree

                save_tree(self)
                st.tree_dirty = False
            if len(grown) > 1 or st.rollback:
                st.storage.delete(marker)
                st.rollback = {}
            st.storage.flush()

    # ==========================================================================================
    # info, creds, summary
    @property
    def info(self) -> "DatasetInfo":
        return DatasetInfo(self)

    def add_creds_key(self, creds_key: str, managed: bool = False) -> None:
        self._check_writable()
        self._state.link_creds.add(creds_key, managed)
        self._autoflush()

    def populate_creds(self, creds_key: str, creds: Dict[str, Any]) -> None:
        self._state.link_creds.populate(creds_key, creds)

    def get_creds_keys(self) -> List[str]:
        return list(self._state.link_creds.creds_keys)

    def summary(self, print_out: bool = True) -> str:
        rows = [("tensor", "htype", "shape", "dtype", "compression")]
        for name, t in self.tensors.items():
            n, h, shape, dt, sc, cc = Tensor(t.name, t.key, self, self.index).summary_row()
            lo, hi = t.shape_interval
            dims = ", ".join(str(a) if a == b else f"{a}:{b}" for a, b in zip(lo, hi))
            shape = f"({len(t)}, {dims})" if dims else f"({len(t)},)"
            comp = sc if sc != "None" else (cc if cc != "None" else "None")
            rows.append((name, h, shape, dt, comp))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [f"Dataset(path={self.path!r}, tensors={list(self.tensors)})", ""]
        for k, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        text = "\n".join(lines)
        if print_out:
            print(text)
        return text

    def __repr__(self) -> str:
        v = f", index={self.index.samples if isinstance(self.index.samples, int) else ('[' + str(len(self)) + ' samples]') if self.is_view else ''}" if self.is_view else ""
        return f"Dataset(path={self.path!r}{v}, tensors={list(self.tensors)})"

    def numpy(self, aslist: bool = False) -> Dict[str, Any]:
        return {name: t.numpy(aslist=aslist) for name, t in self.tensors.items()}

    # ==========================================================================================
    # version control (lakeformat.version_control.api holds the logic)
    @property
    def commit_id(self) -> Optional[str]:
        from lakeformat.version_control import api

        return api.commit_id(self)

    @property
    def pending_commit_id(self) -> str:
        return self._state.vs.commit_id

    @property
    def branch(self) -> Optional[str]:
        return self._state.vs.branch

    @property
    def branches(self) -> List[str]:
        return list(self._state.vs.tree.branches)

    @property
    def has_head_changes(self) -> bool:
        from lakeformat.version_control import api

        return api.has_head_changes(self)

    def commit(self, message: Optional[str] = None, allow_empty: bool = False) -> str:
        from lakeformat.version_control import api

        return api.commit(self, message, allow_empty)

    def checkout(self, address: str, create: bool = False) -> Optional[str]:
        from lakeformat.version_control import api

        return api.checkout(self, address, create)

    def log(self) -> List[Dict[str, Any]]:
        from lakeformat.version_control import api

        return api.log(self)

    def reset(self) -> None:
        from lakeformat.version_control import api

        api.reset(self)

    def delete_branch(self, name: str) -> None:
        from lakeformat.version_control import api

        api.delete_branch(self, name)

    def diff(self, id_1: Optional[str] = None, id_2: Optional[str] = None, as_dict: bool = False) -> Any:
        from lakeformat.version_control import diff as vc_diff

        return vc_diff.diff(self, id_1, id_2, as_dict)

    def merge(self, target_id: str, conflict_resolution: Optional[str] = None, delete_removed_tensors: bool = False, force: bool = False) -> Optional[str]:
        """Merge a branch or commit into the current branch; returns the merge commit's id."""
        from lakeformat.version_control import merge as vc_merge

        return vc_merge.merge(self, target_id, conflict_resolution, delete_removed_tensors, force)

    # ==========================================================================================
    # loaders
    def pytorch(self, *args: Any, **kwargs: Any) -> Any:
        from loaders import dataset_pytorch

        return dataset_pytorch(self, *args, **kwargs)


class DatasetInfo(dict):
    def __init__(self, ds: Dataset):
        super().__init__(ds._state.info)
        self._ds = ds

    def _save(self) -> None:
        self._ds._check_writable()
        st = self._ds._state
        st.info = dict(self)
        st.info_dirty = True
        st.diff.modify_info()
        self._ds._autoflush()

    def __setitem__(self, k: str, v: Any) -> None:
        super().__setitem__(k, v)
        self._save()

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(*args, **kwargs)
        self._save()

    def __getattr__(self, k: str) -> Any:
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None
