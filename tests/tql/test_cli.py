"""`lakeformat query URL QUERY`, through the installed console script."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lakeformat

SCRIPT = Path(sys.executable).parent / "lakeformat"


def query(*args: str) -> subprocess.CompletedProcess:
    assert SCRIPT.exists(), f"the console script is not installed at {SCRIPT}"
    return subprocess.run([str(SCRIPT), "query", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "bird"])
        ds.create_tensor("score", dtype="float32")
        ds.create_tensor("caption", htype="text")
        ds.create_tensor("boxes", htype="bbox", dtype="float32")
        ds.create_tensor("emb", htype="embedding", dtype="float32")
        ds.create_tensor("props", htype="json")
        ds.create_tensor("img", htype="image", sample_compression="png")
        ds.extend({
            "labels": ["cat", "dog", "cat", "bird", "dog", []],
            "score": np.array([0.9, 0.2, np.nan, 0.7, 0.4, 0.1], np.float32),
            "caption": ["a cat", "ünï dog", None, "line\nbreak", "two dogs", ""],
            "boxes": [np.full((k % 3, 4), k, np.float32) for k in range(6)],
            "emb": np.eye(6, 8, dtype=np.float32),
            "props": [{"a": 1}, None, {}, {"b": [1, 2]}, {"x": "é"}, [1]],
            "img": [np.zeros((4, 5, 3), np.uint8)] * 6,
        })
    ds.commit("six rows")
    ds.score.extend(np.array([5.0], np.float32))
    for name in ("labels", "caption", "boxes", "emb", "props", "img"):
        ds[name].extend([ds[name][0].numpy()] if name not in ("caption", "props") else [ds[name][0].values()[0]])
    ds.commit("seven rows")
    return path


def test_a_table_of_the_selected_rows(url):
    r = query(url, "SELECT * WHERE score < 1 ORDER BY score DESC")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["row", "boxes", "caption", "emb", "img", "labels", "props", "score"]
    assert set(lines[1]) == {"-", " "}
    rows = lines[2:-1]
    assert [line.split()[0] for line in rows] == ["0", "3", "4", "1", "5"]  # NaN fails the WHERE
    first = rows[0]
    assert "[]" in first and "a cat" in first and "float32[8]" in first and "uint8[4x5x3]" in first and " cat " in first and '{"a": 1}' in first
    assert "line\\nbreak" in rows[1] and "[[4.0, 4.0, 4.0, 4.0]]" in rows[2] and "float32[2x4]" in rows[4]  # 2 boxes summarised
    assert "NULL" in rows[3] and "NULL" in rows[4]  # props of row 1, the label of row 5
    assert lines[-1] == "(5 rows)"


def test_limit_and_computed_columns(url):
    r = query(url, "SELECT score, L2_NORM(emb) * 2 AS n ORDER BY score", "--limit", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["row", "score", "n"]
    assert [line.split() for line in lines[2:4]] == [["5", "0.1", "2"], ["1", "0.2", "2"]]
    assert lines[-1] == "(7 rows; showing 2, --limit N for more)"


def test_json_lines(url):
    r = query(url, "SELECT caption, score, labels, boxes, props, SHAPE(boxes)[0] AS k WHERE score > 0.15 OR score IS NULL", "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["row"] for o in objs] == [0, 1, 3, 4, 6]
    assert objs[0] == {"row": 0, "caption": "a cat", "score": 0.9, "labels": "cat", "boxes": [], "props": {"a": 1}, "k": 0}
    assert objs[1]["caption"] == "ünï dog" and objs[1]["props"] is None and objs[1]["boxes"] == [[1.0] * 4]
    assert objs[2]["caption"] == "line\nbreak" and objs[2]["props"] == {"b": [1, 2]}
    assert objs[4]["score"] == 5.0
    nan = json.loads(query(url, "SELECT score WHERE ROW_NUMBER() == 2", "--json").stdout)
    assert nan == {"row": 2, "score": None}  # NaN is not JSON: null
    assert len(query(url, "SELECT * ORDER BY score", "--json", "--limit", "3").stdout.splitlines()) == 3


def test_a_version(url):
    r = query(url, "SELECT score ORDER BY score DESC LIMIT 1", "--json", "--version", "main")
    assert json.loads(r.stdout) == {"row": 6, "score": 5.0}
    first = lakeformat.load(url, read_only=True).log()[-1]["commit"]
    r = query(url, "SELECT * WHERE score > 0", "--json", "--version", first)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["row"] for line in r.stdout.splitlines()] == [0, 1, 3, 4, 5]


def test_a_bad_query_shows_the_caret_and_exits_2(url):
    r = query(url, "SELECT * WHERE score >> 2")
    assert r.returncode == 2 and r.stdout == ""
    assert "line 1, column 23" in r.stderr and "SELECT * WHERE score >> 2" in r.stderr
    caret = r.stderr.splitlines()[-1]
    assert caret.index("^") == r.stderr.splitlines()[-2].index(">>") + 1
    r = query(url, "SELECT * WHERE nope > 1")
    assert r.returncode == 2 and "nope" in r.stderr and "column 16" in r.stderr


def test_a_missing_dataset_and_a_bad_limit_exit_2(url, tmp_path):
    r = query(str(tmp_path / "none"), "SELECT *")
    assert r.returncode == 2 and r.stderr.startswith("error:")
    r = query(url, "SELECT *", "--limit", "-1")
    assert r.returncode == 2 and "--limit" in r.stderr


def test_a_group_by_prints_each_groups_rows(url):
    r = query(url, "SELECT score GROUP BY labels", "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(row for o in objs for row in o["row"]) == list(range(7))  # every row in one group
    for o in objs:
        assert isinstance(o["score"], list) and len(o["score"]) == len(o["row"])
    r = query(url, "SELECT score GROUP BY labels")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split() == ["row", "score", "labels"]  # the key, computed
    assert "[0, 2, 6]" in r.stdout and r.stdout.splitlines()[-1] == "(4 rows)"
