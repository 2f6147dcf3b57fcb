"""Tiling: a sample bigger than the tiling threshold is cut into tiles, one chunk each."""
from __future__ import annotations

import itertools
from typing import Iterator, List, Sequence, Tuple

import numpy as np
import numpy.typing as npt


def choose_tile_shape(shape: Sequence[int], itemsize: int, max_chunk_size: int) -> Tuple[int, ...]:
    """Halve the largest axis until a tile fits half a chunk."""
    tile = [int(s) for s in shape]
    budget = max(max_chunk_size // 2, itemsize)
    while int(np.prod(tile)) * itemsize > budget and max(tile) > 1:
        ax = int(np.argmax(tile))
        tile[ax] = -(-tile[ax] // 2)
    return tuple(tile)


def split_tiles(arr: np.ndarray, tile_shape: Sequence[int]) -> Iterator[np.ndarray]:
    """Tiles in row-major order of the tile grid."""
    layout = [-(-s // t) for s, t in zip(arr.shape, tile_shape)]
    for pos in itertools.product(*[range(n) for n in layout]):
        sl = tuple(slice(p * t, min((p + 1) * t, s)) for p, t, s in zip(pos, tile_shape, arr.shape))
        yield arr[sl]


def assemble_tiles(tiles: List[np.ndarray], sample_shape: Sequence[int], tile_shape: Sequence[int], dtype: npt.DTypeLike) -> np.ndarray:
    out = np.empty(tuple(sample_shape), dtype=dtype)
    layout = [-(-s // t) for s, t in zip(sample_shape, tile_shape)]
    for tile, pos in zip(tiles, itertools.product(*[range(n) for n in layout])):
        sl = tuple(slice(p * t, min((p + 1) * t, s)) for p, t, s in zip(pos, tile_shape, sample_shape))
        want = tuple(x.stop - x.start for x in sl)
        out[sl] = tile.reshape(-1)[: int(np.prod(want))].reshape(want) if tile.shape != want else tile
    return out
