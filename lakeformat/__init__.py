"""lakeformat: Deep Lake's Tensor Storage Format (3.x layout), fast and safe.

>>> import lakeformat, numpy as np                       # doctest: +SKIP
>>> ds = lakeformat.empty("./lake/animals", overwrite=True)  # doctest: +SKIP
>>> ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])  # doctest: +SKIP
>>> ds.labels.extend(["cat", "dog", "dog"])            # doctest: +SKIP
"""
from lakeformat import _native  # noqa: F401 - the C extension is required, never optional
from lakeformat.api import dataset, delete, empty, exists, load
from lakeformat.core.dataset import Dataset
from lakeformat.core.sample import LinkedSample, Sample, link, read
from lakeformat.core.tensor import Tensor
from lakeformat.core.view import View
from lakeformat import errors

__version__ = "0.1.0"
__all__ = ["empty", "load", "dataset", "exists", "delete", "read", "link", "query", "Dataset", "Tensor", "View", "Sample", "LinkedSample", "errors"]


def query(text: str, params: "list | tuple | None" = None) -> Dataset:
    """Run a TQL query that names its dataset, `SELECT * FROM "<url>"[@version] WHERE ...`,
    and return the view over the matching rows (the dataset is opened read-only). TQL is
    imported on first use: `import lakeformat` stays light. Computed columns: `lakeformat.tql.run`.

    >>> lakeformat.query('SELECT * FROM "./lake/animals" WHERE labels == \'cat\' LIMIT 10')  # doctest: +SKIP
    """
    from lakeformat import tql

    return tql.run(None, text, params=params).view
