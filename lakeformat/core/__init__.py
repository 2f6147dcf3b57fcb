"""The format engine: metas, encoders, chunks, chunk engines, tensors and datasets."""
