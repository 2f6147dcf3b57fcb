"""The htype table's facts that core reads instead of name lists (tensor.py, layout.py,
decode.py, nulls.py): each fact names exactly the htypes those lists named."""
from __future__ import annotations

import pytest

from lakeformat.core.layout import TEXT_HTYPES as LAYOUT_TEXT_HTYPES
from lakeformat.core.layout import SampleFormat
from lakeformat.htypes import HTYPES, TEXT_HTYPES, htype_of, is_numeric_dtype


def _named(fact: str) -> set[str]:
    return {name for name, rec in HTYPES.items() if getattr(rec, fact)}


def test_each_fact_names_the_htypes_the_old_lists_named() -> None:
    assert TEXT_HTYPES == LAYOUT_TEXT_HTYPES == ("text", "json", "list", "tag")
    assert _named("text_like") == {"text", "json", "list", "tag"}
    assert _named("json_like") == {"json", "list", "tag"}
    assert _named("list_like") == {"list", "tag"}
    assert _named("label") == {"class_label"}
    assert _named("image_like") == {"image", "image.rgb", "image.gray"}


@pytest.mark.parametrize("name", [None, "generic", "dicom", "nifti", "from_a_newer_writer"])
def test_names_outside_the_table_have_no_fact(name: str | None) -> None:
    rec = htype_of(name)
    assert not (rec.text_like or rec.json_like or rec.list_like or rec.label or rec.image_like)


@pytest.mark.parametrize(("dtype", "numeric"), [(None, False), ("str", False), ("Any", False), ("List", False),
                                                 ("uint8", True), ("float32", True), ("bool", True)])
def test_numeric_dtypes(dtype: str | None, numeric: bool) -> None:
    assert is_numeric_dtype(dtype) is numeric
    fmt = SampleFormat(None, "generic", dtype, (2,), (2,), None, None, False, False)
    assert (fmt.fixed_shape == (2,)) is numeric
    assert fmt.np_dtype == (dtype if numeric else "uint8")
