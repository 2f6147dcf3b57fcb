"""Coverage-guided fuzzing of the parsers and the C kernels, bounded for `make test`.

Each target (tests/fuzz/targets.py) runs under atheris for LAKEFORMAT_FUZZ_SECONDS (default 6)
in its own process, growing a corpus from seeds the code makes; then every corpus, with byte
mutations for LAKEFORMAT_FUZZ_ASAN_SECONDS per target, is replayed through the C extensions
built with ASAN and UBSAN. `make fuzz-long` runs the same for minutes per target.
A finding fails the test with the input that caused it (saved as crash-* in the corpus).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.asan_build import REPO, asan_runtime, build
from tests.fuzz.targets import TARGETS

FUZZ_SECONDS = int(os.environ.get("LAKEFORMAT_FUZZ_SECONDS", "6"))
ASAN_SECONDS = float(os.environ.get("LAKEFORMAT_FUZZ_ASAN_SECONDS", str(max(3, FUZZ_SECONDS // 2))))


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory) -> Path:
    keep = os.environ.get("LAKEFORMAT_FUZZ_CORPUS")  # a corpus kept between long runs
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("fuzz-corpus")


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    return env


@pytest.mark.timeout(FUZZ_SECONDS + 300)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_atheris(target: str, corpus_root: Path) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("atheris is missing: it is in the test extra (pip install -e '.[test]')")
    corpus = corpus_root / target
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run_atheris", target, "--seconds", str(FUZZ_SECONDS), "--corpus", str(corpus)],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=FUZZ_SECONDS + 240,
    )
    out = proc.stdout + proc.stderr
    crashes = sorted(p.name for p in corpus.glob("crash-*")) + sorted(p.name for p in corpus.glob("timeout-*"))
    assert proc.returncode == 0 and not crashes, f"atheris found a failing input for {target} ({crashes}):\n{out[-6000:]}"
    m = re.search(r"Done (\d+) runs in (\d+) second", out)
    assert m, f"atheris did not finish its run:\n{out[-3000:]}"
    assert int(m.group(1)) > 100, f"only {m.group(1)} executions in {m.group(2)} s"
    print(f"atheris {target}: {m.group(1)} runs in {m.group(2)} s, corpus {len(list(corpus.iterdir()))} inputs")


@pytest.mark.timeout(len(TARGETS) * ASAN_SECONDS + 600)
def test_corpora_under_asan_and_ubsan(corpus_root: Path, tmp_path_factory) -> None:
    runtime = asan_runtime()
    native_dir = build(tmp_path_factory.mktemp("asan-build"))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.replay_asan", "--native-dir", str(native_dir), "--seconds", str(ASAN_SECONDS),
         str(corpus_root)],
        cwd=REPO, env=_env(LD_PRELOAD=runtime, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                           UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"),
        capture_output=True, text=True, timeout=len(TARGETS) * ASAN_SECONDS + 400,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"a finding under ASAN/UBSAN:\n{out[-8000:]}"
    runs = dict(line.split() for line in proc.stdout.splitlines() if line.count(" ") == 1)
    assert set(runs) == set(TARGETS), out[-3000:]
    assert all(int(n) > 50 for n in runs.values()), runs
    print("asan/ubsan runs: " + ", ".join(f"{k} {v}" for k, v in sorted(runs.items())))
