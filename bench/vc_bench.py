"""Version-control costs of lakeformat, next to deeplake 3.9.52 in the same run.

1. storage: append 1% more rows to a ~1 GB dataset and commit; bytes written against bytes
   of new data (only the new chunks plus metadata should land).
2. time travel: read a tensor at the oldest commit of a 100-commit chain and at HEAD.
3. speed: commit, checkout and diff of a 1M-row dataset, lakeformat and deeplake 3.9.52.

    python3 bench/vc_bench.py                 # full size
    python3 bench/vc_bench.py --scale 0.1     # smaller (the 1 GB and 1M rows shrink)

Nothing asserts a time; the figures are printed, with ratios, and written as JSON to
bench/results/vc-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lakeformat  # noqa: E402


def _dl3_python() -> str:
    own = REPO / ".venvs" / "deeplake3" / "bin" / "python"
    return str(own) if own.exists() else "/opt/venvs/dl3/bin/python"


def _files(root: str) -> dict:
    out = {}
    for folder, _, files in os.walk(root):
        for f in files:
            p = os.path.join(folder, f)
            st = os.stat(p)
            out[p] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def _timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_storage(work: str, scale: float) -> dict:
    """~1 GB of 1 KiB rows, then 1% more rows and a commit."""
    rows = int(1_000_000 * scale)
    path = os.path.join(work, "storage")
    ds = lakeformat.empty(path, overwrite=True)
    ds.create_tensor("x", dtype="uint8")
    ds.create_tensor("label", dtype="int32")
    step = 50_000
    rng = np.random.default_rng(0)
    with ds:
        for s in range(0, rows, step):
            n = min(step, rows - s)
            ds.extend({"x": rng.integers(0, 255, (n, 1024), dtype=np.uint8), "label": np.arange(s, s + n, dtype=np.int32)})
    ds.commit("base")
    before = _files(path)
    total = sum(v[0] for v in before.values())
    n_new = rows // 100
    new = {"x": rng.integers(0, 255, (n_new, 1024), dtype=np.uint8), "label": np.arange(n_new, dtype=np.int32)}
    new_bytes = new["x"].nbytes + new["label"].nbytes
    t = time.perf_counter()
    ds.extend(new)
    ds.commit("1% more")
    secs = time.perf_counter() - t
    after = _files(path)
    written = {p: v for p, v in after.items() if before.get(p) != v}
    wbytes = sum(v[0] for v in written.values())
    chunk_bytes = sum(v[0] for p, v in written.items() if "/chunks/" in p)
    return {
        "rows": rows, "dataset_bytes": total, "new_rows": n_new, "new_data_bytes": new_bytes,
        "bytes_written": wbytes, "chunk_bytes_written": chunk_bytes, "metadata_bytes_written": wbytes - chunk_bytes,
        "files_written": len(written), "written_over_new": wbytes / new_bytes, "append_commit_s": secs,
    }


def bench_chain(work: str, scale: float) -> dict:
    """100 commits, each updating 20 random rows; read everything at the oldest and at HEAD."""
    rows = max(10_000, int(200_000 * scale))
    path = os.path.join(work, "chain")
    ds = lakeformat.empty(path, overwrite=True)
    ds.create_tensor("x", dtype="float32", max_chunk_size=1 << 20)
    ds.x.extend(np.zeros((rows, 16), np.float32))
    first = ds.commit("c0")
    rng = np.random.default_rng(1)
    for i in range(1, 100):
        with ds:
            for j in rng.integers(0, rows, 20):
                ds.x[int(j)] = np.full(16, i, np.float32)
        ds.commit(f"c{i}")
    head = lakeformat.load(path, read_only=True)
    old = lakeformat.load(path, version=first, read_only=True)
    head.x.numpy(), old.x.numpy()  # warm the page cache for both
    # interleaved, best of 7: the machine is shared, single runs are noisy
    t_head = t_old = float("inf")
    for _ in range(7):
        t_head = min(t_head, _timed(lambda: lakeformat.load(path, read_only=True).x.numpy()))
        t_old = min(t_old, _timed(lambda: lakeformat.load(path, version=first, read_only=True).x.numpy()))
    return {"rows": rows, "commits": 100, "read_head_s": t_head, "read_oldest_s": t_old, "oldest_over_head": t_old / t_head}


LF_OPS = r'''
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[2])
import lakeformat
path, rows = sys.argv[1], int(sys.argv[3])
ds = lakeformat.empty(path, overwrite=True)
with ds:
    ds.create_tensor("label", dtype="int32")
    ds.create_tensor("emb", dtype="float32")
    ds.extend({"label": np.arange(rows, dtype=np.int32), "emb": np.ones((rows, 8), np.float32)})
out = {}
t = time.perf_counter(); ds.commit("base"); out["commit"] = time.perf_counter() - t
t = time.perf_counter(); ds.checkout("alt", create=True); out["checkout_create"] = time.perf_counter() - t
n = rows // 100
ds.extend({"label": np.arange(n, dtype=np.int32), "emb": np.zeros((n, 8), np.float32)})
for i in range(0, rows, rows // 100):
    ds.label[i] = -1
t = time.perf_counter(); ds.commit("alt work"); out["commit_after_changes"] = time.perf_counter() - t
t = time.perf_counter(); ds.checkout("main"); out["checkout"] = time.perf_counter() - t
t = time.perf_counter(); d = ds.diff("main", "alt", as_dict=True); out["diff"] = time.perf_counter() - t
assert len(d["sides"][1]["tensors"]["label"]["added"]) == n
print("@@" + json.dumps(out))
'''

DL3_OPS = r'''
import sys, time, json, warnings, os
os.environ["BUGGER_OFF"] = "true"
warnings.filterwarnings("ignore")
import numpy as np
import deeplake
path, rows = sys.argv[1], int(sys.argv[3])
ds = deeplake.empty(path, overwrite=True, verbose=False)
with ds:
    ds.create_tensor("label", dtype="int32")
    ds.create_tensor("emb", dtype="float32")
    ds.extend({"label": np.arange(rows, dtype=np.int32), "emb": np.ones((rows, 8), np.float32)})
out = {}
t = time.perf_counter(); ds.commit("base"); out["commit"] = time.perf_counter() - t
t = time.perf_counter(); ds.checkout("alt", create=True); out["checkout_create"] = time.perf_counter() - t
n = rows // 100
with ds:
    ds.extend({"label": np.arange(n, dtype=np.int32), "emb": np.zeros((n, 8), np.float32)})
    for i in range(0, rows, rows // 100):
        ds.label[i] = -1
t = time.perf_counter(); ds.commit("alt work"); out["commit_after_changes"] = time.perf_counter() - t
t = time.perf_counter(); ds.checkout("main"); out["checkout"] = time.perf_counter() - t
t = time.perf_counter(); d = ds.diff("main", "alt", as_dict=True); out["diff"] = time.perf_counter() - t
print("@@" + json.dumps(out))
'''


def bench_ops(work: str, scale: float) -> dict:
    rows = int(1_000_000 * scale)
    res = {"rows": rows}
    for name, code, py in (("lakeformat", LF_OPS, sys.executable), ("deeplake3", DL3_OPS, _dl3_python())):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        proc = subprocess.run([py, "-c", code, os.path.join(work, f"ops-{name}"), str(REPO), str(rows)], capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            res[name] = {"error": proc.stderr[-2000:]}
            continue
        res[name] = json.loads(proc.stdout.split("@@", 1)[1])
    if "error" not in res.get("lakeformat", {}) and "error" not in res.get("deeplake3", {}):
        res["ratio_lakeformat_over_deeplake3"] = {k: res["lakeformat"][k] / res["deeplake3"][k] for k in res["lakeformat"]}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vcbench-", dir=str(REPO / ".bench_data") if (REPO / ".bench_data").is_dir() else None)
    try:
        out = {"scale": args.scale}
        for name, fn in (("storage", bench_storage), ("chain", bench_chain), ("ops", bench_ops)):
            t = time.perf_counter()
            out[name] = fn(work, args.scale)
            out[name]["bench_s"] = time.perf_counter() - t
            print(name, json.dumps(out[name], indent=2), flush=True)
        res = REPO / "bench" / "results"
        res.mkdir(exist_ok=True)
        (res / time.strftime("vc-%Y%m%d-%H%M%S.json")).write_text(json.dumps(out, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
