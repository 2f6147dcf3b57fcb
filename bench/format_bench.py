"""Format benchmark: lakeformat against Deep Lake 3, Deep Lake 4, Lance and Parquet.

Runs every (workload, peer) pair as its own subprocess under that peer's venv,
one at a time (the machine has 2 cores), each in a fresh work folder and with
a timeout; a peer that fails or times out is reported and the run goes on.
Prints one table per workload plus lakeformat's ratios against each peer, and
writes everything to ``bench/results/format-<timestamp>.json``. Run by hand,
never in CI; no figure is asserted.

    bash bench/setup_peers.sh                     # once: peer venvs in .venvs/
    python3 bench/format_bench.py --small         # smoke run, 1/20 of the data
    python3 bench/format_bench.py                 # full size
    python3 bench/format_bench.py --peers lance,parquet --workloads tabular

Standard library only (data generation runs under a python that has NumPy).
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
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import report  # noqa: E402

VENVS = ROOT / ".venvs"
DATA_ROOT = ROOT / ".bench_data"
WORKLOADS = ("tabular", "images_raw", "images_none", "images_png", "embeddings")
SMALL_SCALE = 0.05


def project_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else (shutil.which("python3") or sys.executable)


def peer_python(peer: str) -> str:
    if peer in ("lakeformat", "lakeformat_dest"):
        return project_python()
    venv = {"deeplake3": "deeplake3", "deeplake4": "deeplake4", "lance": "lance", "parquet": "lance"}[peer]
    if peer == "parquet" and (VENVS / "arrow" / "bin" / "python").exists():
        venv = "arrow"
    return str(VENVS / venv / "bin" / "python")


# lakeformat_dest: lakeformat with the Airbyte destination's tensor defaults (tabular only)
PEERS = ("lakeformat", "lakeformat_dest", "deeplake3", "deeplake4", "lance", "parquet")


def _has_numpy(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import numpy"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_data(scale: float) -> Path:
    """Generate the cached inputs for ``scale`` (no-op when present) under a python with NumPy."""
    candidates = [project_python(), sys.executable, str(VENVS / "lance" / "bin" / "python")]
    python = next((p for p in candidates if Path(p).exists() and _has_numpy(p)), None)
    if python is None:
        raise SystemExit("no python with numpy found to generate the data; run bench/setup_peers.sh")
    subprocess.run([python, str(BENCH / "datasets.py"), "--scale", f"{scale:g}", "--data-root", str(DATA_ROOT)],
                   check=True, stdout=subprocess.DEVNULL)
    return DATA_ROOT / f"scale-{scale:g}"


def run_one(peer: str, workload: str, scale: float, work_root: Path, timeout: float, keep: bool) -> dict[str, Any]:
    """One peer on one workload in a fresh process and work folder; never raises."""
    work = work_root / f"{peer}-{workload}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    python = peer_python(peer)
    cmd = [python, str(BENCH / "peers" / f"{peer}_peer.py"), "--workload", workload,
           "--data", str(DATA_ROOT), "--work", str(work), "--scale", f"{scale:g}"]
    base = {"peer": peer, "workload": workload, "scale": scale, "python_exe": python}
    if not Path(python).exists():
        return {**base, "error": f"no interpreter at {python}; run bench/setup_peers.sh"}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    # Own process group, so a timeout also ends any workers the peer started.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=str(ROOT))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        result = {**base, "error": f"timed out after {timeout:.0f}s", "stderr_tail": err[-2000:]}
    else:
        result = None
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                try:
                    result = {**base, **json.loads(line)}
                    break
                except json.JSONDecodeError:
                    continue
        if result is None:
            result = {**base, "error": f"exit code {proc.returncode} and no JSON line"}
        if proc.returncode != 0:
            result.setdefault("error", f"exit code {proc.returncode}")
            result["stderr_tail"] = err[-2000:]
    result["wall_s"] = time.perf_counter() - t0
    result["loadavg_before"] = round(load_before, 2)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    if "error" not in result:
        result["folder_bytes"] = folder_bytes(work)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def folder_bytes(work: Path) -> dict[str, int]:
    """Bytes at rest per top-level entry of what a peer wrote (for the Deep Lake formats, one
    per tensor folder, hidden `_x_id` / `_x_shape` ones included): where the bytes go."""
    out: dict[str, int] = {}
    for root in [p for p in work.iterdir() if p.is_dir()]:
        for entry in root.iterdir():
            files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
            out[entry.name] = out.get(entry.name, 0) + sum(f.stat().st_size for f in files)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


TIMES = ("write_s", "read_s", "random_s", "open_s", "write_cpu_s", "read_cpu_s", "random_cpu_s")


def best_of(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Fastest time per figure over the successful attempts; rates recomputed from them."""
    ok = [a for a in attempts if "error" not in a]
    if not ok:
        return {**attempts[-1], "attempts": attempts} if len(attempts) > 1 else attempts[-1]
    best = dict(ok[0])
    for key in TIMES:
        vals = [a[key] for a in ok if key in a]
        if vals:
            best[key] = min(vals)
    mb = 1e6
    rows, raw = best["rows"], best["raw_bytes"]
    best.update(write_rows_s=rows / best["write_s"], write_MBps=raw / mb / best["write_s"],
                read_rows_s=rows / best["read_s"], read_MBps=raw / mb / best["read_s"],
                random_rows_s=best["random_rows"] / best["random_s"],
                random_MBps=raw * best["random_rows"] / rows / mb / best["random_s"],
                verified=all(a.get("verified") for a in ok),
                loadavg_before=max(a.get("loadavg_before", 0) for a in ok))
    if len(attempts) > 1:
        best["attempts"] = attempts
    return best


def _csv(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma list from {','.join(PEERS)}")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list from {','.join(WORKLOADS)}")
    ap.add_argument("--small", action="store_true", help=f"quick run at scale {SMALL_SCALE}")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full data (default 1)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per peer per workload")
    ap.add_argument("--work-root", type=Path, default=DATA_ROOT / "work")
    ap.add_argument("--keep", action="store_true", help="keep the written datasets (in WORK_ROOT/<ts>-<pid>/)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per peer per workload; the fastest time of each figure is kept")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/format-<ts>.json)")
    args = ap.parse_args(argv)

    peers = _csv(args.peers, PEERS, "peer")
    workloads = _csv(args.workloads, WORKLOADS, "workload")
    scale = SMALL_SCALE if args.small else args.scale
    started = time.strftime("%Y%m%d-%H%M%S")
    out_path = args.out or BENCH / "results" / f"format-{started}.json"

    print(f"[bench] data at scale {scale:g} ...", flush=True)
    data_dir = ensure_data(scale)
    meta = json.loads((data_dir / "meta.json").read_text())
    doc: dict[str, Any] = {
        "benchmark": "format", "started": started, "scale": scale, "peers": peers, "workloads": workloads,
        "timeout_s": args.timeout, "repeat": args.repeat,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "data": meta, "results": [],
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # One folder per harness run: two runs started at once (by two people on a
    # shared machine) must not write into, or delete, each other's datasets.
    work_root = args.work_root / f"{started}-{os.getpid()}"
    for workload in workloads:
        for peer in peers:
            if peer == "lakeformat_dest" and workload != "tabular":
                continue  # the destination's defaults are measured on the tabular workload only
            print(f"[bench] {workload:<11} {peer:<10} ...", end=" ", flush=True)
            attempts = []
            for _ in range(max(1, args.repeat)):
                attempts.append(run_one(peer, workload, scale, work_root, args.timeout, args.keep))
                if "error" in attempts[-1]:
                    break
            r = best_of(attempts)
            doc["results"].append(r)
            if "error" in r:
                print(f"FAILED ({r['wall_s']:.0f}s): {r['error'][:150]}", flush=True)
            else:
                print(f"write {r['write_s']:.2f}s  read {r['read_s']:.2f}s  random {r['random_s']:.3f}s  "
                      f"disk {r['bytes_on_disk'] / 1e6:,.1f} MB  load {r['loadavg_before']:.1f}  "
                      f"{'ok' if r.get('verified') else 'MISMATCH ' + str(r.get('verify_error'))}", flush=True)
                if peer in ("lakeformat", "lakeformat_dest", "deeplake3") and r.get("folder_bytes"):
                    top = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in list(r["folder_bytes"].items())[:12])
                    print(f"[bench]   MB by folder: {top}", flush=True)
            # Saved after every run, so a long run interrupted still leaves its figures.
            out_path.write_text(json.dumps(doc, indent=2))
    if not args.keep:
        shutil.rmtree(work_root, ignore_errors=True)
    print()
    print(report.render(doc))
    print(f"\n[bench] results: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
