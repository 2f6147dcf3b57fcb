"""Kill harness: run a write path in a child process that SIGKILLs itself at its k-th storage
write, for every k (or a sample of them), and check what the dataset looks like afterwards.

The child counts every mutation of the local store (`set`, `set_parts`, `delete`,
`delete_prefix`, `clear`, the conditional writes; `set_many` is counted per key, as the store
writes it) by patching
`LocalStorage` inside the child only: public behaviour is unchanged. The object-store class
(`FsspecStorage`: s3, gcs, azure) is patched the same way; its `set_many` sends objects side by
side, and a kill at its j-th object lets the j-1 before it land (a kill mid-batch).
`check_kill_path(..., store=...)` runs a path on any store (`LocalKillStore`, or an object
store's in tests/storage/test_kill_object_stores.py); its children get the store's `env`. Children are forked from
a zygote process that imported lakeformat once, so a kill costs a fork, not an interpreter
start.

A path is a function `run(ds, ack)` of `tests.core.kill_writer`; it calls `ack()` after each
flush or commit it completes. The recording run (no kill) stores the dataset's state at each
`ack`; a run killed at k must then leave a dataset that opens, passes `verify`, and equals
the state of its last `ack` or the next one (a kill after the publishing write of a step).

Whole programs (the destination's `write`, the SQL backfill) go through `run_call` instead:
any `module:function` run in a killed child, which records what it acknowledged in files of
its own (tests/connectors/test_kill_destination.py, test_kill_sql.py).
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import lakeformat

EXHAUSTIVE = os.environ.get("LAKEFORMAT_KILL_EXHAUSTIVE") == "1"
_MUTATORS = ("set", "set_parts", "delete", "delete_prefix", "clear", "set_if_absent", "set_if_match", "delete_if_match")


def install_kill_switch(kill_at: int) -> List[int]:
    """Patch LocalStorage and FsspecStorage (in this process) to count mutations and SIGKILL
    this process before mutation number `kill_at` (0: never). Returns the live counter."""
    from lakeformat.storage.fsspec_store import FsspecStorage
    from lakeformat.storage.local import LocalStorage

    count = [0]

    def hooked(orig: Callable[..., Any]) -> Callable[..., Any]:
        def f(self: Any, *a: Any, **k: Any) -> Any:
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return orig(self, *a, **k)

        return f

    def batch(orig: Callable[..., Any]) -> Callable[..., Any]:
        def set_many(self: Any, items: Dict[str, Any]) -> Any:
            items = dict(items)
            if len(items) <= 1:
                return orig(self, items)  # FsspecStorage.set_many sends one item through `set` (counted there)
            if count[0] < kill_at <= count[0] + len(items):
                head = dict(list(items.items())[: kill_at - count[0] - 1])
                if head:
                    orig(self, head)
                os.kill(os.getpid(), signal.SIGKILL)
            count[0] += len(items)
            return orig(self, items)

        return set_many

    for cls, extra in ((LocalStorage, ()), (FsspecStorage, ("set_many",))):
        for m in _MUTATORS + extra:
            if not hasattr(cls, m):
                continue
            if not hasattr(cls, f"_kill_orig_{m}"):
                setattr(cls, f"_kill_orig_{m}", getattr(cls, m))
            wrap = batch if m == "set_many" else hooked
            setattr(cls, m, wrap(getattr(cls, f"_kill_orig_{m}")))
    return count


def kill_points(n: int, sample: int = 10) -> List[int]:
    """Every k in 1..n when exhaustive; otherwise the first and last few and an even spread."""
    if EXHAUSTIVE or n <= sample:
        return list(range(1, n + 1))
    if sample == 1:
        return [(n + 1) // 2]  # one write in the middle
    if sample < 9:  # a small sample: the first and last write, the rest spread between
        edge, inner = 1, np.linspace(1, n, sample)[1:-1]
    else:
        edge = 3
        inner = np.linspace(edge + 1, n - edge, max(sample - 2 * edge, 1))
    pts = set(range(1, edge + 1)) | set(range(n - edge + 1, n + 1)) | {int(round(x)) for x in inner}
    return sorted(p for p in pts if 1 <= p <= n)


# -- the state a test compares ------------------------------------------------------------------
def _canon(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_canon(x) for x in v.tolist()] if v.dtype.kind in "USO" else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    return v


def state_of(path: str) -> Dict[str, Any]:
    """Every branch: its log messages and the values of its visible tensors (by name)."""
    ds = lakeformat.load(path, read_only=True)
    out: Dict[str, Any] = {}
    for b in sorted(ds.branches):
        d = lakeformat.load(path, read_only=True, version=b)
        out[b] = {
            "log": [e["message"] for e in d.log()],
            "tensors": {n: [_canon(np.asarray(v)) for v in t.numpy(aslist=True)] for n, t in sorted(d.tensors.items())},
        }
    return out


# -- the child ------------------------------------------------------------------------------------
def _child(path: str, scenario: str, kill_at: int, progress: str, record: Optional[str]) -> None:
    from tests.core import kill_writer

    run = kill_writer.SCENARIOS[scenario][1]
    ds = lakeformat.load(path)
    count = install_kill_switch(kill_at)
    states: List[Any] = []
    step = [0]

    def ack() -> None:
        step[0] += 1
        with open(progress, "a") as f:
            f.write(f"{step[0]}\n")
        if record is not None:
            states.append(state_of(path))

    run(ds, ack)
    if record is not None:
        with open(record, "w") as f:
            json.dump({"writes": count[0], "states": states}, f)


# A zygote: one interpreter that imported lakeformat once and forks a child per run (a kill
# then costs a fork, not an interpreter start). It is single-threaded when it forks.
_ROOT = Path(__file__).resolve().parents[2]
_ZYGOTE: Optional[subprocess.Popen] = None


def _zygote_main() -> None:
    import time
    import traceback

    import tests.core.kill_writer  # noqa: F401 - imported before any fork
    import lakeformat.verify  # noqa: F401

    for line in sys.stdin:
        req = json.loads(line)
        if "call" in req:
            # imported here, before the fork: every later child of this target starts warm
            importlib.import_module(req["call"].split(":")[0])
        pid = os.fork()
        if pid == 0:
            code = 0
            os.environ.update(req.get("env") or {})  # an object store's endpoint, a tag for its processes
            try:
                if "call" in req:
                    _call_child(req["call"], req["args"], req["kill_at"], req["record"])
                else:
                    _child(*req["args"])
            except BaseException:  # noqa: BLE001 - reported as the exit code
                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        deadline = time.monotonic() + req["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = None
                break
            time.sleep(0.002)
        if status is None:
            rc: Optional[int] = None
        elif os.WIFSIGNALED(status):
            rc = -os.WTERMSIG(status)
        else:
            rc = os.WEXITSTATUS(status)
        sys.stdout.write(json.dumps({"rc": rc}) + "\n")
        sys.stdout.flush()


def _zygote() -> subprocess.Popen:
    global _ZYGOTE
    if _ZYGOTE is None or _ZYGOTE.poll() is not None:
        env = dict(os.environ, PYTHONPATH=str(_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        _ZYGOTE = subprocess.Popen(
            [sys.executable, "-c", "from tests.core.kill_harness import _zygote_main; _zygote_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(_ROOT), env=env, text=True,
        )
        atexit.register(_ZYGOTE.kill)
    return _ZYGOTE


def _request(req: Dict[str, Any], what: str, env: Optional[Dict[str, str]] = None) -> int:
    """One run in a forked child of the zygote (with `env` added to its environment): its
    exit code (-9 when it killed itself)."""
    req = {**req, "env": env or {}}
    z = _zygote()
    assert z.stdin is not None and z.stdout is not None
    z.stdin.write(json.dumps(req) + "\n")
    z.stdin.flush()
    line = z.stdout.readline()
    if not line:
        raise AssertionError("the kill harness's zygote process died")
    rc = json.loads(line)["rc"]
    if rc is None:
        raise AssertionError(f"{what}: child killed at {req['kill_at']} hung")
    return int(rc)


def run_child(path: str, scenario: str, kill_at: int, progress: str, record: Optional[str] = None, timeout: float = 120,
              env: Optional[Dict[str, str]] = None) -> int:
    """Run `scenario` on `path` in a forked child killed at write `kill_at`; its exit code
    (-9 when it killed itself). `env`: extra environment of the child (an object store's)."""
    return _request({"args": [path, scenario, kill_at, progress, record], "kill_at": kill_at, "timeout": timeout}, scenario, env)


def _call_child(target: str, args: List[Any], kill_at: int, record: Optional[str]) -> None:
    """Call `module:function`(*args) with the kill switch installed; the recording run
    (`record` given) stores how many writes it made."""
    module, name = target.split(":")
    func = getattr(importlib.import_module(module), name)
    count = install_kill_switch(kill_at)
    func(*args)
    if record is not None:
        with open(record, "w") as f:
            json.dump({"writes": count[0]}, f)


def run_call(target: str, args: List[Any], kill_at: int, record: Optional[str] = None, timeout: float = 120,
             env: Optional[Dict[str, str]] = None) -> int:
    """Run `module:function`(*args) (JSON arguments) in a forked child killed at its write
    `kill_at` (0: never); its exit code (-9 when it killed itself). For write paths that are
    whole programs (the destination's `write`, the SQL backfill) rather than `run(ds, ack)`
    scenarios: the function itself records what it acknowledged, in files the test reads."""
    return _request({"call": target, "args": args, "kill_at": kill_at, "record": record, "timeout": timeout}, target, env)


def recorded_writes(record: str) -> int:
    """The number of storage writes a recording run (`run_call` with `record`) made."""
    return int(json.loads(Path(record).read_text())["writes"])


def _acks(progress: str) -> int:
    if not os.path.exists(progress):
        return 0
    return len([line for line in Path(progress).read_text().split("\n") if line.strip()])


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy_dataset(src: str, dst: str) -> str:
    """A copy made of hard links: the local store never changes a file in place (it writes
    a temporary file and renames it over, or unlinks), so the copies stay independent."""
    shutil.copytree(src, dst, copy_function=_link_or_copy)
    return dst


class LocalKillStore:
    """Where `check_kill_path` keeps its datasets: folders under a local directory. An
    object store's counterpart has the same methods (and its children's `env`)."""

    env: Dict[str, str] = {}

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def copy(self, src: str, dst: str) -> str:
        return copy_dataset(src, dst)

    def drop_locks(self, path: str) -> None:
        shutil.rmtree(os.path.join(path, "locks"), ignore_errors=True)

    def remove(self, path: str) -> None:
        shutil.rmtree(path)


def check_kill_path(tmp: Path, scenario: str, sample: int = 10, store: Optional[Any] = None) -> Dict[str, Any]:
    """The whole check for one write path (on `store`, default: local folders under `tmp`);
    returns what it saw (for the test's messages)."""
    from lakeformat.verify import verify
    from tests.core import kill_writer

    store = store if store is not None else LocalKillStore(tmp)
    env = store.env
    setup = kill_writer.SCENARIOS[scenario][0]
    template = store.path("template")
    setup(template)
    store.drop_locks(template)  # the setup's own locks (this live process)
    before = state_of(template)
    full = store.copy(template, store.path("full"))
    rec = str(tmp / "record.json")
    rc = run_child(full, scenario, 0, str(tmp / "full.progress"), rec, env=env)
    assert rc == 0, f"{scenario}: the recording run failed (exit {rc})"
    got = json.loads(Path(rec).read_text())
    n_writes, states = got["writes"], [before] + got["states"]
    assert n_writes > 0 and len(states) > 1, (scenario, n_writes, len(states))
    seen = {"points": 0, "before": 0, "after": 0}
    for k in kill_points(n_writes, sample):
        path = store.copy(template, store.path(f"k{k}"))
        progress = str(tmp / f"k{k}.progress")
        rc = run_child(path, scenario, k, progress, env=env)
        assert rc == -signal.SIGKILL, f"{scenario}: child meant to die at write {k} of {n_writes} exited {rc}"
        j = _acks(progress)
        report = verify(path)
        assert report.ok, (scenario, k, n_writes, report.lines())
        st = state_of(path)
        allowed = states[j : j + 2]
        assert st in allowed, f"{scenario}: killed at write {k} of {n_writes} after {j} acks: a state that no flush made"
        seen["points"] += 1
        seen["before" if st == states[j] else "after"] += 1
        # the dataset stays writable: the same path runs again, to the end
        rc = run_child(path, scenario, 0, progress + ".rerun", env=env)
        assert rc == 0, f"{scenario}: rerun after a kill at write {k} failed (exit {rc})"
        store.remove(path)
    return {"writes": n_writes, **seen}
