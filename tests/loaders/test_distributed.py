"""A real torch.distributed gloo group of 2 processes, each with 2 loader workers."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import lakeformat

N = 203  # not a multiple of world size x workers x batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_get_disjoint_shards_covering_every_sample_once(tmp_path):
    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("labels", dtype="int64", max_chunk_size=256)
        ds.labels.extend(np.arange(N))
    out = tmp_path / "result.json"
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("dist_rank.py")), path, str(out)],
                              env=dict(env, RANK=str(r)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
    logs = [p.communicate(timeout=180)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    r0, r1 = json.loads(out.read_text())
    # drop_last=False: every sample exactly once per epoch across ranks and workers
    for e in range(3):
        a, b = r0["False"]["epochs"][e], r1["False"]["epochs"][e]
        assert not set(a) & set(b)
        assert sorted(a + b) == list(range(N))
    # set_epoch reshuffles deterministically: epoch 0 twice gives the same order
    assert r0["False"]["epochs"][0] == r0["False"]["epochs"][2] != r0["False"]["epochs"][1]
    # drop_last=True: equal batch counts on both ranks, full batches, no duplicates
    a, b = r0["True"]["epochs"][0], r1["True"]["epochs"][0]
    assert len(a) == len(b) and r0["True"]["batches"] == r1["True"]["batches"] == len(a) // 8
    assert not set(a) & set(b) and len(a) % 8 == 0
