"""`lakeformat log URL` and `lakeformat diff URL A B`."""
from __future__ import annotations

import argparse
import json


def _load(args: argparse.Namespace, version=None):
    import lakeformat

    creds = json.loads(args.creds) if getattr(args, "creds", None) else None
    return lakeformat.load(args.url, read_only=True, creds=creds, version=version)


def _cmd_log(args: argparse.Namespace) -> int:
    from lakeformat.version_control.api import format_log

    ds = _load(args, args.version)
    entries = ds.log()
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        print(format_log(entries, ds.branch))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from lakeformat.version_control.diff import compare, format_diff

    ds = _load(args)
    d = compare(ds, args.a, args.b)
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(format_diff(d, (args.a, args.b)), end="")
    return 0


def register(subparsers) -> None:
    sp = subparsers.add_parser("log", help="print the commits of a branch (main by default), newest first")
    sp.add_argument("url")
    sp.add_argument("--version", help="a branch or commit id to start from")
    sp.add_argument("--json", action="store_true", help="print JSON instead of text")
    sp.add_argument("--creds", help="JSON object of storage options")
    sp.set_defaults(func=_cmd_log)
    sp = subparsers.add_parser("diff", help="print what changed in versions A and B since their common ancestor")
    sp.add_argument("url")
    sp.add_argument("a", help="branch or commit id")
    sp.add_argument("b", help="branch or commit id")
    sp.add_argument("--json", action="store_true", help="print the dict form as JSON")
    sp.add_argument("--creds", help="JSON object of storage options")
    sp.set_defaults(func=_cmd_diff)
