"""Writer process for the random-time edit crash test: appends, updates (`t[i] = x`) and pops
(`ds.pop(j)`) at random, with a flush every few operations. Before each flush it records the
state the flush will publish ("P ...") and after it the state published ("A ..."), fsynced, so
that the test knows which states a kill may leave.

    python tests/core/kill_edit_writer.py PATH PROGRESS SEED
"""
from __future__ import annotations

import json
import os
import random
import sys

import numpy as np

import lakeformat


def _record(progress: str, tag: str, values: list) -> None:
    with open(progress, "a") as f:
        f.write(f"{tag} {json.dumps(values)}\n")
        f.flush()
        os.fsync(f.fileno())


def main(path: str, progress: str, seed: int) -> None:
    rng = random.Random(seed)
    ds = lakeformat.load(path) if lakeformat.exists(path) else lakeformat.empty(path)
    with ds:  # a run killed while creating them may have left none
        ds.create_tensor("ints", dtype="int64", max_chunk_size=200, exist_ok=True)
        ds.create_tensor("txt", htype="text", max_chunk_size=300, exist_ok=True)
    values = [int(v) for v in ds.ints.numpy().reshape(-1)] if len(ds.ints) else []
    nxt = max(values, default=0) + 1
    while True:
        with ds:
            for _ in range(rng.randint(1, 4)):
                op = rng.random()
                if op < 0.4 or len(values) < 4:
                    new = list(range(nxt, nxt + 3))
                    nxt += 3
                    ds.extend({"ints": np.array(new, np.int64), "txt": [f"v{v}" for v in new]})
                    values += new
                elif op < 0.75:
                    i = rng.randrange(len(values))
                    ds.ints[i] = nxt
                    ds.txt[i] = f"v{nxt}"
                    values[i] = nxt
                    nxt += 1
                else:
                    j = rng.randrange(len(values))
                    ds.pop(j)
                    values.pop(j)
            _record(progress, "P", values)
        _record(progress, "A", values)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
