"""SQL backfills: a table or query of any SQLAlchemy database into a lakeformat dataset.

>>> from connectors.sql import backfill                                    # doctest: +SKIP
>>> report = backfill("postgresql+psycopg://me@127.0.0.1/shop", "./lake/items",  # doctest: +SKIP
...                   table="items", cursor_field="updated_at")
>>> report.rows, report.commit_id                                           # doctest: +SKIP

See docs/sql.md for the type mapping, incremental runs, resuming and partitions.
"""
from connectors.sql.engine import BackfillReport, Plan, backfill, plan_backfill, redact_url
from connectors.sql.errors import (
    SourceConfigError,
    SourceConnectionError,
    SourceNotFoundError,
    SqlIngestError,
    StateMismatchError,
    ValueMappingError,
)
from connectors.sql.reading import compare_with_source, read_column, read_rows

__all__ = [
    "backfill",
    "plan_backfill",
    "BackfillReport",
    "Plan",
    "redact_url",
    "read_column",
    "read_rows",
    "compare_with_source",
    "SqlIngestError",
    "SourceConfigError",
    "SourceConnectionError",
    "SourceNotFoundError",
    "StateMismatchError",
    "ValueMappingError",
]
