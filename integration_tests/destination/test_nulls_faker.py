"""airbyte-source-faker through destination-deeplake, as `make demo` runs it: every numeric and
time column, nulls included, reads back as one dense typed array with its nulls;
`purchases.returned_at` as datetime64 with NaT."""
from __future__ import annotations

import numpy as np

import lakeformat
from lakeformat import temporal

from test_faker_pipeline import COUNT, configured, destination_exe, faker_catalog, faker_exe, faker_reads, sync  # noqa: F401 - fixtures

DENSE_KINDS = ("int", "float", "bool", "timestamp_tz", "timestamp_ntz", "date", "time")


def test_faker_columns_are_dense_with_their_nulls(faker_reads, destination_exe, faker_catalog, tmp_path):  # noqa: F811 - fixtures imported above
    lake = tmp_path / "lake"
    records, _ = sync(faker_reads[0], destination_exe, tmp_path / "s1", lake, configured(faker_catalog, "append"))
    checked, with_nulls = [], []
    for stream in ("users", "products", "purchases"):
        ds = lakeformat.load(str(lake / stream), read_only=True)
        src = [r["data"] for r in records if r["stream"] == stream]
        assert len(ds) == len(src) == COUNT
        for name, t in ds.tensors.items():
            kind, field = t.info.get("airbyte_kind"), t.info.get("airbyte_field")
            if kind not in DENSE_KINDS or field is None or name.startswith("_airbyte_"):  # the record's own fields only
                continue
            want = [d.get(field) is None for d in src]
            assert t.numpy().shape == (COUNT, 1), f"{stream}.{name}"  # no DynamicShapeError
            assert t.isnull().tolist() == want, f"{stream}.{name}"
            m = t.numpy(nulls="mask")
            values = [d[field] for d in src if d.get(field) is not None]
            if kind.startswith("timestamp") or kind == "date":
                tk = "date" if kind == "date" else "timestamp"
                assert m.compressed().tolist() == [temporal.to_micros(v, tk) for v in values], f"{stream}.{name}"
            elif kind != "time":
                assert m.compressed().tolist() == values, f"{stream}.{name}"
            checked.append(f"{stream}.{name}")
            if any(want):
                with_nulls.append(f"{stream}.{name}")
        if stream == "purchases":
            returned = ds.returned_at.datetime64()
            want = [d.get("returned_at") is None for d in src]
            assert returned.dtype == np.dtype("datetime64[us]") and returned.shape == (COUNT,)
            assert np.isnat(returned).tolist() == want and any(want) and not all(want)
            assert "timestamp[us, UTC], nullable" in ds.summary(print_out=False)
    assert "purchases.returned_at" in with_nulls and len(checked) >= 8
