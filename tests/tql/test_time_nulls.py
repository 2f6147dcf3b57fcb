"""TQL over time columns and nullable columns: ISO literals compare as times, nulls never match."""
from __future__ import annotations

import pytest

import lakeformat
from lakeformat import temporal
from lakeformat.tql.errors import TQLError


@pytest.fixture
def ds(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "t"))
    ds.create_tensor("created_at", dtype="int64", nullable=True)
    ds.created_at.info.update(temporal.info_for("timestamp", "UTC"))
    ds.create_tensor("local", dtype="int64", nullable=True)
    ds.local.info.update(temporal.info_for("timestamp", None))
    ds.create_tensor("day", dtype="int64", nullable=True)
    ds.day.info.update(temporal.info_for("date", None))
    ds.create_tensor("n", dtype="int64", nullable=True)
    stamps = ["2023-12-31T23:00:00Z", "2024-01-01T00:00:00Z", None, "2024-06-01T12:30:00+02:00", "1970-01-01T00:00:00Z"]
    ds.extend({
        "created_at": [None if s is None else temporal.to_micros(s, "timestamp") for s in stamps],
        "local": [None if s is None else temporal.to_micros(s[:19], "timestamp") for s in stamps],
        "day": [None if s is None else temporal.to_micros(s[:10], "date") for s in stamps],
        "n": [0, None, 2, 3, 0],
    })
    return ds


def rows(view) -> list:
    return view.n.numpy(nulls="mask").filled(-1).ravel().tolist()


def test_timestamps_compare_with_iso_strings(ds):
    assert rows(ds.query("SELECT * WHERE created_at > '2024-01-01'")) == [3]
    assert rows(ds.query("SELECT * WHERE created_at >= '2024-01-01T00:00:00Z'")) == [-1, 3]
    # an offset names the same instant: 01:00+01:00 is midnight UTC
    assert rows(ds.query("SELECT * WHERE created_at = '2024-01-01T01:00:00+01:00'")) == [-1]
    assert rows(ds.query("SELECT * WHERE created_at BETWEEN '2023-12-31' AND '2024-01-01'")) == [0, -1]
    assert rows(ds.query("SELECT * WHERE created_at = '1970-01-01'")) == [0]  # the epoch is a value


def test_wall_clock_and_dates(ds):
    assert rows(ds.query("SELECT * WHERE local > '2024-06-01 10:00:00'")) == [3]
    assert rows(ds.query("SELECT * WHERE day = '2024-01-01'")) == [-1]
    assert rows(ds.query("SELECT * WHERE day < '2024-01-01'")) == [0, 0]


def test_nulls_never_match_and_is_null_finds_them(ds):
    assert rows(ds.query("SELECT * WHERE created_at IS NULL")) == [2]
    assert rows(ds.query("SELECT * WHERE n = 0")) == [0, 0]  # the null's placeholder 0 is no match
    assert rows(ds.query("SELECT * WHERE n IS NULL")) == [-1]
    assert rows(ds.query("SELECT * WHERE created_at < '2100-01-01'")) == [0, -1, 3, 0]


def test_a_bad_literal_is_named(ds):
    with pytest.raises(TQLError, match="not an ISO-8601"):
        ds.query("SELECT * WHERE created_at > 'yesterday'")
