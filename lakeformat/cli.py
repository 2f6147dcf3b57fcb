"""The `lakeformat` command: info, summary, verify, log, diff, query, ingest."""
from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
from typing import List, Optional

# modules that add subcommands: each has register(subparsers) -> None
_PLUGINS = [
    "lakeformat.version_control.cli",
    "lakeformat.tql.cli",
    "connectors.sql.cli",
]


def _cmd_info(args: argparse.Namespace) -> int:
    import lakeformat

    ds = lakeformat.load(args.url, read_only=True, creds=_creds(args))
    out = {
        "path": args.url,
        "length": len(ds),
        "branch": ds.branch,
        "commit_id": ds.commit_id,
        "tensors": {
            name: {"htype": t.htype, "dtype": str(t.meta.dtype), "length": t.num_samples, "min_shape": list(t.shape_interval[0]), "max_shape": list(t.shape_interval[1]), "sample_compression": t.sample_compression, "chunk_compression": t.chunk_compression}
            for name, t in ds.tensors.items()
        },
        "info": dict(ds.info),
    }
    print(json.dumps(out, indent=2, default=str))
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    import lakeformat

    lakeformat.load(args.url, read_only=True, creds=_creds(args)).summary()
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from lakeformat.verify import verify

    report = verify(args.url, creds=_creds(args), deep=not args.quick)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _creds(args: argparse.Namespace):
    if getattr(args, "creds", None):
        return json.loads(args.creds)
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lakeformat", description="Inspect and check lakeformat (Deep Lake 3.x layout) datasets.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, help_ in (("info", _cmd_info, "print a dataset's tensors as JSON"), ("summary", _cmd_summary, "print a dataset's summary table"), ("verify", _cmd_verify, "check a dataset's consistency")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("url")
        sp.add_argument("--creds", help="JSON object of storage options (endpoint_url, key, secret...)")
        if name == "verify":
            depth = sp.add_mutually_exclusive_group()
            depth.add_argument("--deep", action="store_true",
                               help="(the default) read every chunk whole: parse it and check every byte against its checksum")
            depth.add_argument("--quick", action="store_true",
                               help="check metas, encoders and their checksums, and that each chunk exists; not every chunk's bytes")
        sp.set_defaults(func=fn)
    import importlib

    for mod in _PLUGINS:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and mod.startswith(e.name):
                continue  # that plugin is not part of this install
            raise
        m.register(sub)
    return p


# Commit messages and dataset info can hold a source URL written before writers redacted them
# (an SQL backfill's lineage): what these commands print goes through `redact_credentials`.
_REDACTED_COMMANDS = ("log", "info", "diff")
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*):[^@\s/'\"]*@")
_SECRET_PARAM = re.compile(
    r"([?&])([^=&\s#'\"]*(?:password|passwd|pwd|secret|token|key|credential|signature|auth)[^=&\s#'\"]*|sig)=([^&\s#'\"]*)",
    re.IGNORECASE,
)


def redact_credentials(text: str) -> str:
    """`text` with the password of every URL dropped and secret-named query values masked.

    >>> redact_credentials("from postgresql://me:pw@db/x?sslmode=require&password=p2 table t")
    'from postgresql://me@db/x?sslmode=require&password=*** table t'
    """
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", _URL_PASSWORD.sub(r"\1@", text))


class _RedactingStdout(io.TextIOBase):
    """stdout, line by line through `redact_credentials`."""

    def __init__(self, out) -> None:
        self.out = out
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            done, self.pending = self.pending.rsplit("\n", 1)
            self.out.write(redact_credentials(done) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.out.write(redact_credentials(self.pending))
            self.pending = ""
        self.out.flush()


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in _REDACTED_COMMANDS:
        stdout, sys.stdout = sys.stdout, _RedactingStdout(sys.stdout)
        try:
            return _main(args)
        finally:
            sys.stdout.flush()
            sys.stdout = stdout
    return _main(args)


def _main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from lakeformat.errors import LakeFormatError

    try:
        return int(args.func(args) or 0)
    except LakeFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
