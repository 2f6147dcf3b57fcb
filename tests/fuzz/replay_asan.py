"""Replay fuzz corpora through the ASAN/UBSAN builds of the C extensions, then keep mutating.

    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \\
        python -m tests.fuzz.replay_asan --native-dir DIR --seconds 5 CORPUS_ROOT [TARGET ...]

atheris's libFuzzer and a preloaded ASAN runtime both define the coverage hooks, and with
ASAN first Python coverage is lost; so the coverage-guided search runs on the ordinary build
(run_atheris.py) and every input it kept, plus byte mutations of them for `--seconds` per
target, runs here with every C read and write checked. CORPUS_ROOT/<target>/ holds each
target's corpus; a missing one starts from the target's seeds. Prints `<target> <runs>` per
target; a finding is an uncaught exception (exit 1) or a sanitizer abort.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from tests.fuzz.run_atheris import NATIVE_MODULES, _NativeFinder


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few byte-level edits: overwrite, bit flip, truncate, repeat, insert an int."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.3 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.5 and len(b) > 1:
            b[rng.randrange(1, len(b))] ^= 1 << rng.randrange(8)
        elif op < 0.65:
            del b[rng.randrange(len(b) + 1):]
        elif op < 0.8:
            at = rng.randrange(len(b) + 1)
            b[at:at] = bytes([rng.randrange(256)]) * rng.randint(1, 16)
        else:
            at = rng.randrange(len(b) + 1)
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice((0, 1, 2**(8 * width) - 1, 2**(8 * width - 1), rng.randrange(2**(8 * width))))
            b[at : at + width] = value.to_bytes(width, rng.choice(("little", "big")))
    return bytes(b)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus_root", type=Path)
    ap.add_argument("targets", nargs="*")
    ap.add_argument("--native-dir", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    sys.meta_path.insert(0, _NativeFinder(args.native_dir.resolve()))
    import importlib

    for mod in NATIVE_MODULES:
        loaded = importlib.import_module(mod)
        if not str(loaded.__file__).startswith(str(args.native_dir.resolve())):
            print(f"{mod} came from {loaded.__file__}, not the sanitizer build", file=sys.stderr)
            return 2
    from tests.fuzz.targets import TARGETS

    rng = random.Random(args.seed)
    for name in args.targets or list(TARGETS):
        fn, seeds = TARGETS[name]
        folder = args.corpus_root / name
        corpus: List[bytes] = [p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file() and not p.name.startswith("crash-")]
        corpus += seeds()
        runs = 0
        for data in corpus:
            fn(data)
            runs += 1
        stop = time.monotonic() + args.seconds
        while time.monotonic() < stop:
            data = mutate(rng.choice(corpus), rng)
            try:
                fn(data)
            except BaseException:
                print(f"finding in {name}: input {data!r}", file=sys.stderr)
                raise
            runs += 1
        print(f"{name} {runs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
