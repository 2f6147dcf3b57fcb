"""Errors of SQL backfills. All are `lakeformat.errors.LakeFormatError`s (so the `lakeformat`
command prints them without a traceback) and also subclass the builtin a caller would catch."""
from __future__ import annotations

from typing import Any, Optional

from lakeformat.errors import LakeFormatError


class SqlIngestError(LakeFormatError):
    """Root of the SQL backfill errors."""


class SourceConfigError(SqlIngestError, ValueError):
    """The options do not make a valid backfill (a table and a query, an unknown column...)."""


class SourceConnectionError(SqlIngestError, ConnectionError):
    """The database cannot be reached or refuses the login. The message never holds the password."""


class SourceNotFoundError(SqlIngestError, LookupError):
    """The table, schema or database named does not exist."""


class DriverNotInstalledError(SqlIngestError, ImportError):
    """A package the backfill needs is not installed: SQLAlchemy itself (the `sql` extra), or
    the database driver the URL names (psycopg, PyMySQL, ...). `name` is the missing module."""


class ValueMappingError(SqlIngestError, ValueError):
    """A source value does not fit the type its column was mapped to."""

    def __init__(self, message: str, *, table: str = "", column: str = "", key: Any = None, row: Optional[int] = None, value: Any = None):
        where = f"table {table!r}" if table else "query"
        who = f"primary key {key!r}" if key is not None else (f"row {row}" if row is not None else "a row")
        super().__init__(f"{where}, {who}, column {column!r}: {message} (value {_short(value)})")
        self.table = table
        self.column = column
        self.key = key
        self.row = row
        self.value = value


class StateMismatchError(SqlIngestError, ValueError):
    """The destination holds a backfill of another source, or another column layout."""


def _short(value: Any, limit: int = 80) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."
