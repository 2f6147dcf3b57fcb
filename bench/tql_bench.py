"""TQL benchmark: lakeformat's TQL against deeplake 4.7.4's TQL, DuckDB and pylance.

The issue's Speed section: 10,000,000 tabular rows (int64 id, float64 value, 20-character
text, class label), 1,000,000 float32[384] embeddings and 100,000 ragged bbox samples
(0 to 8 boxes of 4 float32 each); six queries:

    scalar_filter   label == 3 AND value > 0.5
    text_contains   CONTAINS(text, 'abc')
    order_by_limit  ORDER BY value LIMIT 100
    cosine_top10    ORDER BY COSINE_SIMILARITY(embedding, ARRAY[...]) DESC LIMIT 10
    bbox_area       ANY(boxes[:, 2] * boxes[:, 3] > 1200)
    group_by        GROUP BY label

Each peer runs in its own process under its own venv (bench/peers/tql_*.py), on the same
cached data (.bench_data/tql/scale-S/, generated once, seeded): it writes (or loads) the
data, then runs every query `--repeat` times. Reported per query and peer: the best wall
time and the CPU seconds of that run, the first run's wall time, the rows selected, and
whether the result agrees with the other peers'. Ratios are peer time / ours (above 1: ours
is faster). The cosine query's bytes scanned / time is compared with this machine's memory
bandwidth, measured here (NumPy max and copy over 512 MiB). A query a peer cannot run (ours
raising "not executed yet", say) is recorded as its error. Results: JSON and a markdown
table in bench/results/session7/tql/. Never asserted, run by hand:

    bash bench/setup_peers.sh deeplake4 lance        # once: the peer venvs
    .venv/bin/python bench/tql_bench.py --scale 0.1  # a smaller run
    .venv/bin/python bench/tql_bench.py              # the full size (the lead's run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH / "peers"))

from tql_common import DIM, QUERIES, TQL  # noqa: E402

DATA_ROOT = ROOT / ".bench_data" / "tql"
RESULTS = BENCH / "results" / "session7" / "tql"
FULL = {"tab": 10_000_000, "emb": 1_000_000, "box": 100_000}
SEED = 20261206
TEXT_LEN = 20
PEERS = ("lakeformat", "deeplake4", "duckdb", "lance")
SCALAR_QUERIES = ("scalar_filter", "text_contains", "order_by_limit")


def peer_python(peer: str) -> str:
    own = ROOT / ".venv" / "bin" / "python"
    if peer in ("lakeformat", "duckdb"):
        return str(own if own.exists() else sys.executable)
    return str(ROOT / ".venvs" / peer / "bin" / "python")


# ------------------------------------------------------------------------------------- data
def ensure_data(scale: float) -> Path:
    """The cached columns for `scale` (generated once; a complete folder has meta.json)."""
    d = DATA_ROOT / f"scale-{scale:g}"
    if (d / "meta.json").exists():
        return d
    tmp = d.with_name(d.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    n_tab, n_emb, n_box = (max(10, int(FULL[k] * scale)) for k in ("tab", "emb", "box"))
    t0 = time.perf_counter()
    np.save(tmp / "tab_id.npy", np.arange(n_tab, dtype=np.int64))
    np.save(tmp / "tab_value.npy", rng.random(n_tab))
    letters = rng.integers(ord("a"), ord("z") + 1, (n_tab, TEXT_LEN), dtype=np.uint8)
    np.save(tmp / "tab_text.npy", letters.view(f"S{TEXT_LEN}").reshape(n_tab))
    del letters
    np.save(tmp / "tab_label.npy", rng.integers(0, 10, n_tab).astype(np.int32))
    emb = np.lib.format.open_memmap(tmp / "emb.npy", mode="w+", dtype=np.float32, shape=(n_emb, DIM))
    for a in range(0, n_emb, 100_000):
        b = min(n_emb, a + 100_000)
        emb[a:b] = rng.standard_normal((b - a, DIM), dtype=np.float32)
    emb.flush()
    del emb
    np.save(tmp / "query.npy", np.round(rng.standard_normal(DIM), 6).astype(np.float32))
    k = rng.integers(0, 9, n_box)
    flat = np.empty((int(k.sum()), 4), np.float32)
    flat[:, :2] = rng.uniform(0, 100, (len(flat), 2))
    flat[:, 2:] = rng.uniform(1, 40, (len(flat), 2))
    np.save(tmp / "box_flat.npy", flat)
    np.save(tmp / "box_offsets.npy", np.concatenate([[0], np.cumsum(k)]).astype(np.int64))
    meta = {"scale": scale, "seed": SEED, "rows": {"tab": n_tab, "emb": n_emb, "box": n_box, "boxes": int(k.sum())},
            "bytes": {"emb": n_emb * DIM * 4}, "generated_s": round(time.perf_counter() - t0, 1)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return d


# -------------------------------------------------------------------------------- bandwidth
def measure_bandwidth(mib: int = 512, repeat: int = 5) -> Dict[str, float]:
    """This machine's memory bandwidth as NumPy sees it, one thread: a float32 max (reads;
    vectorised, unlike sum's pairwise loop) and a copy (reads + writes) over `mib` MiB, best
    of `repeat`, in GB/s."""
    n = mib * (1 << 20) // 4
    a = np.ones(n, np.float32)
    b = np.empty_like(a)
    reads, copies = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a.max()
        reads.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
        t0 = time.perf_counter()
        np.copyto(b, a)
        copies.append(2 * a.nbytes / (time.perf_counter() - t0) / 1e9)
    return {"read_GBps": max(reads), "copy_GBps": max(copies), "bandwidth_GBps": max(max(reads), max(copies)), "array_MiB": mib}


# ------------------------------------------------------------------------------------ peers
def run_peer(peer: str, data: Path, work: Path, repeat: int, queries: List[str], timeout: float, budget: float) -> Dict[str, Any]:
    python = peer_python(peer)
    base: Dict[str, Any] = {"peer": peer, "python_exe": python}
    if not Path(python).exists():
        return {**base, "error": f"no interpreter at {python}; run bash bench/setup_peers.sh {peer}"}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [python, str(BENCH / "peers" / f"tql_{peer}.py"), "--data", str(data), "--work", str(work),
           "--repeat", str(repeat), "--queries", ",".join(queries), "--budget", str(budget)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=str(ROOT))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return {**base, "error": f"timed out after {timeout:.0f}s", "stderr_tail": err[-2000:], "wall_s": time.perf_counter() - t0}
    result: Optional[Dict[str, Any]] = None
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            try:
                result = {**base, **json.loads(line)}
                break
            except json.JSONDecodeError:
                continue
    if result is None:
        result = {**base, "error": f"exit code {proc.returncode} and no JSON line"}
    if proc.returncode != 0 or any("error" in q for q in result.get("queries", {}).values()):
        result["stderr_tail"] = err[-3000:]
    result.update(wall_s=time.perf_counter() - t0, loadavg_before=round(load_before, 2), loadavg_after=round(os.getloadavg()[0], 2))
    shutil.rmtree(work, ignore_errors=True)
    return result


# ----------------------------------------------------------------------------------- report
def agreement(doc: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Per query: which peers' results agree with ours (or, when ours failed, DuckDB's)."""
    out: Dict[str, Dict[str, Any]] = {}
    by_peer = {r["peer"]: r.get("queries", {}) for r in doc["results"]}
    for q in doc["queries"]:
        ref_peer = next((p for p in ("lakeformat", "duckdb", "lance", "deeplake4") if "check" in by_peer.get(p, {}).get(q, {})), None)
        if ref_peer is None:
            continue
        ref = by_peer[ref_peer][q]["check"]
        out[q] = {"reference": ref_peer, **{p: (r[q]["check"] == ref) for p, r in by_peer.items() if "check" in r.get(q, {})}}
    return out


def render(doc: Dict[str, Any]) -> str:
    peers = [r["peer"] for r in doc["results"]]
    by_peer = {r["peer"]: r for r in doc["results"]}
    ours = by_peer.get("lakeformat", {}).get("queries", {})
    agree = doc.get("agreement", {})
    m = doc["data"]["rows"]
    lines = [f"# TQL benchmark, scale {doc['scale']:g} ({doc['started']})", "",
             f"Data: {m['tab']:,} tabular rows, {m['emb']:,} float32[384] embeddings, {m['box']:,} bbox samples ({m['boxes']:,} boxes). "
             f"Best of {doc['repeat']} runs per query (fewer once a query's runs took {doc['budget']:g} s), each peer in its own process. Machine: {doc['machine']['platform']}, "
             f"{doc['machine']['cpus']} CPUs, load average {doc['machine']['loadavg_start']} at the start.", "",
             "Wall seconds (CPU seconds of that run, all threads); ratio = peer wall / ours (above 1: ours is faster); "
             "a result that differs from the reference's is marked `≠`.", ""]
    head = ["query"] + [f"{p}" for p in peers] + [f"{p}/ours" for p in peers if p != "lakeformat"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for q in doc["queries"]:
        row = [q]
        for p in peers:
            r = by_peer[p].get("queries", {}).get(q) or {"error": by_peer[p].get("error", "not run")}
            if "error" in r:
                row.append("error: " + r["error"][:80].replace("|", "/"))
            else:
                mark = "" if agree.get(q, {}).get(p, True) else " ≠"
                row.append(f"{r['wall_s']:.3f} ({r['cpu_s']:.3f}){mark}")
        for p in peers:
            if p == "lakeformat":
                continue
            r = by_peer[p].get("queries", {}).get(q, {})
            o = ours.get(q, {})
            row.append(f"{r['wall_s'] / o['wall_s']:.2f}" if "wall_s" in r and "wall_s" in o and o["wall_s"] > 0 else "-")
        lines.append("| " + " | ".join(row) + " |")
    others = [p for p in peers if p != "lakeformat"]
    if others and ours:  # CPU seconds: less sensitive to other load on the machine than wall time
        lines += ["", "CPU-second ratios, peer / ours (a busy machine moves these less than the wall times):", "",
                  "| query | " + " | ".join(f"{p}/ours" for p in others) + " |", "|" + "---|" * (len(others) + 1)]
        for q in doc["queries"]:
            o = ours.get(q, {})
            cells = []
            for p in others:
                r = by_peer[p].get("queries", {}).get(q, {})
                cells.append(f"{r['cpu_s'] / o['cpu_s']:.2f}" if "cpu_s" in r and o.get("cpu_s") else "-")
            lines.append(f"| {q} | " + " | ".join(cells) + " |")
    bw = doc["bandwidth"]
    lines += ["", f"Memory bandwidth (NumPy, one thread, {bw['array_MiB']} MiB): read (max) {bw['read_GBps']:.1f} GB/s, "
              f"copy {bw['copy_GBps']:.1f} GB/s (reads + writes)."]
    cos = doc.get("cosine_bandwidth")
    if cos:
        lines.append(f"Cosine top-10 scans {cos['bytes'] / 1e9:.2f} GB: ours {cos['GBps']:.2f} GB/s = {cos['fraction']:.2f} of the measured "
                     f"{cos['bandwidth_GBps']:.1f} GB/s (floor: 0.5).")
    lines += ["", "Floors (the issue's): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in doc.get("floors", {}).items())]
    notes = {p: by_peer[p].get("notes") for p in peers if by_peer[p].get("notes")}
    if notes:
        lines += ["", "Notes: " + "; ".join(f"{p}: " + ", ".join(f"{k}: {v}" for k, v in n.items()) for p, n in notes.items())]
    prep = ", ".join(f"{p} {by_peer[p]['prepare_s']:.1f} s" for p in peers if "prepare_s" in by_peer[p])
    lines += ["", f"Writing / loading the data (not in the figures): {prep}."]
    return "\n".join(lines) + "\n"


def floors(doc: Dict[str, Any]) -> Dict[str, bool]:
    by_peer = {r["peer"]: r.get("queries", {}) for r in doc["results"]}

    def wall(p: str, q: str) -> Optional[float]:
        return by_peer.get(p, {}).get(q, {}).get("wall_s")

    out: Dict[str, bool] = {}
    if "deeplake4" in by_peer:
        out["faster than deeplake 4 on every query"] = all(
            wall("lakeformat", q) is not None and (wall("deeplake4", q) is None or wall("lakeformat", q) < wall("deeplake4", q)) for q in doc["queries"])
    scal = [q for q in SCALAR_QUERIES if q in doc["queries"]]

    def within(peer: str, factor: float) -> bool:  # a query the peer could not run does not count
        return all(wall("lakeformat", q) is not None and (wall(peer, q) is None or wall("lakeformat", q) <= factor * wall(peer, q)) for q in scal)

    if "lance" in by_peer and scal:
        out["no slower than pylance on the scalar queries"] = within("lance", 1.0)
    if "duckdb" in by_peer and scal:
        out["within 1.5x of DuckDB on the scalar queries"] = within("duckdb", 1.5)
    if doc.get("cosine_bandwidth"):
        out["cosine top-10 at half the memory bandwidth or more"] = doc["cosine_bandwidth"]["fraction"] >= 0.5
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sizes (default 1)")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--repeat", type=int, default=3, help="runs per query; the best is reported")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds a query's runs may take before it is run no more (at least once)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per peer (writing its data and every query)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--bandwidth-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bandwidth_only:
        print(json.dumps(measure_bandwidth()))
        return 0
    peers = [p for p in args.peers.split(",") if p]
    queries = [q for q in args.queries.split(",") if q]
    bad = [p for p in peers if p not in PEERS] + [q for q in queries if q not in QUERIES]
    if bad:
        raise SystemExit(f"unknown peers or queries: {bad} (peers: {PEERS}; queries: {QUERIES})")
    started = time.strftime("%Y%m%d-%H%M%S")
    print(f"[tql-bench] data at scale {args.scale:g} ...", flush=True)
    data = ensure_data(args.scale)
    meta = json.loads((data / "meta.json").read_text())
    doc: Dict[str, Any] = {"benchmark": "tql", "started": started, "scale": args.scale, "repeat": args.repeat, "budget": args.budget,
                           "peers": peers, "queries": queries, "tql": TQL, "data": meta,
                           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                                       "loadavg_start": round(os.getloadavg()[0], 2)}, "results": []}
    print("[tql-bench] memory bandwidth ...", flush=True)
    # in a child process: Linux keeps a process's peak RSS across exec, and the peers' peak
    # RSS figures must not start at this measurement's 1 GiB
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--bandwidth-only"], capture_output=True, text=True, check=True)
    doc["bandwidth"] = json.loads(out.stdout.strip().splitlines()[-1])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"tql-{started}-scale{args.scale:g}"
    work_root = DATA_ROOT / "work" / f"{started}-{os.getpid()}"
    for peer in peers:
        print(f"[tql-bench] {peer} ...", end=" ", flush=True)
        r = run_peer(peer, data, work_root / peer, args.repeat, queries, args.timeout, args.budget)
        doc["results"].append(r)
        if "error" in r:
            print(f"FAILED: {r['error'][:200]}", flush=True)
        else:
            print(f"prepare {r['prepare_s']:.1f}s; " + ", ".join(
                f"{q} {v['wall_s']:.3f}s" if "wall_s" in v else f"{q} ERROR" for q, v in r["queries"].items()), flush=True)
        Path(f"{stem}.json").write_text(json.dumps(doc, indent=2))  # saved after every peer
    shutil.rmtree(work_root, ignore_errors=True)
    doc["agreement"] = agreement(doc)
    ours = next((r for r in doc["results"] if r["peer"] == "lakeformat"), {}).get("queries", {}).get("cosine_top10", {})
    if "wall_s" in ours:
        nbytes = meta["bytes"]["emb"]
        gbps = nbytes / ours["wall_s"] / 1e9
        doc["cosine_bandwidth"] = {"bytes": nbytes, "GBps": gbps, "bandwidth_GBps": doc["bandwidth"]["bandwidth_GBps"],
                                   "fraction": gbps / doc["bandwidth"]["bandwidth_GBps"]}
    doc["floors"] = floors(doc)
    Path(f"{stem}.json").write_text(json.dumps(doc, indent=2))
    text = render(doc)
    Path(f"{stem}.md").write_text(text)
    print()
    print(text)
    print(f"[tql-bench] results: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
