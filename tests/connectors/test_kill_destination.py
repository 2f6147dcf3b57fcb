"""The Airbyte destination's sync killed (SIGKILL) at its storage writes, in every mode.

Each mode starts from a dataset one earlier sync made (so truncates take their staging-branch
path and dedup supersedes rows of that sync), then runs a second sync through the real
`destination-deeplake write` entry point in a child that SIGKILLs itself at its k-th storage
write (tests/core/kill_harness.py). After each kill: the dataset opens, `verify` passes, every
record acknowledged by an emitted STATE is there exactly once (append_dedup: the latest
acknowledged version of each key), none that was not acknowledged is required, and a rerun
from the last acknowledged STATE (as the platform resends after a failure) ends with the
mode's final content. One more mode overwrites into an empty destination (no commit yet: rows
go to `main` directly). The default run samples the kill points; LAKEFORMAT_KILL_EXHAUSTIVE=1
(`make test-long`) tries every one.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakeformat
from lakeformat.verify import verify
from tests.connectors.destination.helpers import catalog, complete, record, state, stream, write
from tests.core.kill_harness import copy_dataset, kill_points, recorded_writes, run_call

CHILD = "tests.connectors.kill_destination_child:write"
STREAM = "t"
FIRST = 12  # records of the sync the template holds (ids 0..11)
SECOND = 20  # records of the killed sync
STATE_EVERY = 6
FLUSH_EVERY = 4  # flushes both between states and holding states back
PROPS = {"id": {"type": "integer"}, "u": {"type": "integer"}, "v": {"type": "string"}}

# mode -> (destination_sync_mode, minimum_generation_id of the killed sync, into an empty destination)
MODES = {
    "append": ("append", 0, False),
    "append_dedup": ("append_dedup", 0, False),
    "overwrite": ("overwrite", 0, False),
    "refresh_truncate": ("append", 2, False),
    "overwrite_first_sync": ("overwrite", 0, True),  # no commit yet: written on main directly
}


def _records(first_u: int, n: int, ids: list[int]) -> list[dict[str, Any]]:
    """Records with a unique `u` (also the cursor) each; `ids` gives their keys."""
    return [{"id": ids[i], "u": first_u + i, "v": f"v{first_u + i}"} for i in range(n)]


def first_sync(mode: str = "append") -> list[dict[str, Any]]:
    """The records the template holds (none for a mode that starts from an empty destination)."""
    return [] if MODES[mode][2] else _records(0, FIRST, list(range(FIRST)))


def second_sync() -> list[dict[str, Any]]:
    # keys 6..11 of the first sync superseded, new keys 12.., and keys repeated within the sync
    ids = [6 + (i % 18) for i in range(SECOND)]
    return _records(100, SECOND, ids)


def messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with a STATE {"pos": records so far} after every STATE_EVERY, then COMPLETE."""
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        out.append(record(STREAM, r, emitted_at=1_700_000_000_000 + r["u"]))
        if (i + 1) % STATE_EVERY == 0 or i + 1 == len(rows):
            out.append(state(STREAM, {"pos": i + 1}))
    out.append(complete(STREAM))
    return out


def config_for(tmp: Path) -> dict[str, Any]:
    return {"path": str(tmp / "lake"), "flush_every_records": FLUSH_EVERY}


def catalog_for(mode: str, generation: int, sync_id: int) -> dict[str, Any]:
    dest_mode, min_gen, _ = MODES[mode]
    return catalog(stream(STREAM, PROPS, mode=dest_mode, pk=[["id"]], cursor=["u"], generation_id=generation,
                          minimum_generation_id=min_gen if sync_id > 1 else 0, sync_id=sync_id))


def rows_of(path: str, version: str | None = None) -> list[tuple[int, int, str]]:
    ds = lakeformat.load(path, read_only=True, version=version)
    names = set(ds.tensors)
    if not {"id", "u", "v"} <= names:
        assert len(ds) == 0 or not names & {"id", "u", "v"}, (path, version, sorted(names))
        return []
    ids, us, vs = ds["id"].values(), ds["u"].values(), ds["v"].values()
    assert len(ids) == len(us) == len(vs) == len(ds), (path, version, len(ids), len(us), len(vs), len(ds))
    return [(int(_scalar(i)), int(_scalar(u)), str(_scalar(v))) for i, u, v in zip(ids, us, vs)]


def _scalar(x: Any) -> Any:
    a = np.asarray(x).reshape(-1)
    assert a.size == 1, x  # every record has a value for each field
    return a[0].item()


def as_rows(recs: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    return [(r["id"], r["u"], r["v"]) for r in recs]


def latest_by_key(recs: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    best: dict[int, dict[str, Any]] = {}
    for r in recs:
        if r["id"] not in best or r["u"] >= best[r["id"]]["u"]:
            best[r["id"]] = r
    return sorted(as_rows(list(best.values())))


def acked(output: Path) -> int:
    """Records of the killed sync acknowledged: the `pos` of the last STATE it emitted."""
    pos = 0
    if output.exists():
        for line in output.read_text().splitlines():
            m = json.loads(line)
            if m["type"] == "STATE":
                pos = m["state"]["stream"]["stream_state"]["pos"]
    return pos


def resend_from(msgs: list[dict[str, Any]], pos: int) -> list[dict[str, Any]]:
    """What the platform sends again after a failure: every message after the STATE with `pos`."""
    if pos == 0:
        return msgs
    at = next(i for i, m in enumerate(msgs) if m["type"] == "STATE" and m["state"]["stream"]["stream_state"]["pos"] == pos)
    return msgs[at + 1 :]


def write_lines(path: Path, msgs: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    return str(path)


def stage_branches(path: str) -> list[str]:
    return [b for b in lakeformat.load(path, read_only=True).branches if b.startswith("airbyte-stage-g")]


# -- what must hold ----------------------------------------------------------------------------
def check_killed(mode: str, path: str, pos: int) -> None:
    """A dataset a sync left when killed after acknowledging `pos` of its records."""
    old, new = first_sync(mode), second_sync()
    done, pending = as_rows(new[:pos]), as_rows(new[pos:])
    if not old and not any(os.path.exists(os.path.join(path, f)) for f in ("dataset_meta.json", "version_control_info.json")):
        assert pos == 0, f"{mode}: {pos} records acknowledged, and no dataset"
        return  # killed before the dataset's first write
    report = verify(path)
    assert report.ok, report.lines()
    if mode in ("append", "append_dedup") or not old:
        got = Counter(rows_of(path))
        assert all(n == 1 for n in got.values()), f"{mode}: rows twice after a kill: {[r for r, n in got.items() if n > 1]}"
        allowed = set(as_rows(old)) | set(done) | set(pending)
        assert set(got) <= allowed, f"{mode}: rows no record made: {set(got) - allowed}"
        if mode != "append_dedup":
            need = set(as_rows(old)) | set(done)
        else:  # superseded versions may be gone already (the kill came inside the dedup)
            need = set(latest_by_key(old + new[:pos]))
        assert need <= set(got), f"{mode}: acknowledged rows lost: {sorted(need - set(got))}"
        return
    # truncating modes: main holds the previous data until the staged sync is promoted
    main = Counter(rows_of(path))
    stages = stage_branches(path)
    assert len(stages) <= 1, stages
    if main == Counter(as_rows(old)):
        if stages and pos:
            got = Counter(rows_of(path, stages[0]))
            assert all(n == 1 for n in got.values()) and set(done) <= set(got) <= set(done) | set(pending), \
                f"{mode}: the staging branch lacks acknowledged rows or holds others (acked {pos})"
        else:
            assert pos == 0, f"{mode}: {pos} records acknowledged but neither main nor a staging branch holds them"
    else:
        assert not stages, f"{mode}: main replaced while staging branch {stages} is left"
        assert main == Counter(as_rows(new)), f"{mode}: main is neither the previous data nor this sync's"


def check_final(mode: str, path: str, pos: int) -> None:
    """The dataset after the (killed and) rerun sync completed; `pos` records were acknowledged
    before the kill (rows after them may be written twice where the mode is at-least-once)."""
    old, new = first_sync(mode), second_sync()
    report = verify(path)
    assert report.ok, report.lines()
    assert not stage_branches(path), stage_branches(path)
    ds = lakeformat.load(path, read_only=True)
    assert not ds.has_head_changes, f"{mode}: the sync ended with uncommitted changes"
    got = Counter(rows_of(path))
    if mode == "append_dedup":
        assert sorted(got.elements()) == latest_by_key(old + new), f"{mode}: final content differs"
        return
    base = as_rows(old) if mode == "append" else []  # truncates drop the previous data
    exact = Counter(base + as_rows(new[:pos]))
    again = set(as_rows(new[pos:]))  # at-least-once: written by the killed run and the rerun
    for row, n in got.items():
        want = exact.get(row, 0)
        assert (want == n) if want else (row in again and 1 <= n <= 2), f"{mode}: row {row} is there {n} times"
    missing = (set(exact) | again) - set(got)
    assert not missing, f"{mode}: rows lost: {sorted(missing)}"


# -- the test ----------------------------------------------------------------------------------
def _template(tmp: Path, mode: str) -> Path:
    base = tmp / "template"
    if MODES[mode][2]:
        base.mkdir()
        return base
    write({"path": str(base / "lake"), "flush_every_records": FLUSH_EVERY}, catalog_for(mode, 1, 1), messages(first_sync()))
    return base


def _sync(run_dir: Path, mode: str, msgs: list[dict[str, Any]], kill_at: int, tag: str,
          record: str | None = None) -> tuple[int, Path]:
    cfg = run_dir / "d.json"
    if not cfg.exists():
        cfg.write_text(json.dumps(config_for(run_dir)))
        (run_dir / "cat.json").write_text(json.dumps(catalog_for(mode, 2, 2)))
    out = run_dir / f"{tag}.out"
    rc = run_call(CHILD, [str(cfg), str(run_dir / "cat.json"), write_lines(run_dir / f"{tag}.in", msgs), str(out),
                          str(run_dir / f"{tag}.log")], kill_at, record)
    return rc, out


def _log(run_dir: Path, tag: str) -> str:
    p = run_dir / f"{tag}.log"
    return p.read_text()[-3000:] if p.exists() else ""


@pytest.mark.parametrize("mode", list(MODES))
def test_destination_sync_killed_at_its_writes(tmp_path: Path, mode: str) -> None:
    template = _template(tmp_path, mode)
    msgs = messages(second_sync())
    full = Path(copy_dataset(str(template), str(tmp_path / "full")))
    rec = str(tmp_path / "record.json")
    rc, out = _sync(full, mode, msgs, 0, "sync", rec)
    assert rc == 0, f"{mode}: the recording sync failed (exit {rc}): {_log(full, 'sync')}"
    assert acked(out) == SECOND
    check_final(mode, str(full / "lake" / STREAM), SECOND)
    n_writes = recorded_writes(rec)
    assert n_writes > 20, n_writes
    points = kill_points(n_writes)
    for k in points:
        run_dir = Path(copy_dataset(str(template), str(tmp_path / f"k{k}")))
        path = str(run_dir / "lake" / STREAM)
        rc, out = _sync(run_dir, mode, msgs, k, "killed")
        assert rc == -signal.SIGKILL, f"{mode}: the sync meant to die at write {k} of {n_writes} exited {rc}: {_log(run_dir, 'killed')}"
        pos = acked(out)
        try:
            check_killed(mode, path, pos)
        except AssertionError as e:
            raise AssertionError(f"{mode}: killed at write {k} of {n_writes} (acked {pos}): {e}") from None
        rc, _ = _sync(run_dir, mode, resend_from(msgs, pos), 0, "rerun")
        assert rc == 0, f"{mode}: the rerun after a kill at write {k} of {n_writes} (acked {pos}) failed: {_log(run_dir, 'rerun')}"
        try:
            check_final(mode, path, pos)
        except AssertionError as e:
            raise AssertionError(f"{mode}: after a kill at write {k} of {n_writes} (acked {pos}) and a rerun: {e}") from None
        shutil.rmtree(run_dir)
    assert len(points) >= min(n_writes, 10)


# -- the failures the kills found, each pinned by a direct test --------------------------------
def _run_python(code: str) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("mode", ["overwrite", "refresh_truncate"])
def test_retry_clears_a_staging_branch_an_attempt_never_cleared(tmp_path: Path, mode: str) -> None:
    """An attempt killed between making the staging branch and dropping its tensors: the retry
    of the same generation must not keep the previous data that branch was cut with."""
    cfg = config_for(tmp_path)
    write(cfg, catalog_for(mode, 1, 1), messages(first_sync()))
    path = str(tmp_path / "lake" / STREAM)
    # what the killed attempt left: the branch, cut from main, with every tensor still there
    _run_python(f"import lakeformat; ds = lakeformat.load({path!r}); ds.checkout('airbyte-stage-g2', create=True)")
    write(cfg, catalog_for(mode, 2, 2), messages(second_sync()))
    check_final(mode, path, SECOND)


@pytest.mark.parametrize("mode", ["overwrite", "refresh_truncate", "overwrite_first_sync"])
def test_retry_after_the_sync_committed_keeps_its_rows(tmp_path: Path, mode: str) -> None:
    """An attempt killed after its commit reached main (a staged truncate promoted, or a first
    sync committed) but before it exited: the platform retries the same sync and generation
    from its last STATE, which was the last one, and main must keep every row."""
    cfg = config_for(tmp_path)
    if not MODES[mode][2]:
        write(cfg, catalog_for(mode, 1, 1), messages(first_sync()))
    msgs = messages(second_sync())
    write(cfg, catalog_for(mode, 2, 2), msgs)
    path = str(tmp_path / "lake" / STREAM)
    write(cfg, catalog_for(mode, 2, 2), resend_from(msgs, SECOND))  # the retry: only the COMPLETE trace
    check_final(mode, path, SECOND)
