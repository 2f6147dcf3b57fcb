"""A process editing a dataset (appends, `t[i] = x`, `ds.pop(j)`, a flush every few operations)
killed with SIGKILL at random moments: the dataset opens, verifies, and holds exactly the state
of its last flush or of the flush under way, never a mix (real processes, real kills)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lakeformat
from lakeformat.verify import verify

WRITER = Path(__file__).with_name("kill_edit_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _lines(progress: Path) -> list:
    return [line for line in progress.read_text().split("\n") if line.strip()] if progress.exists() else []


def _allowed(progress: Path) -> list:
    """The states a kill may leave: the last published one, and the one being flushed."""
    lines = _lines(progress)
    published = [json.loads(line[2:]) for line in lines if line.startswith("A ")]
    out = [published[-1] if published else []]
    if lines and lines[-1].startswith("P "):
        out.append(json.loads(lines[-1][2:]))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_while_editing(tmp_path, seed):
    rng = random.Random(seed)
    path, progress = tmp_path / "ds", tmp_path / "progress"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    flushes: list = []
    for attempt in range(2):
        p = subprocess.Popen([sys.executable, str(WRITER), str(path), str(progress), str(seed * 10 + attempt)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # kill at a random moment once this writer has flushed (a slow start on a loaded
        # machine must not turn the test into one of interpreter start-up)
        start = len(_lines(progress))
        deadline = time.monotonic() + 120
        while len(_lines(progress)) < start + 2 and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        assert p.returncode == -signal.SIGKILL, err.decode()[-2000:]
        allowed = _allowed(progress)
        if not lakeformat.exists(str(path)):
            assert allowed == [[]], "a flush was acknowledged but there is no dataset"
            continue
        report = verify(str(path))
        assert report.ok, report.lines()
        ds = lakeformat.load(str(path), read_only=True)
        if "ints" not in ds.tensors:  # killed while creating the tensors: both or neither
            assert "txt" not in ds.tensors and allowed == [[]], (list(ds.tensors), allowed)
            continue
        ints = [int(v) for v in ds.ints.numpy().reshape(-1)] if len(ds.ints) else []
        assert ints in allowed, f"attempt {attempt}: a state no flush made ({len(ints)} samples)"
        texts = ds.txt.text() if len(ds.txt) else []
        assert texts == [f"v{v}" for v in ints], "the text tensor disagrees with the ints tensor"
        flushes.append(sum(1 for line in _lines(progress) if line.startswith("A ")))
        # the next writer's run starts from what is there: the model follows the dataset
        with open(progress, "a") as f:
            f.write(f"A {json.dumps(ints)}\n")
    assert flushes and flushes[-1] > 2, f"the writers flushed too little to test anything: {flushes}"
