"""The per-version bookkeeping objects of the layout (`CommitDiff`, `ChunkSet`, `DatasetDiff`):
they live in lakeformat.core.version_objects (the format's layer); re-exported here."""
from lakeformat.core.version_objects import ChunkSet, CommitDiff, DatasetDiff

__all__ = ["ChunkSet", "CommitDiff", "DatasetDiff"]
