"""The child of tests/connectors/test_kill_sql.py: `lakeformat ingest sql` as a user runs it
(the CLI's `main`), its output (the JSON report) and logs kept in files, never on the kill
harness's pipe."""
from __future__ import annotations

import os
import sys

# imported when the kill harness's zygote imports this module, before it forks
import connectors.sql.engine  # noqa: F401
import sqlalchemy  # noqa: F401
from lakeformat.cli import main


def ingest(url: str, dest: str, batch_size: int, output_path: str, partitions: int = 1) -> None:
    """`lakeformat ingest sql --url URL --table items --cursor-field updated_at --dest DEST
    [--partitions N]` (N > 1: read by N worker processes, this one writes)."""
    fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(output_path, "a")
    rc = main(["ingest", "sql", "--url", url, "--table", "items", "--cursor-field", "updated_at", "--dest", dest,
               "--batch-size", str(batch_size), "--no-progress"] + (["--partitions", str(partitions)] if partitions > 1 else []))
    sys.stdout.flush()
    if rc:
        raise RuntimeError(f"lakeformat ingest sql exited {rc}")
