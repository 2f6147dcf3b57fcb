"""What every TQL-bench peer shares: the queries, the cached data, timing, the JSON it prints.

A peer script defines `Peer` with `prepare(data, work) -> None` (write its datasets, or load
tables; timed apart as `prepare_s`) and one method per query returning what the query
selects; it calls `main(ThatPeer)`. The harness (`bench/tql_bench.py`) runs it under the
peer's own venv:

    python bench/peers/tql_duckdb.py --data .bench_data/tql/scale-0.1 --work /tmp/w --repeat 3

and reads the last line of stdout: one JSON object with, per query, the best wall time of
its runs (`--repeat`, fewer once they took `--budget` seconds), the CPU time of that run
(this process, all threads), the first run's wall time, the number of
rows selected and a `check` (a digest of the result every peer must agree on).

Imports only NumPy and the standard library: it runs in every peer venv.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

QUERIES = ("scalar_filter", "text_contains", "order_by_limit", "cosine_top10", "bbox_area", "group_by")
LABEL = 3
VALUE = 0.5
NEEDLE = "abc"
ORDER_LIMIT = 100
TOP_K = 10
AREA = 1200.0
N_CLASSES = 10
DIM = 384

# The queries in TQL (ours and deeplake 4's); `{q}` is the query vector as ARRAY[...].
TQL = {
    "scalar_filter": f"SELECT * WHERE label == {LABEL} AND value > {VALUE}",
    "text_contains": f"SELECT * WHERE CONTAINS(text, '{NEEDLE}')",
    "order_by_limit": f"SELECT * ORDER BY value LIMIT {ORDER_LIMIT}",
    "cosine_top10": "SELECT * ORDER BY COSINE_SIMILARITY(embedding, {q}) DESC LIMIT " + str(TOP_K),
    "bbox_area": f"SELECT * WHERE ANY(boxes[:, 2] * boxes[:, 3] > {AREA:g})",
    "group_by": "SELECT * GROUP BY label",
}


def query_array(q: np.ndarray) -> str:
    """The query vector as TQL's ARRAY[...]: 6 decimals, which the vector was rounded to,
    so every peer compares with the same float32 values."""
    return "ARRAY[" + ", ".join(f"{float(v):.6f}" for v in q) + "]"


def load(data: Path) -> Dict[str, np.ndarray]:
    """The cached columns (bench/tql_bench.py writes them)."""
    out = {name: np.load(data / f"{name}.npy", mmap_mode="r") for name in
           ("tab_id", "tab_value", "tab_text", "tab_label", "emb", "query", "box_flat", "box_offsets")}
    return out


def boxes_list(flat: np.ndarray, offsets: np.ndarray) -> List[np.ndarray]:
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def check_of(query: str, result: Any) -> Any:
    """A digest of a query's result every peer must agree on: for filters the count and the
    sum of the row ids, for ORDER BY ... LIMIT the ids in order, for GROUP BY the sorted
    group sizes."""
    if query == "group_by":
        return sorted(int(s) for s in result)
    ids = np.asarray(result, np.int64).reshape(-1)
    if query in ("order_by_limit", "cosine_top10"):
        return ids.tolist()
    return [int(len(ids)), int(ids.sum())]


def _rows(query: str, result: Any) -> int:
    if query == "group_by":
        return int(sum(int(s) for s in result))
    return int(len(np.asarray(result).reshape(-1)))


class Peer:
    name = "peer"

    def version(self) -> str:
        raise NotImplementedError

    def prepare(self, data: Path, work: Path) -> None:
        raise NotImplementedError

    def notes(self) -> Dict[str, str]:
        return {}


def run(peer: Peer, data: Path, work: Path, repeat: int, only: List[str], budget: float = 20.0) -> Dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    peer.prepare(data, work)
    prepare = {"prepare_s": time.perf_counter() - t0, "prepare_cpu_s": time.process_time() - c0}
    gc.collect()
    results: Dict[str, Any] = {}
    for q in only:
        fn: Callable[[], Any] = getattr(peer, q)
        walls, cpus = [], []
        out: Any = None
        try:
            for _ in range(max(1, repeat)):
                if walls and sum(walls) > budget:  # a slow query: fewer runs, so the run fits its time
                    break
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                out = fn()
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            best = int(np.argmin(walls))
            results[q] = {"wall_s": walls[best], "cpu_s": cpus[best], "first_wall_s": walls[0], "walls": walls, "cpus": cpus,
                          "rows": _rows(q, out), "check": check_of(q, out)}
        except Exception as exc:  # noqa: BLE001 - a query a peer cannot run is a figure too
            traceback.print_exc()
            results[q] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"peer": peer.name, "version": peer.version(), "python": platform.python_version(), **prepare,
            "queries": results, "notes": peer.notes(),
            "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}


def main(peer_class: type) -> int:
    ap = argparse.ArgumentParser(description=f"TQL benchmark peer: {peer_class.name}")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--budget", type=float, default=20.0, help="no further runs of a query once its runs took this many seconds")
    args = ap.parse_args()
    try:
        peer = peer_class()
        result = run(peer, args.data, args.work, args.repeat, [q for q in args.queries.split(",") if q], args.budget)
        print(json.dumps(result), flush=True)
        return 0
    except BaseException as exc:  # noqa: BLE001 - the harness wants every failure as JSON
        traceback.print_exc()
        print(json.dumps({"peer": peer_class.name, "error": f"{type(exc).__name__}: {exc}"[:2000]}), flush=True)
        return 1
