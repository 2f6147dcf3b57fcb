"""Run code under the reference implementation, deeplake==3.9.52, in its own interpreter.

deeplake 3.9.52 needs numpy<2 and our environment has numpy 2, so the reference runs in a
separate virtual environment and in a subprocess. Values cross over through `exchange` (JSON
plus one .npz), which both numpy majors read.

>>> out = run_deeplake3("emit(INPUT + 1)", inputs=41)      # doctest: +SKIP
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any, Optional

from . import exchange

REPO = Path(__file__).resolve().parents[2]
PROJECT_VENV = REPO / ".venvs" / "deeplake3"
SHARED_VENV = Path("/opt/venvs/dl3")
REFERENCE = "deeplake==3.9.52"
_HERE = Path(__file__).resolve().parent
_create_lock = threading.Lock()


class Deeplake3Error(AssertionError):
    """The deeplake 3.9.52 subprocess failed; the message carries its output."""


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _has_deeplake(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('deeplake'))"],
        capture_output=True, text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == "3.9.52"


@functools.lru_cache(maxsize=None)
def deeplake3_python() -> str:
    """The interpreter of a virtual environment with deeplake 3.9.52.

    The project's `.venvs/deeplake3` (made by `make setup`), else the machine's shared
    `/opt/venvs/dl3`; with neither, `.venvs/deeplake3` is created here. Never skips.
    """
    for venv in (PROJECT_VENV, SHARED_VENV):
        if _has_deeplake(_python_of(venv)):
            return str(_python_of(venv))
    with _create_lock:
        python = _python_of(PROJECT_VENV)
        if not _has_deeplake(python):
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(PROJECT_VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", REFERENCE, "numpy<2"], check=True)
        return str(python)


_PRELUDE = '''
import os, sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {here!r})
import exchange
INPUT = exchange.load({inp!r}) if os.path.exists({inp!r}) else None
def emit(obj):
    exchange.dump(obj, {out!r})
'''


def run_deeplake3(code: str, inputs: Any = None, timeout: float = 300, workdir: Optional[str] = None) -> Any:
    """Run `code` under deeplake 3.9.52 and return what it passed to `emit(...)`.

    `code` sees `INPUT` (the decoded `inputs`) and `emit(obj)`; both go through `exchange`.
    A non-zero exit raises `Deeplake3Error` with the subprocess's output.
    """
    own_dir = workdir is None
    work = Path(workdir or tempfile.mkdtemp(prefix="dl3-"))
    try:
        inp, out = str(work / "input.json"), str(work / "output.json")
        if inputs is not None:
            exchange.dump(inputs, inp)
        script = work / "script.py"
        script.write_text(_PRELUDE.format(here=str(_HERE), inp=inp, out=out) + textwrap.dedent(code))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["BUGGER_OFF"] = "true"  # deeplake's usage reporting
        env["DEEPLAKE_DOWNLOAD_PATH"] = str(work / "dl_cache")
        proc = subprocess.run(
            [deeplake3_python(), str(script)], capture_output=True, text=True, timeout=timeout, cwd=str(work), env=env
        )
        if proc.returncode != 0:
            raise Deeplake3Error(
                f"deeplake 3.9.52 subprocess exited with {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
            )
        return exchange.load(out) if os.path.exists(out) else None
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
