"""What a process needs to open and read a SQL source (picklable, for partition workers)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional


@dataclass
class SourceSpec:
    """Everything a process needs to open and read the source (picklable, for partitions)."""

    url: str
    table: Optional[str]
    schema: Optional[str]
    query: Optional[str]
    columns: List[str]  # source column names, in plan order
    primary_key: List[str]
    cursor_field: Optional[str]

    def order_columns(self) -> List[str]:
        """The columns rows are read in order of (so that a position can be resumed from)."""
        if self.primary_key:
            return list(self.primary_key)
        if self.cursor_field:
            return [self.cursor_field]
        return []
