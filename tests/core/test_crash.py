"""A writer killed with SIGKILL at random moments: the dataset always opens, passes verify,
and holds every sample up to the last completed flush (real processes, real kills)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lakeformat
from lakeformat.verify import verify

from tests.core.crash_writer import batch

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _start(path: Path, progress: Path, batches: int = 400, per_batch: int = 37) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(WRITER), str(path), str(progress), str(batches), str(per_batch)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _last_flushed(progress: Path) -> int:
    if not progress.exists():
        return 0
    lines = [line for line in progress.read_text().split("\n") if line.strip()]
    return int(lines[-1]) if lines else 0


def _check(path: Path, flushed: int) -> None:
    if flushed == 0 and not lakeformat.exists(str(path)):
        return  # killed before the dataset was created: nothing was promised
    report = verify(str(path))
    assert report.ok, report.lines()
    ds = lakeformat.load(str(path), read_only=True)
    if flushed:
        assert len(ds.tensors) == 5
    for name, t in ds.tensors.items():
        assert t.num_samples >= flushed, (name, t.num_samples, flushed)
    n = min((t.num_samples for t in ds.tensors.values()), default=0)
    if n == 0:
        return
    want = batch(0, n)
    assert np.array_equal(ds.ints.numpy()[:n, 0], want["ints"])
    assert np.array_equal(ds.labels.numpy()[:n, 0], want["labels"])
    assert ds.txt[:n].text() == want["txt"]
    got = ds.vecs[:n].numpy(aslist=True)
    assert all(np.array_equal(a, b) for a, b in zip(got, want["vecs"]))
    imgs = ds.imgs[max(0, n - 50):n].numpy()
    assert np.array_equal(imgs, np.stack(want["imgs"][max(0, n - 50):n]))


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_random_points(tmp_path, seed):
    rng = random.Random(seed)
    path, progress = tmp_path / "ds", tmp_path / "progress"
    # a fresh run killed early or late, then two resumed runs killed again
    for _ in range(3):
        p = _start(path, progress)
        time.sleep(rng.uniform(0.3, 2.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        _check(path, _last_flushed(progress))


def test_resume_after_kill_continues_and_completes(tmp_path):
    path, progress = tmp_path / "ds", tmp_path / "progress"
    p = _start(path, progress)
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # the killed writer's lock is stale (its pid is dead): a new writer takes over
    p = _start(path, progress, batches=3)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    _check(path, _last_flushed(progress))
