"""`Tensor`: one column of a dataset, or a view of some of its samples."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat.codecs import BYTE_COMPRESSIONS, IMAGE_COMPRESSIONS, decompress_bytes, decompress_image, png_fast
from lakeformat.core.codec_pool import codec_pool
from lakeformat.core.index import Index
from lakeformat.core.text_codec import json_loads
from lakeformat.errors import DynamicShapeError, LakeFormatError, SampleDecodeError

if TYPE_CHECKING:
    from lakeformat.core.chunk_engine import ChunkEngine
    from lakeformat.core.dataset import Dataset

_DECODE_THREADS = max(2, min(8, os.cpu_count() or 2))  # the size of the codec pool


class Tensor:
    """A tensor of a dataset. Indexing returns a view; `.numpy()` reads.

    >>> ds.create_tensor("x", dtype="int64")      # doctest: +SKIP
    >>> ds.x.extend(np.arange(10)); ds.x[2:4].numpy()  # doctest: +SKIP
    """

    def __init__(self, name: str, key: str, dataset: "Dataset", index: Optional[Index] = None):
        self.name = name
        self.key = key
        self.dataset = dataset
        self.index = index or dataset.index

    # -- structure ---------------------------------------------------------------------------------
    @property
    def engine(self) -> "ChunkEngine":
        return self.dataset._engine(self.key)

    @property
    def meta(self):
        return self.engine.meta

    @property
    def htype(self) -> str:
        m = self.meta
        h = m.base_htype
        if m.is_link:
            h = f"link[{h}]"
        if m.is_sequence:
            h = f"sequence[{h}]"
        return h

    @property
    def base_htype(self) -> str:
        return self.meta.base_htype

    @property
    def dtype(self) -> Optional[np.dtype]:
        d = self.meta.dtype
        if self.meta.base_htype in ("json", "list", "tag"):
            return np.dtype(str)  # what deeplake 3.x's Tensor.dtype says for these htypes
        if d in (None, "Any", "List"):
            return None if d is None else np.dtype(object)
        if d == "str":
            return np.dtype(str)
        return np.dtype(d)

    @property
    def sample_compression(self) -> Optional[str]:
        return self.meta.sample_compression

    @property
    def chunk_compression(self) -> Optional[str]:
        return self.meta.chunk_compression

    @property
    def is_sequence(self) -> bool:
        return bool(self.meta.is_sequence)

    @property
    def is_link(self) -> bool:
        return bool(self.meta.is_link)

    @property
    def hidden(self) -> bool:
        return bool(self.meta.hidden)

    @property
    def info(self) -> "TensorInfo":
        return TensorInfo(self.engine, self.dataset)

    @property
    def num_samples(self) -> int:
        return self.engine.num_samples

    def __len__(self) -> int:
        return self.index.length(self.num_samples)

    @property
    def shape(self) -> Tuple[Optional[int], ...]:
        """Shape of the view; None on axes whose size differs between samples."""
        m = self.meta
        n = len(self)
        if self.is_sequence:
            return self._sequence_shape(n)
        if self.index.is_single:
            shp = self._item_shapes(np.array([self.index.samples]))[0]
            return tuple(int(x) for x in shp)
        if self.index.samples is None:
            lo, hi = m.min_shape or [], m.max_shape or []
        else:
            shapes = self._item_shapes(self.index.resolve(self.num_samples))
            lo, hi = (shapes.min(0).tolist(), shapes.max(0).tolist()) if len(shapes) else ([], [])
        return (n,) + tuple(int(a) if a == b else None for a, b in zip(lo, hi))

    def _sequence_shape(self, n: int) -> Tuple[Optional[int], ...]:
        """As deeplake 3.x: (items, *item shape) for one sequence, (n, items, *item shape)
        for several, None on axes that differ."""
        samples = np.array([self.index.samples]) if self.index.is_single else self.index.resolve(self.num_samples)
        starts, ends = self.engine.seq.item_ranges(np.asarray(samples, dtype=np.int64))
        lens = (np.asarray(ends) - np.asarray(starts)).astype(np.int64)
        items = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]).astype(np.int64) if len(lens) else np.zeros(0, np.int64)
        if len(items):
            shapes = self._item_shapes(items)
            lo, hi = shapes.min(0).tolist(), shapes.max(0).tolist()
        else:
            lo, hi = self.shape_interval
        item = tuple(int(a) if a == b else None for a, b in zip(lo, hi))
        seq_len = int(lens[0]) if len(lens) and (lens == lens[0]).all() else None
        return (seq_len,) + item if self.index.is_single else (n, seq_len) + item

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def shape_interval(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        m = self.meta
        return tuple(m.min_shape or ()), tuple(m.max_shape or ())

    def _item_shapes(self, items: np.ndarray) -> np.ndarray:
        """Decoded shapes, from the hidden shape tensor when there is one."""
        shape_key = self._linked_key("extend_shape")
        if shape_key is not None and not self.is_sequence:
            sh = self.dataset._engine(shape_key)
            if sh.num_items == self.engine.num_items:
                vals = Tensor(shape_key, shape_key, self.dataset, Index(items))._read(items, aslist=True)
                return np.asarray([np.asarray(v, np.int64).reshape(-1) for v in vals], dtype=np.int64).reshape(len(items), -1)
        m = self.meta
        if m.min_shape == m.max_shape and not m.is_link:
            return np.tile(np.asarray(m.min_shape, np.int64), (len(items), 1))
        _, shapes = self.engine.read_items_bytes(items)
        return shapes

    def _linked_key(self, kind: str) -> Optional[str]:
        for k, v in (self.meta.links or {}).items():
            if v.get("extend") == kind:
                return k
        return None

    # -- indexing ---------------------------------------------------------------------------------------
    def __getitem__(self, item: Any) -> "Tensor":
        return Tensor(self.name, self.key, self.dataset, self.index.compose(item, self.num_samples))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __setitem__(self, item: Any, value: Any) -> None:
        idx = self.index.compose(item, self.num_samples)
        if idx.sub:
            raise LakeFormatError("assigning into part of a sample is not supported; assign the whole sample")
        if idx.is_single:
            self.dataset._update(self.key, [idx.samples], [value])
            return
        items = idx.resolve(self.num_samples)
        values = list(value) if not isinstance(value, np.ndarray) else [value[i] for i in range(len(value))]
        if len(values) != len(items):
            raise LakeFormatError(f"{len(values)} values for {len(items)} samples")
        self.dataset._update(self.key, items.tolist(), values)

    # -- writes -----------------------------------------------------------------------------------------
    def append(self, sample: Any) -> None:
        self.extend([sample])

    def extend(self, samples: Union[Sequence[Any], np.ndarray], progressbar: bool = False) -> None:
        self.dataset._check_writable_view()
        self.dataset._extend_tensors({self.key: samples}, progressbar=progressbar)

    def pop(self, index: Optional[int] = None) -> None:
        if index is None:
            index = self.num_samples - 1
        self.dataset._pop_tensor(self.key, index)

    # -- reads ------------------------------------------------------------------------------------------
    def numpy(self, aslist: bool = False, fetch_chunks: bool = True) -> Union[np.ndarray, List[Any]]:
        items = self.index.resolve(self.num_samples)
        out = self._read(items, aslist)
        if self.index.is_single:
            out = out[0]
            return self._apply_sub(out)
        if self.index.sub:
            if isinstance(out, list):
                return [self._apply_sub(x) for x in out]
            return out[(slice(None),) + self.index.sub]
        return out

    def _apply_sub(self, x: Any) -> Any:
        if not self.index.sub:
            return x
        return np.asarray(x)[self.index.sub]

    def _read(self, samples: np.ndarray, aslist: bool) -> Union[np.ndarray, List[Any]]:
        eng = self.engine
        eng.check_items(samples) if not self.is_sequence else None
        if self.is_sequence:
            starts, ends = eng.seq.item_ranges(samples)
            flat = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(samples) else np.zeros(0, np.int64)
            vals = self._read_items(flat.astype(np.int64), aslist=True)
            out, pos = [], 0
            for s, e in zip(starts, ends):
                part = vals[pos : pos + (e - s)]
                pos += e - s
                if aslist:
                    out.append(part)
                else:
                    shapes = {np.shape(p) for p in part}
                    out.append(np.stack(part) if len(shapes) == 1 and part and not isinstance(part[0], (str, dict)) else np.asarray(part, dtype=object) if part and isinstance(part[0], (str, dict)) else (np.stack(part) if part else np.zeros((0,), self.dtype if self.dtype is not None else object)))
            if aslist:
                return out
            shapes = {o.shape for o in out}
            if len(shapes) > 1:
                raise DynamicShapeError(f"tensor {self.name!r}: sequences of different lengths or shapes; use aslist=True")
            return np.stack(out) if out else np.zeros((0,))
        return self._read_items(samples, aslist)

    def _fixed_shape(self) -> Optional[Tuple[int, ...]]:
        m = self.meta
        if m.is_link or m.sample_compression is not None or m.base_htype in ("text", "json", "list", "tag"):
            return None
        if not m.min_shape or m.min_shape != m.max_shape or m.dtype in (None, "str", "Any", "List"):
            return None
        return tuple(m.min_shape)

    def _read_items(self, items: np.ndarray, aslist: bool) -> Union[np.ndarray, List[Any]]:
        eng = self.engine
        m = self.meta
        tiled = [k for k, it in enumerate(items.tolist()) if it in eng.tiles] if eng.tiles.entries else []
        fixed = self._fixed_shape()
        if fixed is not None and not tiled:
            arr = eng.read_fixed(items, fixed, np.dtype(m.dtype))
            return list(arr) if aslist else arr
        if m.base_htype == "text" and not m.is_link and m.sample_compression is None and not tiled:
            if not aslist:
                arr = eng.read_text_array(items)
                if arr is not None:
                    return arr.reshape(len(items), 1)
            texts = eng.read_texts(items)
            return texts if aslist else self._stack_text(texts)
        values: List[Any] = [None] * len(items)
        plain = np.asarray([k for k in range(len(items)) if k not in set(tiled)], dtype=np.int64)
        if len(plain):
            if not aslist and not tiled and m.sample_compression in IMAGE_COMPRESSIONS and not m.is_link and m.min_shape and m.min_shape == m.max_shape:
                return self._read_images_fixed(items, tuple(int(x) for x in m.min_shape))
            datas, shapes = eng.read_items_bytes(items[plain])
            decoded = self._decode_many(datas, shapes, items[plain])
            for k, v in zip(plain.tolist(), decoded):
                values[k] = v
        for k in tiled:
            values[k] = eng.read_tiled(int(items[k]))
        if aslist or m.base_htype in ("text", "json", "list", "tag"):
            if m.base_htype in ("text", "json", "list", "tag") and not aslist:
                return self._stack_text(values)
            return values
        shapes_set = {v.shape for v in values}
        if len(shapes_set) > 1:
            raise DynamicShapeError(
                f"tensor {self.name!r} has samples of different shapes; use .numpy(aslist=True)"
            )
        if not values:
            dt = self.dtype if self.dtype is not None else np.float64
            return np.zeros((0,) + tuple(m.min_shape or ()), dtype=dt)
        return np.stack(values)

    def _stack_text(self, values: List[Any]) -> np.ndarray:
        base = self.meta.base_htype
        if base == "text":
            if None in values:  # C-level scan; nulls need an object array
                out = np.empty((len(values), 1), dtype=object)
                out[:, 0] = values
                return out
            return np.asarray(values, dtype=str).reshape(len(values), 1) if values else np.zeros((0, 1), str)
        out = np.empty((len(values), 1), dtype=object)
        for i, v in enumerate(values):
            out[i, 0] = v
        return out

    def _read_images_fixed(self, items: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
        """Compressed images of one shape, decoded straight into one array. Blocks of items
        are read one after another while the codec threads decode the blocks before them,
        each block cut into one slice per thread (the codecs release the GIL)."""
        m = self.meta
        dtype = np.dtype(m.dtype) if m.dtype not in (None, "Any", "List", "str") else np.dtype("uint8")
        n = len(items)
        out = np.zeros((n,) + shape, dtype)
        sc = m.sample_compression

        def decode_slice(job: Tuple[List[memoryview], int, int, int]) -> None:
            datas, base, lo, hi = job
            for k in range(lo, hi):
                d = datas[k]
                if not len(d):
                    continue  # an empty sample reads as zeros
                try:
                    if dtype == np.uint8 and sc == "png" and png_fast.decode(d, out[base + k]) is not None:
                        continue
                    out[base + k] = decompress_image(d, shape).astype(dtype, copy=False).reshape(shape)
                except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
                    raise SampleDecodeError(f"stored {sc} bytes do not decode: {e}", tensor=self.name, index=int(items[base + k])) from e

        block = max(256, min(4096, n // 8 + 1))
        pending = []
        for base in range(0, n, block):
            datas, _ = self.engine.read_items_bytes(items[base : base + block])
            cuts = np.linspace(0, len(datas), _DECODE_THREADS + 1).astype(int).tolist()
            pending += [codec_pool().submit(decode_slice, (datas, base, a, b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
            while len(pending) > 2 * _DECODE_THREADS:  # bounded: at most ~3 blocks of bytes held
                pending.pop(0).result()
        for f in pending:
            f.result()
        return out

    def _decode_many(self, datas: List[memoryview], shapes: np.ndarray, items: np.ndarray) -> List[Any]:
        m = self.meta
        if m.is_link:
            return self.dataset._links.resolve_many(self, datas, items)
        base = m.base_htype
        sc = m.sample_compression
        if base in ("text", "json", "list", "tag"):
            return [self._decode_text(d, base, shapes[k]) for k, d in enumerate(datas)]
        dtype = np.dtype(m.dtype) if m.dtype not in (None, "Any", "List", "str") else np.dtype("uint8")
        if sc in IMAGE_COMPRESSIONS:
            def dec(args):
                k, d = args
                shp = tuple(int(x) for x in shapes[k])
                if len(d) == 0:
                    return np.zeros(shp, dtype)
                try:
                    return decompress_image(d, shp).astype(dtype, copy=False)
                except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
                    raise SampleDecodeError(f"stored {sc} bytes do not decode: {e}", tensor=self.name, index=int(items[k])) from e
            if len(datas) > 4:
                with ThreadPoolExecutor(_DECODE_THREADS) as pool:
                    return list(pool.map(dec, enumerate(datas)))
            return [dec(x) for x in enumerate(datas)]
        out = []
        for k, d in enumerate(datas):
            shp = tuple(int(x) for x in shapes[k])
            if sc in BYTE_COMPRESSIONS and len(d):
                d = decompress_bytes(d, sc)
            out.append(np.frombuffer(d, dtype=dtype).reshape(shp) if len(d) else np.zeros(shp, dtype))
        return out

    @staticmethod
    def _decode_text(d: memoryview, base: str, shape: Any = (1,)) -> Any:
        if base == "text":
            if len(d) == 0 and len(shape) and shape[0] == 0:
                return None  # a null, stored as an empty sample: distinct from ""
            return bytes(d).decode("utf-8")
        if len(d) == 0:
            return None if base == "json" else []
        return json_loads(d)

    def text(self) -> Union[str, List[str]]:
        v = self._read(self.index.resolve(self.num_samples), aslist=True)
        if self.is_sequence:
            return v[0] if self.index.is_single else v
        return v[0] if self.index.is_single else v

    def dict(self) -> Union[Dict[str, Any], List[Any]]:
        return self.text()  # json samples decode to their objects

    def list(self) -> Union[List[Any], List[List[Any]]]:
        return self.text()

    def tobytes(self) -> bytes:
        if not self.index.is_single:
            raise LakeFormatError("tobytes() reads one sample")
        datas, _ = self.engine.read_items_bytes(np.array([self.index.samples]))
        return bytes(datas[0])

    def data(self, aslist: bool = False) -> Dict[str, Any]:
        base = self.base_htype
        if base in ("text", "json", "list", "tag"):
            return {"value": self.text()}
        value = self.numpy(aslist=aslist)
        out: Dict[str, Any] = {"value": value}
        if base == "class_label":
            names = self.info.get("class_names") or []
            if names:
                def to_text(v):
                    return [names[int(x)] for x in np.asarray(v).reshape(-1) if int(x) < len(names)]
                out["text_value"] = to_text(value) if self.index.is_single else [to_text(v) for v in value]
        return out

    def summary_row(self) -> Tuple[str, str, str, str, str, str]:
        m = self.meta
        lo, hi = self.shape_interval
        shape = "(" + ", ".join(str(a) if a == b else f"{a}:{b}" for a, b in zip(lo, hi)) + ")"
        return (self.name, self.htype, f"({self.num_samples}, {shape[1:]}" if lo else f"({self.num_samples},)", str(m.dtype), str(m.sample_compression), str(m.chunk_compression))

    def __repr__(self) -> str:
        return f"Tensor(key={self.name!r}, htype={self.htype!r}, length={len(self)})"


class TensorInfo(dict):
    """tensor_info.json as a dict; changes are saved with the tensor."""

    def __init__(self, engine: "ChunkEngine", dataset: "Dataset"):
        super().__init__(engine.info)
        self._engine = engine
        self._dataset = dataset

    def _save(self) -> None:
        self._dataset._check_writable_view()
        self._engine.info.clear()
        self._engine.info.update(dict(self))
        self._engine.info_dirty = True
        self._engine.commit_diff.modify_info()
        self._dataset._autoflush()

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
