"""Run one fuzz target under atheris (libFuzzer), with the C extensions of an ASAN/UBSAN build.

    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \\
        python -m tests.fuzz.run_atheris TARGET --native-dir DIR --seconds 60 --corpus CORPUS_DIR

`--native-dir` holds `lakeformat/_native*.so` and `connectors/destination_deeplake/_records*.so`
built with `-fsanitize=address,undefined` (tests/fuzz/asan_build.py makes it); they replace the
in-place builds for this process, so every byte the targets feed to C is checked by ASAN. The
Python code of lakeformat and connectors is instrumented for coverage; the corpus directory
starts from the target's seeds. The exit status is 0 when the run ends without a finding.
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

NATIVE_MODULES = ("lakeformat._native", "connectors.destination_deeplake._records")


class _NativeFinder(importlib.abc.MetaPathFinder):
    """Loads the sanitizer builds of the extensions instead of the in-place ones."""

    def __init__(self, native_dir: Path):
        self.native_dir = native_dir

    def find_spec(self, name: str, path: Optional[Sequence[str]], target=None):  # noqa: ANN001
        if name not in NATIVE_MODULES:
            return None
        parts = name.split(".")
        folder = self.native_dir.joinpath(*parts[:-1])
        found = sorted(folder.glob(parts[-1] + ".*.so"))
        if not found:
            raise ImportError(f"no sanitizer build of {name} under {folder}")
        loader = importlib.machinery.ExtensionFileLoader(name, str(found[0]))
        return importlib.util.spec_from_file_location(name, str(found[0]), loader=loader)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--native-dir", type=Path, default=None)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--max-len", type=int, default=8192)
    args = ap.parse_args(argv)

    import atheris  # first: its libFuzzer must be in place before instrumented code loads

    if args.native_dir is not None:
        sys.meta_path.insert(0, _NativeFinder(args.native_dir.resolve()))
    with atheris.instrument_imports(include=["lakeformat", "connectors", "tests.fuzz.targets"]):
        import lakeformat  # noqa: F401
        from tests.fuzz import targets
    for mod in NATIVE_MODULES:
        loaded = importlib.import_module(mod)
        if args.native_dir is not None and not str(loaded.__file__).startswith(str(args.native_dir.resolve())):
            print(f"{mod} came from {loaded.__file__}, not the sanitizer build", file=sys.stderr)
            return 2
    fn, seeds = targets.TARGETS[args.target]
    args.corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds()):
        (args.corpus / f"seed-{i:03d}").write_bytes(seed)
    libfuzzer_args = [
        sys.argv[0], str(args.corpus),
        f"-max_total_time={args.seconds}", "-timeout=20", f"-max_len={args.max_len}",
        "-rss_limit_mb=4096", "-print_final_stats=1", f"-artifact_prefix={args.corpus}/crash-",
    ]
    atheris.Setup(libfuzzer_args, fn)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
