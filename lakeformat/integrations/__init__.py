"""Integrations of the format with frameworks (each imported only on use: `lakeformat` never
imports torch). `lakeformat.integrations.torch`: the PyTorch loader (`loaders` re-exports it)."""
