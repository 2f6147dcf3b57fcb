"""Sync Airbyte's faker source into a local lake with destination-deeplake, then print each
dataset's summary and commit log.

    python scripts/sync_faker_demo.py                 # ./lake, 1000 users, append_dedup
    python scripts/sync_faker_demo.py --count 200 --mode overwrite --lake /tmp/lake

The source runs from its own virtual environment (.venvs/source-faker, made on first use by
scripts/setup_faker_venv.sh): airbyte-source-faker needs airbyte-cdk<7, the destination 7.x.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def faker_executable() -> str:
    out = subprocess.run(["bash", str(REPO / "scripts" / "setup_faker_venv.sh")], stdout=subprocess.PIPE, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def destination_command() -> list:
    found = shutil.which("destination-deeplake")
    return [found] if found else [sys.executable, "-m", "connectors.destination_deeplake"]


def configured_catalog(catalog: dict, mode: str, sync_id: int) -> dict:
    return {"streams": [{
        "stream": s,
        "sync_mode": "full_refresh" if mode == "overwrite" else "incremental",
        "destination_sync_mode": mode,
        "cursor_field": s.get("default_cursor_field") or ["updated_at"],
        "primary_key": s.get("source_defined_primary_key") or [["id"]],
        "generation_id": sync_id,
        "minimum_generation_id": sync_id if mode == "overwrite" else 0,
        "sync_id": sync_id,
    } for s in catalog["streams"]]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", default="lake")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--mode", default="append_dedup", choices=["append", "append_dedup", "overwrite"])
    args = p.parse_args(argv)
    lake = Path(args.lake).resolve()
    faker = faker_executable()
    env = dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    with tempfile.TemporaryDirectory(prefix="faker-demo-") as tmp:
        work = Path(tmp)
        (work / "source.json").write_text(json.dumps({"count": args.count, "seed": args.seed}))
        (work / "destination.json").write_text(json.dumps({"path": str(lake)}))
        disc = subprocess.run([faker, "discover", "--config", str(work / "source.json")], stdout=subprocess.PIPE, text=True, check=True)
        catalog = next(json.loads(line)["catalog"] for line in disc.stdout.splitlines() if '"CATALOG"' in line)
        sync_id = 1 + sum(1 for _ in lake.glob("*/version_control_info.json")) if lake.exists() else 1
        (work / "catalog.json").write_text(json.dumps(configured_catalog(catalog, args.mode, sync_id)))
        print(f"syncing source-faker ({args.count} users, {args.mode}) into {lake} ...", flush=True)
        src = subprocess.Popen([faker, "read", "--config", str(work / "source.json"), "--catalog", str(work / "catalog.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        dst = subprocess.run(destination_command() + ["write", "--config", str(work / "destination.json"), "--catalog", str(work / "catalog.json")],
                             stdin=src.stdout, stdout=subprocess.PIPE, text=True, env=env)
        src.stdout.close()
        src.wait()
        states = [json.loads(line) for line in dst.stdout.splitlines() if '"STATE"' in line]
        if dst.returncode != 0 or src.returncode != 0:
            print(dst.stdout[-3000:], file=sys.stderr)
            return 1
        print(f"{len(states)} states acknowledged, {sum(s['state'].get('destinationStats', {}).get('recordCount', 0) for s in states):.0f} records")

    import lakeformat
    from lakeformat.version_control import api as vc

    for stream in sorted(s["name"] for s in catalog["streams"]):
        ds = lakeformat.load(str(lake / stream), read_only=True)
        print()
        ds.summary()
        print(vc.format_log(vc.log(ds), ds.branch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
