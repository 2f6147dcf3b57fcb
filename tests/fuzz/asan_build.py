"""Build the C extensions with AddressSanitizer and UndefinedBehaviorSanitizer into a folder
of their own (the in-place builds stay as they are), and name the runtime to preload.

    python -m tests.fuzz.asan_build OUT_DIR    # prints the LD_PRELOAD value
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SANITIZE = "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"


class SanitizerBuildError(RuntimeError):
    """The sanitizer build or its runtime is not available on this machine."""


def asan_runtime() -> str:
    """The path of gcc's ASAN runtime, which must be the first library of the process."""
    if shutil.which("gcc") is None:
        raise SanitizerBuildError("gcc is not on PATH: the fuzz suite builds the C extensions with gcc's ASAN/UBSAN")
    path = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        raise SanitizerBuildError(f"gcc has no ASAN runtime (libasan.so: {path!r}); install libasan (Debian: libgcc-12-dev)")
    return path


def build(out_dir: Path) -> Path:
    """Compile native/*.c as setup.py does, plus the sanitizers, into `out_dir`."""
    out_dir = Path(out_dir)
    src = out_dir / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copytree(REPO / "native", src / "native")
    shutil.copy2(REPO / "setup.py", src / "setup.py")
    env = dict(os.environ, CFLAGS=SANITIZE, LDFLAGS="-fsanitize=address,undefined")
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "-b", str(out_dir / "lib"), "-t", str(out_dir / "obj")],
                          cwd=src, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SanitizerBuildError(f"sanitizer build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return out_dir / "lib"


if __name__ == "__main__":
    lib = build(Path(sys.argv[1]))
    print(f"native dir: {lib}")
    print(f"LD_PRELOAD={asan_runtime()}")
