"""destination-deeplake against its peers, on one file of recorded Airbyte messages.

The file: N `users`-like RECORD messages (15 fields: ints, floats, strings, timestamps and a
nested `address` object, as source-faker's users stream), with a STATE every --state-every
records (0: one at the end, the largest gap). Each peer runs in its own process, timed from
start to exit, with its peak RSS:

- destination-deeplake: `python -m connectors.destination_deeplake write` fed the file on stdin;
- Parquet: the same lines parsed with orjson, batched, `pa.Table.from_pylist` + ParquetWriter;
- PyAirbyte: a replay "source" executable that prints the file, read into PyAirbyte's DuckDB
  cache (`source.read(cache=DuckDBCache(...))`, AIRBYTE_OFFLINE_MODE=1).

The `dedup` figure: an `append_dedup` sync of N records whose ids all repeat those of an
earlier sync of N, so that N of the 2N rows are superseded and removed (one bulk delete),
timed like the plain append of N records; the floor is 3x that append's time (the ratio is
printed in wall and in CPU seconds, with the sync's peak RSS). It also times 200 single pops
(the old one-row-at-a-time removal; `--old-path-pops 0` skips them) on the result, for the
extrapolated cost of the old path.

    python bench/destination_bench.py --records 1000000     # JSON into bench/results/destination-<time>.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / ".bench_data" / "destination"
FLOOR = 100_000

USERS_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
        "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
        "name": {"type": "string"}, "title": {"type": "string"}, "age": {"type": "integer"},
        "email": {"type": "string"}, "telephone": {"type": "string"}, "gender": {"type": "string"},
        "language": {"type": "string"}, "academic_degree": {"type": "string"}, "nationality": {"type": "string"},
        "occupation": {"type": "string"}, "height": {"type": "number"}, "weight": {"type": "integer"},
        "address": {"type": "object", "properties": {k: {"type": "string"} for k in (
            "street_number", "street_name", "city", "state", "province", "postal_code", "country_code")}},
    },
}


def make_messages(path: Path, n: int, state_every: int, seed: int = 7) -> None:
    """Write n users-like RECORD messages (and STATE messages) to `path`, one JSON per line."""
    import orjson

    rnd = random.Random(seed)
    first = ["Ada", "Grace", "Alan", "Linus", "Barbara", "Edsger", "Donald", "Margaret", "Ken", "Frances"]
    last = ["Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Dijkstra", "Knuth", "Hamilton", "Thompson", "Allen"]
    titles = ["Mr.", "Ms.", "Dr.", "Prof."]
    langs = ["English", "French", "German", "Japanese", "Spanish", "Swahili"]
    jobs = ["Engineer", "Nurse", "Pilot", "Teacher", "Carpenter", "Chemist", "Designer"]
    cities = ["Lisbon", "Oslo", "Kyoto", "Lima", "Nairobi", "Perth", "Quebec"]
    tmp = path.with_suffix(".tmp")
    base = 1_600_000_000
    with open(tmp, "wb") as f:
        buf = []
        for i in range(1, n + 1):
            fn, ln = rnd.choice(first), rnd.choice(last)
            t0 = base + rnd.randrange(50_000_000)
            data = {
                "id": i,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t0)),
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t0 + rnd.randrange(1_000_000))),
                "name": f"{fn} {ln}", "title": rnd.choice(titles), "age": rnd.randrange(18, 90),
                "email": f"{fn.lower()}.{ln.lower()}{i}@example.com", "telephone": f"+1-{rnd.randrange(200, 999)}-{rnd.randrange(1000000, 9999999)}",
                "gender": rnd.choice(["Female", "Male", "Other"]), "language": rnd.choice(langs),
                "academic_degree": rnd.choice(["Bachelor", "Master", "PhD"]), "nationality": rnd.choice(["Portuguese", "Norwegian", "Japanese", "Peruvian"]),
                "occupation": rnd.choice(jobs), "height": round(rnd.uniform(1.4, 2.1), 2), "weight": rnd.randrange(45, 120),
                "address": {"street_number": str(rnd.randrange(1, 999)), "street_name": f"{rnd.choice(last)} Street",
                            "city": rnd.choice(cities), "state": "XX", "province": "YY",
                            "postal_code": f"{rnd.randrange(10000, 99999)}", "country_code": "ZZ"},
            }
            buf.append(orjson.dumps({"type": "RECORD", "record": {"stream": "users", "data": data, "emitted_at": 1_700_000_000_000 + i}}))
            if (state_every and i % state_every == 0) or i == n:
                buf.append(orjson.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
                    "stream_descriptor": {"name": "users"}, "stream_state": {"id": i}}, "sourceStats": {"recordCount": float(state_every or n)}}}))
            if len(buf) >= 10_000:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")
    os.replace(tmp, path)


DEDUP_FLOOR_RATIO = 3.0


def single_pop_seconds(path: str, pops: int = 200) -> float:
    """Seconds per row of the old removal (`ds.pop(i)` one row at a time inside the sink's
    open `with` block, one flush at the end) on a copy of the dataset at `path`."""
    import lakeformat

    copy = path + "-pops"
    shutil.copytree(path, copy)
    try:
        ds = lakeformat.load(copy)
        rows = sorted(random.Random(3).sample(range(len(ds)), pops), reverse=True)
        t = time.perf_counter()
        with ds:
            for i in rows:
                ds.pop(i)
        return (time.perf_counter() - t) / pops
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def catalog(mode: str = "append") -> dict:
    return {"streams": [{"stream": {"name": "users", "json_schema": USERS_SCHEMA, "supported_sync_modes": ["full_refresh", "incremental"],
                                    "source_defined_primary_key": [["id"]], "default_cursor_field": ["updated_at"]},
                         "sync_mode": "incremental", "destination_sync_mode": mode, "primary_key": [["id"]],
                         "cursor_field": ["updated_at"], "generation_id": 1, "minimum_generation_id": 0, "sync_id": 1}]}


def run_timed(cmd: list[str], stdin_path: Path | None = None, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run `cmd` to completion: wall seconds and the child's peak RSS (MiB)."""
    t0 = time.perf_counter()
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out_chunks = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out_chunks.append(line)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else b""
    finally:
        if stdin_path:
            stdin.close()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}):\n{err.decode()[-3000:]}\n{b''.join(out_chunks).decode()[-2000:]}")
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
            "stdout_lines": len(out_chunks)}


PARQUET_PEER = r'''
import sys, orjson, pyarrow as pa, pyarrow.parquet as pq
src, dst, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
writer = None
batch = []
def flush():
    global writer
    table = pa.Table.from_pylist(batch)
    if writer is None:
        writer = pq.ParquetWriter(dst, table.schema, compression="lz4")
    writer.write_table(table.cast(writer.schema))
    batch.clear()
with open(src, "rb") as f:
    for line in f:
        m = orjson.loads(line)
        if m["type"] == "RECORD":
            batch.append(m["record"]["data"])
            if len(batch) >= batch_size:
                flush()
if batch:
    flush()
writer.close()
'''

REPLAY_SOURCE = r'''#!{python}
"""A source that replays a file of recorded messages (for PyAirbyte)."""
import json, sys, shutil
cmd = sys.argv[1] if len(sys.argv) > 1 else ""
if cmd == "spec":
    print(json.dumps({{"type": "SPEC", "spec": {{"connectionSpecification": {{"type": "object", "properties": {{}}}}}}}}))
elif cmd == "check":
    print(json.dumps({{"type": "CONNECTION_STATUS", "connectionStatus": {{"status": "SUCCEEDED"}}}}))
elif cmd == "discover":
    print(json.dumps({{"type": "CATALOG", "catalog": {{"streams": [{stream}]}}}}))
elif cmd == "read":
    with open({path!r}, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
'''

PYAIRBYTE_PEER = r'''
import os, sys
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1"); os.environ.setdefault("DO_NOT_TRACK", "1")
import airbyte as ab
from airbyte.caches import DuckDBCache
exe, db = sys.argv[1], sys.argv[2]
source = ab.get_source("source-replay", config={}, local_executable=exe)
source.select_all_streams()
result = source.read(cache=DuckDBCache(db_path=db), force_full_refresh=True)
print("rows", len(result["users"].to_pandas()) if False else result.processed_records, file=sys.stderr)
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--state-every", type=int, default=0, help="records between STATE messages (0: one state at the end)")
    p.add_argument("--peers", default="deeplake,parquet,pyairbyte,dedup")
    p.add_argument("--old-path-pops", type=int, default=200,
                   help="single pops timed for the old path's estimate (0: skip that measurement)")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--out", default=None, help="write the results as JSON here (default bench/results/destination-<time>.json)")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    DATA.mkdir(parents=True, exist_ok=True)
    msgs = DATA / f"users-{args.records}-s{args.state_every}.jsonl"
    if not msgs.exists():
        t = time.perf_counter()
        make_messages(msgs, args.records, args.state_every)
        print(f"made {msgs} ({msgs.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    env = dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    results: dict[str, dict[str, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="dest-bench-", dir=str(DATA)))
    try:
        peers = args.peers.split(",")
        if "deeplake" in peers:
            (work / "d.json").write_text(json.dumps({"path": str(work / "lake")}))
            (work / "cat.json").write_text(json.dumps(catalog()))
            results["destination-deeplake"] = run_timed([args.python, "-m", "connectors.destination_deeplake", "write", "--config",
                                                         str(work / "d.json"), "--catalog", str(work / "cat.json")], msgs, env)
            import lakeformat

            assert len(lakeformat.load(str(work / "lake" / "users"), read_only=True)) == args.records
        if "dedup" in peers:
            if "destination-deeplake" not in results:  # the plain append the floor compares with
                (work / "d.json").write_text(json.dumps({"path": str(work / "lake")}))
                (work / "cat.json").write_text(json.dumps(catalog()))
                results["destination-deeplake"] = run_timed([args.python, "-m", "connectors.destination_deeplake", "write", "--config",
                                                             str(work / "d.json"), "--catalog", str(work / "cat.json")], msgs, env)
            # a second sync of the same ids: every row of the first is superseded
            msgs2 = DATA / f"users-{args.records}-s{args.state_every}-again.jsonl"
            if not msgs2.exists():
                make_messages(msgs2, args.records, args.state_every, seed=8)
            (work / "dd.json").write_text(json.dumps({"path": str(work / "dedup")}))
            (work / "cat-dedup.json").write_text(json.dumps(catalog("append_dedup")))
            cmd = [args.python, "-m", "connectors.destination_deeplake", "write", "--config", str(work / "dd.json"),
                   "--catalog", str(work / "cat-dedup.json")]
            first = run_timed(cmd, msgs, env)
            results["dedup sync (supersedes N of 2N)"] = r = run_timed(cmd, msgs2, env)
            r["first_sync_seconds"] = first["seconds"]
            import lakeformat

            assert len(lakeformat.load(str(work / "dedup" / "users"), read_only=True)) == args.records
            if args.old_path_pops:
                r["old_single_pop_seconds_per_row"] = single_pop_seconds(str(work / "dedup" / "users"), args.old_path_pops)
                r["old_path_estimate_seconds"] = r["old_single_pop_seconds_per_row"] * args.records
        if "parquet" in peers:
            results["parquet (pyarrow)"] = run_timed([args.python, "-c", PARQUET_PEER, str(msgs), str(work / "users.parquet"), "50000"], env=env)
        if "pyairbyte" in peers:
            exe = work / "source-replay"
            stream = json.dumps({"name": "users", "json_schema": USERS_SCHEMA, "supported_sync_modes": ["full_refresh"]})
            exe.write_text(REPLAY_SOURCE.format(python=args.python, stream=stream, path=str(msgs)))
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
            results["PyAirbyte DuckDB cache"] = run_timed([args.python, "-c", PYAIRBYTE_PEER, str(exe), str(work / "cache.duckdb")], env=env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.records} records, state every {args.state_every or args.records}")
    print(f"{'peer':28s} {'seconds':>8s} {'records/s':>12s} {'CPU s':>7s} {'records/CPU-s':>14s} {'peak RSS MiB':>13s}")
    for name, r in results.items():
        r["records_per_s"] = args.records / r["seconds"]
        r["records_per_cpu_s"] = args.records / max(r["cpu_seconds"], 1e-9)
        print(f"{name:28s} {r['seconds']:8.2f} {r['records_per_s']:12,.0f} {r['cpu_seconds']:7.2f} {r['records_per_cpu_s']:14,.0f} {r['peak_rss_mib']:13.0f}")
    print(f"(load average before: {load_before:.1f} on {os.cpu_count()} cores: wall-clock figures on a shared machine understate; "
          "records/CPU-s is the steadier figure)")
    ours = results.get("destination-deeplake")
    if ours:
        for name, r in results.items():
            if name not in ("destination-deeplake", "dedup sync (supersedes N of 2N)"):
                print(f"destination-deeplake / {name}: {ours['records_per_s'] / r['records_per_s']:.2f}x wall, "
                      f"{ours['records_per_cpu_s'] / r['records_per_cpu_s']:.2f}x per CPU-second")
        dd = results.get("dedup sync (supersedes N of 2N)")
        if dd:
            ratio = dd["seconds"] / ours["seconds"]
            cpu_ratio = dd["cpu_seconds"] / ours["cpu_seconds"]
            print(f"dedup sync removing {args.records:,} superseded rows: {dd['seconds']:.1f} s = {ratio:.2f}x the plain append "
                  f"({cpu_ratio:.2f}x in CPU seconds; floor {DEDUP_FLOOR_RATIO:.0f}x: {'met' if ratio <= DEDUP_FLOOR_RATIO else 'MISSED'}); "
                  f"peak RSS {dd['peak_rss_mib']:.0f} MiB")
            if "old_path_estimate_seconds" in dd:
                print(f"old path (one pop per row, {dd['old_single_pop_seconds_per_row'] * 1e3:.1f} ms each): "
                      f"~{dd['old_path_estimate_seconds'] / 3600:.1f} h for the removal alone")
        print(f"floor {FLOOR:,} records/s: {'met' if ours['records_per_s'] >= FLOOR else 'MISSED'}; "
              f"peak RSS < 1 GiB: {'met' if ours['peak_rss_mib'] < 1024 else 'MISSED'}")
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"destination-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"records": args.records, "state_every": args.state_every, "floor_records_per_s": FLOOR,
                               "load_average_before": load_before, "results": results}, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
