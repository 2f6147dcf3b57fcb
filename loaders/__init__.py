"""Stream a lakeformat dataset (or a query view) into PyTorch training.

The loader lives in `lakeformat.integrations.torch`; `loaders` is kept as the users' import
path (`from loaders import dataloader`, `from loaders.reader import ...` keep working).

>>> from loaders import dataloader                                     # doctest: +SKIP
>>> loader = (dataloader(ds).transform({"images": augment}).batch(64)  # doctest: +SKIP
...           .shuffle(True, seed=0).pytorch(num_workers=2))

See docs/loader.md.
"""
from lakeformat.integrations.torch import (
    DataLoaderBuilder,
    LakeDataLoader,
    LoaderError,
    SampleLoadError,
    dataloader,
    dataset_pytorch,
)

__all__ = ["dataloader", "DataLoaderBuilder", "LakeDataLoader", "dataset_pytorch", "LoaderError", "SampleLoadError"]
