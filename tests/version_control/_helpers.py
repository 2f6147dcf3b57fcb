"""Shared pieces of the version-control tests: histories, dumps, and deeplake 3.9.52 runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import numpy as np

from tests.interop_env import deeplake3_python

REPO = Path(__file__).resolve().parents[2]


def canon(v: Any) -> Any:
    """A sample as plain JSON values (both numpy majors agree on these)."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "US":
            return [canon(x) for x in v.tolist()]
        if v.dtype == object:
            return [canon(x) for x in v.tolist()]
        return v.tolist()
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    return v


def tensor_values(t) -> list:
    """Every sample of a lakeformat tensor as JSON."""
    if t.base_htype == "text":
        return [str(np.asarray(v).reshape(-1)[0]) if not isinstance(v, str) else v for v in t.numpy(aslist=True)]
    if t.base_htype == "json":
        return [canon(v) for v in t.numpy(aslist=True)]
    return [canon(np.asarray(v)) for v in t.numpy(aslist=True)]


def dump_lakeformat(path: str) -> Dict[str, Any]:
    """Branches, the log of each branch and the data at every version, read by lakeformat."""
    import lakeformat

    ds = lakeformat.load(path, read_only=True)
    tree = ds.version_state.tree
    out: Dict[str, Any] = {"branches": sorted(ds.branches), "log": {}, "data": {}}
    for b in ds.branches:
        ds.checkout(b)
        out["log"][b] = [[e["commit"], e["message"]] for e in ds.log()]
    for cid in sorted(tree.commits):
        ds.checkout(cid)
        out["data"][cid] = {name: tensor_values(t) for name, t in sorted(ds.tensors.items())}
    return out


DL3_DUMP = r'''
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import deeplake

def canon(v):
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "US" or v.dtype == object:
            return [canon(x) for x in v.tolist()]
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    return v

def values(t):
    h = t.meta.htype
    if h == "text":
        return [str(np.asarray(v).reshape(-1)[0]) for v in t.numpy(aslist=True)]
    if h == "json":
        return [canon(v if not isinstance(v, np.ndarray) else v.reshape(-1)[0]) for v in t.numpy(aslist=True)]
    return [canon(np.asarray(v)) for v in t.numpy(aslist=True)]

ds = deeplake.load(sys.argv[1], read_only=True, verbose=False)
info = json.load(open(sys.argv[1] + "/version_control_info.json"))
out = {"branches": sorted(ds.branches), "log": {}, "data": {}}
for b in ds.branches:
    ds.checkout(b)
    out["log"][b] = [[c["commit"], c["message"]] for c in ds.commits]
for cid in sorted(info["commits"]):
    ds.checkout(cid)
    out["data"][cid] = {name: values(ds[name]) for name in sorted(ds.tensors)}
print("@@JSON@@" + json.dumps(out))
'''


def run_deeplake3(code: str, *args: str, timeout: float = 300) -> str:
    """Run `code` with deeplake 3.9.52's interpreter; returns its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["BUGGER_OFF"] = "true"
    proc = subprocess.run([deeplake3_python(), "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"deeplake 3.9.52 failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def dump_deeplake3(path: str) -> Dict[str, Any]:
    out = run_deeplake3(DL3_DUMP, path)
    return json.loads(out.split("@@JSON@@", 1)[1])


def run_lakeformat(code: str, *args: str, env_extra: Dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter of ours (for locks and kills)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout, env=env)
