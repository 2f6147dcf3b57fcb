"""Kept for users' imports: the module is `lakeformat.integrations.torch.chunk_cache` (this name is
that module itself, so that setting its attributes reaches the loader)."""
import sys

from lakeformat.integrations.torch import chunk_cache as _module

sys.modules[__name__] = _module
