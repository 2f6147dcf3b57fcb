"""`lakeformat ingest sql ...`: the command line of SQL backfills."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Optional


def _pairs(items: Optional[List[str]], flag: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for item in items or []:
        col, sep, spec = item.partition("=")
        if not sep or not col or not spec:
            raise argparse.ArgumentTypeError(f"{flag} takes COL=SPEC, got {item!r}")
        out[col.strip()] = spec.strip()
    return out


def _cmd_sql(args: argparse.Namespace) -> int:
    from connectors.sql.engine import backfill, plan_backfill, require_sqlalchemy

    require_sqlalchemy()  # without the `sql` extra: a typed error naming it, not a traceback

    from connectors.sql.errors import SourceConfigError

    try:
        tensors = _pairs(args.tensor, "--tensor")
        links = _pairs(args.link_column, "--link-column")
    except argparse.ArgumentTypeError as e:
        raise SourceConfigError(str(e)) from None
    pk = [k.strip() for k in args.primary_key.split(",")] if args.primary_key else None
    if args.dry_run:
        plan = plan_backfill(args.url, table=args.table, schema=args.schema, query=args.query, primary_key=pk, cursor_field=args.cursor_field, link_columns=links, tensors=tensors, decimal=args.decimal)
        for line in plan.lines():
            print(line)
        return 0
    if not args.dest:
        raise SourceConfigError("--dest is required (except with --dry-run)")
    creds = json.loads(args.creds) if args.creds else None
    report = backfill(
        args.url, args.dest, table=args.table, schema=args.schema, query=args.query, primary_key=pk,
        cursor_field=args.cursor_field, batch_size=args.batch_size, partitions=args.partitions,
        link_columns=links, tensors=tensors, decimal=args.decimal, on_error=args.on_error, creds=creds,
        progress=not args.no_progress and sys.stderr.isatty() or args.progress,
    )
    print(json.dumps(report.to_dict(), default=str))
    return 0


def register(subparsers) -> None:
    """Add `ingest` (with sub-command `sql`) to the `lakeformat` command."""
    ingest = subparsers.add_parser("ingest", help="load data from other systems into a dataset")
    sub = ingest.add_subparsers(dest="ingest_command", required=True)
    p = sub.add_parser(
        "sql",
        help="backfill a table or query of any SQLAlchemy database",
        description="Backfill a table or query of any SQLAlchemy database into a dataset, or bring it up to date "
        "(with --cursor-field). A killed run resumes where it stopped when run again. Prints a JSON report.",
    )
    p.add_argument("--url", required=True, help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host:5432/db")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--table", help="table to read")
    src.add_argument("--query", help="SELECT to read (instead of --table)")
    p.add_argument("--schema", help="schema of --table")
    p.add_argument("--dest", help="dataset URL (local path, s3://, gs://, az://, memory://)")
    p.add_argument("--creds", help="JSON object of storage options for --dest")
    p.add_argument("--primary-key", help="key column(s), comma-separated: rows with a known key replace the old ones (default: the table's primary key)")
    p.add_argument("--cursor-field", help="column that grows with every insert and update (updated_at, id): later runs read only rows beyond it")
    p.add_argument("--batch-size", type=int, default=10_000, help="rows per batch, flush and resume point (default 10000)")
    p.add_argument("--partitions", type=int, default=1, help="read in N processes by primary-key ranges")
    p.add_argument("--link-column", action="append", metavar="COL=link[HTYPE]", help="store a URL column as a linked tensor, e.g. url=link[image]")
    p.add_argument("--tensor", action="append", metavar="COL=HTYPE[:DTYPE]", help="override a column's tensor type, e.g. photo=image:jpeg, meta=json, score=generic:float32")
    p.add_argument("--decimal", choices=("auto", "float", "text"), default="auto", help="numeric columns: float64 when exact (auto), always float64, or exact text")
    p.add_argument("--on-error", choices=("fail", "null"), default="fail", help="a value that does not fit: stop (after flushing what came before), or store NULL and count it")
    p.add_argument("--dry-run", action="store_true", help="print the planned tensors and exit")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sql)
