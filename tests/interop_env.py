"""Where the reference implementation, deeplake==3.9.52, is installed.

deeplake 3.9.52 needs numpy<2 and our environment has numpy 2, so it lives in its own virtual
environment and tests run it in a subprocess. `make setup` creates the project's own
`.venvs/deeplake3` (deeplake==3.9.52 with numpy<2); machines of this project also carry a
shared one at /opt/venvs/dl3, used when the project's is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT_PYTHON = REPO / ".venvs" / "deeplake3" / "bin" / "python"
SHARED_PYTHON = Path("/opt/venvs/dl3/bin/python")


def deeplake3_python() -> str:
    """The interpreter with deeplake 3.9.52: `.venvs/deeplake3` (made by `make setup`) if it
    exists, else /opt/venvs/dl3."""
    if os.path.exists(PROJECT_PYTHON):
        return str(PROJECT_PYTHON)
    return str(SHARED_PYTHON)
