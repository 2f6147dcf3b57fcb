"""Tables and ratios from a format benchmark result file.

``format_bench.py`` prints these at the end of a run; this re-prints them from a
saved file::

    python bench/report.py bench/results/format-20250101-120000.json
    python bench/report.py            # the newest bench/results/format-*.json

Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OURS = "lakeformat"

# (key in a peer's JSON, column title, format, higher-is-better)
FIGURES = [
    ("write_rows_s", "write rows/s", "{:,.0f}", True),
    ("write_MBps", "write MB/s", "{:,.1f}", True),
    ("read_rows_s", "read rows/s", "{:,.0f}", True),
    ("read_MBps", "read MB/s", "{:,.1f}", True),
    ("random_rows_s", "rand rows/s", "{:,.0f}", True),
    ("random_MBps", "rand MB/s", "{:,.1f}", True),
    ("disk_MB", "disk MB", "{:,.1f}", False),
]
RATIO_FIGURES = [("write_rows_s", "write"), ("read_rows_s", "full read"), ("random_rows_s", "random read"),
                 ("disk_MB", "disk size")]


def _fmt_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    def line(r: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _with_derived(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    if "bytes_on_disk" in r:
        r["disk_MB"] = r["bytes_on_disk"] / 1e6
        r["disk_ratio"] = r["bytes_on_disk"] / r["raw_bytes"] if r.get("raw_bytes") else float("nan")
    return r


def render(doc: dict[str, Any]) -> str:
    """The whole report as text: one table per workload, then lakeformat's ratios."""
    out: list[str] = []
    results = [_with_derived(r) for r in doc["results"]]
    workloads = list(dict.fromkeys(r["workload"] for r in results))
    for w in workloads:
        rs = [r for r in results if r["workload"] == w]
        ok = [r for r in rs if "error" not in r]
        head = f"== {w}"
        if ok:
            head += f"  ({ok[0]['rows']:,} rows, {ok[0]['raw_bytes'] / 1e6:,.1f} MB raw)"
        out.append(head)
        header = ["peer"] + [f[1] for f in FIGURES] + ["disk/raw", "ok", "compression"]
        rows = []
        for r in rs:
            if "error" in r:
                rows.append([r["peer"]] + ["-"] * (len(FIGURES) + 2) + [f"FAILED: {r['error'][:70]}"])
                continue
            rows.append([r["peer"]] + [fmt.format(r[k]) for k, _, fmt, _ in FIGURES]
                        + [f"{r['disk_ratio']:.2f}", "yes" if r.get("verified") else "NO", r.get("compression", "")])
        out.append(_fmt_table(header, rows))
        out.append("")
    out.append(render_ratios(results))
    cpus = (doc.get("machine") or {}).get("cpus") or 0
    busy = [r for r in results if cpus and r.get("loadavg_before", 0) > cpus]
    if busy:
        out.append("")
        out.append(f"WARNING: the machine was busy (1-min load average above its {cpus} CPUs) when "
                   f"{len(busy)} of {len(results)} runs started; wall-clock figures of those runs are "
                   "inflated by other processes: compare *_cpu_s in the JSON, or rerun with --repeat.")
        out.append("  " + ", ".join(f"{r['workload']}/{r['peer']} ({r['loadavg_before']:.1f})" for r in busy))
    return "\n".join(out)


def render_ratios(results: list[dict[str, Any]]) -> str:
    """lakeformat / peer for each rate (>1: lakeformat faster); for disk, lakeformat bytes / peer bytes (<1: smaller)."""
    lines = [f"== ratios: {OURS} / peer  (rates: >1 means {OURS} is faster; disk size: <1 means {OURS} is smaller)"]
    by = {(r["workload"], r["peer"]): r for r in results}
    workloads = list(dict.fromkeys(r["workload"] for r in results))
    peers = [p for p in dict.fromkeys(r["peer"] for r in results) if p != OURS]
    header = ["workload", "vs peer"] + [t for _, t in RATIO_FIGURES]
    rows = []
    for w in workloads:
        ours = by.get((w, OURS))
        for p in peers:
            theirs = by.get((w, p))
            if theirs is None:
                continue
            if ours is None or "error" in ours:
                why = "not run" if ours is None else "lakeformat failed"
                rows.append([w, p] + [why] + ["-"] * (len(RATIO_FIGURES) - 1))
            elif "error" in theirs:
                rows.append([w, p] + ["peer failed"] + ["-"] * (len(RATIO_FIGURES) - 1))
            else:
                # A read that did not return the input is no figure to be proud of: flag it.
                mark = "" if ours.get("verified") and theirs.get("verified") else " (!)"
                rows.append([w, p] + [f"{ours[k] / theirs[k]:.2f}x{mark}" if theirs[k] else "-"
                                      for k, _ in RATIO_FIGURES])
    if not rows:
        return lines[0] + "\n(no peers to compare)"
    failures = sorted({r["error"] for r in results if r["peer"] == OURS and "error" in r})
    note = [f"{OURS} failed: {e[:200]}" for e in failures]
    note += [f"(!) {r['workload']}/{r['peer']}: read back differs from the input: {r.get('verify_error')}"
             for r in results if "error" not in r and not r.get("verified")]
    return "\n".join(lines + [_fmt_table(header, rows)] + note)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        path = Path(argv[0])
    else:
        files = sorted(RESULTS_DIR.glob("format-*.json"))
        if not files:
            print(f"no results in {RESULTS_DIR}", file=sys.stderr)
            return 1
        path = files[-1]
    doc = json.loads(path.read_text())
    print(f"# {path}  (scale {doc.get('scale')}, {doc.get('started')})")
    print(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
