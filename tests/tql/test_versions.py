"""Version queries (`x@v`, ROW_ADDED / ROW_REMOVED / ROW_CHANGED, FROM "<url>"@prefix) against
results computed by hand on checked-out copies of each commit.

The oracle never goes through lakeformat.tql.versions: it opens each version with
`lakeformat.load(path, version=...)`, reads the values and the hidden `_<t>_id` tensors with the
public tensor API, and aligns rows by id in plain Python.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.core.version_tree import VersionTree
from lakeformat.tql.versions import VersionContext

TENSORS = ("x", "labels", "t", "boxes")
NAMES = ["cat", "dog", "bird"]
WORDS = ["a", "b", "ü", "dog", "ça", "", "zz"]


# -- a random history ------------------------------------------------------------------------------
def _rows(rng: np.random.Generator, k: int) -> Dict[str, List[Any]]:
    return {
        "x": [int(v) for v in rng.integers(-5, 6, k)],
        "labels": [[] if rng.random() < 0.2 else [int(rng.integers(0, 3))] for _ in range(k)],
        "t": [None if rng.random() < 0.2 else str(rng.choice(WORDS)) for _ in range(k)],
        "boxes": [rng.integers(0, 9, (int(rng.integers(0, 3)), 4)).astype(np.float32) for _ in range(k)],
    }


def _edit(ds: Any, rng: np.random.Generator) -> None:
    """One random change to the current branch head: append, update or pop."""
    n = len(ds)
    op = rng.choice(3, p=[0.35, 0.45, 0.2]) if n else 0
    if op == 0:
        ds.extend(_rows(rng, int(rng.integers(1, 4))))
    elif op == 1:
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(0, n))
            vals = _rows(rng, 1)
            name = str(rng.choice(TENSORS))
            ds[name][r] = vals[name][0]
    else:
        ds.pop(int(rng.integers(0, n)))


def build(path: str, seed: int) -> Tuple[Any, List[str], List[str]]:
    """A dataset with commits on several branches (appends, updates, pops, merges) and,
    at the end, uncommitted changes on the branch the handle stands on. Returns the handle,
    the commit ids and the branch names."""
    rng = np.random.default_rng(seed)
    ds = lakeformat.empty(path, overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("labels", htype="class_label", class_names=NAMES)
    ds.create_tensor("t", htype="text")
    ds.create_tensor("boxes", htype="bbox", dtype="float32")
    commits = [ds.commit("empty")]  # a version with no rows
    branches = ["main"]
    for step in range(10):
        for _ in range(int(rng.integers(1, 4))):
            _edit(ds, rng)
        commits.append(ds.commit(f"step {step}", allow_empty=True))
        what = rng.integers(0, 4)
        if what == 0:
            name = f"b{step}"
            ds.checkout(name, create=True)
            branches.append(name)
        elif what == 1 and len(branches) > 1:
            ds.checkout(str(rng.choice(branches)))
        elif what == 2 and len(branches) > 1:
            other = str(rng.choice([b for b in branches if b != ds.branch]))
            merged = ds.merge(other, conflict_resolution="theirs")
            if merged is not None:
                commits.append(merged)
    for _ in range(int(rng.integers(1, 3))):  # uncommitted changes at HEAD
        _edit(ds, rng)
    return ds, commits, branches


# -- the oracle --------------------------------------------------------------------------------------
def _norm(name: str, s: Any) -> Any:
    """A sample as a plain Python value: None for NULL (an empty sample or a None text)."""
    a = np.asarray(s)
    if name == "t":
        v = a.reshape(-1)[0] if a.size else None
        return None if v is None else str(v)
    if a.size == 0:
        return None
    if name == "boxes":
        return tuple(map(tuple, a.reshape(-1, 4).tolist()))
    return tuple(a.reshape(-1).tolist())


def snapshot(d: Any) -> Dict[str, Tuple[np.ndarray, List[Any], List[Any]]]:
    """tensor -> (sample ids, normalised values, raw samples), read through the public API."""
    out = {}
    for name in TENSORS:
        ids = np.asarray(d[f"_{name}_id"].numpy()).reshape(-1)
        raw = d[name].numpy(aslist=True)
        out[name] = (ids, [_norm(name, s) for s in raw], raw)
    return out


def align(here: Dict[str, Any], there: Dict[str, Any], name: str, rows: np.ndarray) -> List[Optional[int]]:
    """For each row (positions here), the position of the same sample there (None: absent)."""
    where = {int(i): j for j, i in enumerate(there[name][0])}
    ids = here[name][0]
    return [where.get(int(ids[r])) for r in rows]


def _raw_same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.tolist() == b.tolist()


def expected(here: Dict[str, Any], there: Dict[str, Any], rows: np.ndarray) -> Dict[str, Any]:
    n = len(rows)
    pos = {name: align(here, there, name, rows) for name in TENSORS}

    def val(name: str, k: int, side: str) -> Any:
        if side == "here":
            return here[name][1][rows[k]]
        p = pos[name][k]
        return None if p is None else there[name][1][p]

    def differ(name: str, k: int) -> bool:
        a, b = val(name, k, "here"), val(name, k, "there")
        return a is not None and b is not None and a != b

    def changed(name: str, k: int) -> bool:
        p = pos[name][k]
        return p is not None and not _raw_same(here[name][2][rows[k]], there[name][2][p])

    return {
        "x_ne": [k for k in range(n) if differ("x", k)],
        "x_null": [k for k in range(n) if pos["x"][k] is None],
        "x_old": [None if val("x", k, "there") is None else val("x", k, "there")[0] for k in range(n)],
        "labels_ne": [k for k in range(n) if differ("labels", k)],
        "labels_cat": [k for k in range(n) if val("labels", k, "there") == (0,)],
        "t_eq": [k for k in range(n) if val("t", k, "here") is not None and val("t", k, "here") == val("t", k, "there")],
        "t_old": [val("t", k, "there") for k in range(n)],
        "boxes_old": [() if val("boxes", k, "there") is None else val("boxes", k, "there") for k in range(n)],
        "added": [k for k in range(n) if any(pos[name][k] is None for name in TENSORS)],
        "changed": [k for k in range(n) if any(changed(name, k) for name in TENSORS)],
        "changed_t": [k for k in range(n) if changed("t", k)],
    }


def _ints(col: Any) -> List[Optional[int]]:
    """A computed column of one number per row; NULL (an empty sample) as None."""
    return [None if v is None or np.size(v) == 0 else int(np.asarray(v).reshape(-1)[0]) for v in col]


def _boxes(col: Any) -> List[Any]:
    # NULL comes back as None (rows of one shape) or as an empty sample (shapes differ)
    return [() if v is None else tuple(map(tuple, np.asarray(v).reshape(-1, 4).tolist())) for v in col]


def check_version(ds: Any, version: str, here: Dict[str, Any], there: Dict[str, Any], rows: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """Every version query on `ds` (or on ds[rows]) against `version` equals the oracle."""
    src = ds if rows is None else ds[rows.tolist()]
    rows = np.arange(len(ds)) if rows is None else rows
    exp = expected(here, there, rows)
    v = version

    def q(text: str) -> List[int]:
        return tql.run(src, text).indices.tolist()

    assert q(f"SELECT * WHERE x@{v} != x") == exp["x_ne"]
    assert q(f"SELECT * WHERE x@{v} IS NULL") == exp["x_null"]
    assert q(f"SELECT * WHERE labels@{v} != labels") == exp["labels_ne"]
    assert q(f"SELECT * WHERE labels@{v} == 'cat'") == exp["labels_cat"]
    assert q(f"SELECT * WHERE t@'{v}' == t") == exp["t_eq"]
    assert q(f"SELECT * WHERE ROW_ADDED('{v}')") == exp["added"]
    assert q(f"SELECT * WHERE ROW_CHANGED('{v}')") == exp["changed"]
    assert q(f"SELECT * WHERE ROW_CHANGED('{v}', 't')") == exp["changed_t"]
    res = tql.run(src, f"SELECT x@{v} AS old_x, t@{v} AS old_t, boxes@{v} AS old_boxes, x")
    assert res.indices.tolist() == list(range(len(rows)))
    assert _ints(res.columns["old_x"]) == exp["x_old"]
    assert list(res.columns["old_t"]) == exp["t_old"]
    assert _boxes(res.columns["old_boxes"]) == exp["boxes_old"]
    assert res.tensors == ("x",)
    return exp


def _head_state(ds: Any) -> Tuple[Any, ...]:
    return (ds.branch, ds.pending_commit_id, ds.commit_id, ds.has_head_changes, len(ds), ds.x.numpy().reshape(-1).tolist())


# two histories by default (seconds); LAKEFORMAT_TQL_VERSION_SEEDS=50 for a long run
SEEDS = int(os.environ.get("LAKEFORMAT_TQL_VERSION_SEEDS", "2"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_versions_against_checked_out_copies(tmp_path: Any, seed: int) -> None:
    seen = check_history(str(tmp_path / "lake"), seed)
    if seed < 4:  # these histories exercise every kind of answer (some later seeds are short)
        assert all(seen[k] for k in ("x_null", "added", "changed", "t_eq")), seen


def check_history(path: str, seed: int) -> Dict[str, int]:
    """Build a random history and check every version query on it; returns how many
    rows each kind of query found, over all versions."""
    ds, commits, branches = build(path, seed)
    before = _head_state(ds)
    here = snapshot(ds)  # the handle's state, its uncommitted changes included
    rng = np.random.default_rng(seed + 100)
    versions: List[Tuple[str, Any]] = [(c[:10] if k % 2 else c, c) for k, c in enumerate(commits)]
    for b in branches:
        if b != ds.branch:  # another branch's head, as stored
            versions.append((b, b))
    seen: Dict[str, int] = {}
    for label, address in versions:
        copy = lakeformat.load(path, version=address, read_only=True)
        there = snapshot(copy)
        for key, hits in check_version(ds, label, here, there).items():
            seen[key] = seen.get(key, 0) + sum(h is not None and h != () for h in hits)
        if len(ds):
            view_rows = rng.permutation(len(ds))[: max(1, len(ds) // 2)]
            check_version(ds, label, here, there, view_rows)
    # the version the handle stands on, by its branch name: itself, unflushed writes included
    check_version(ds, ds.branch, here, here)
    assert _head_state(ds) == before  # queries never move HEAD nor touch uncommitted changes

    ds.flush()  # the other side reads the branch head as stored
    head = ds.branch
    for c in commits:
        old = lakeformat.load(path, version=c, read_only=True)
        there = snapshot(old)
        rows = np.arange(len(old))
        gone = [k for k in rows if any(align(there, here, name, np.array([k]))[0] is None for name in TENSORS)]
        assert tql.run(old, f"SELECT * WHERE ROW_REMOVED('{head}')").indices.tolist() == gone
        # FROM "<url>"@<prefix>: the query runs on that version, and x@... reads from there
        exp = expected(there, here, rows)
        got = tql.run(None, f'SELECT * FROM "{path}"@{c[:8]} WHERE x@{head} != x').indices.tolist()
        assert got == exp["x_ne"]
        even = [k for k in rows if there["x"][1][k][0] % 2 == 0]
        assert tql.run(None, f'SELECT * FROM "{path}"@{c[:8]} WHERE x % 2 == 0').indices.tolist() == even
    assert _head_state(ds) == before
    return seen


def test_position_alignment_without_ids(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "noids"), overwrite=True)
    ds.create_tensor("p", dtype="int64", create_id_tensor=False)
    ds.p.extend(np.array([1, 2, 3]))
    v1 = ds.commit("three")
    ds.p[0] = 9
    ds.p.extend(np.array([4, 5]))
    res = tql.run(ds, f"SELECT p@{v1} AS old WHERE p@{v1} != p OR p@{v1} IS NULL")
    assert res.indices.tolist() == [0, 3, 4]
    assert _ints(res.columns["old"]) == [1, None, None]
    assert tql.run(ds, f"SELECT * WHERE ROW_ADDED('{v1}')").indices.tolist() == [3, 4]
    assert tql.run(ds, f"SELECT * WHERE ROW_CHANGED('{v1}')").indices.tolist() == [0]


def test_empty_dataset_and_same_version(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "empty"), overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("t", htype="text")
    empty = ds.commit("no rows")
    assert len(tql.run(ds, f"SELECT * WHERE x@{empty} IS NULL")) == 0
    ds.extend({"x": np.arange(3), "t": ["a", None, "c"]})
    assert tql.run(ds, f"SELECT * WHERE x@{empty} IS NULL").indices.tolist() == [0, 1, 2]
    assert tql.run(ds, f"SELECT * WHERE ROW_ADDED('{empty}') AND t@{empty} IS NULL").indices.tolist() == [0, 1, 2]
    res = tql.run(ds, f"SELECT x@{empty} AS a, t@{empty} AS b")
    assert _ints(res.columns["a"]) == [None] * 3 and list(res.columns["b"]) == [None] * 3
    full = ds.commit("three rows")
    assert tql.run(ds, f"SELECT * WHERE ROW_CHANGED('{full}') OR ROW_ADDED('{full}')").indices.tolist() == []
    assert tql.run(ds, "SELECT * WHERE x@main == x").indices.tolist() == [0, 1, 2]
    ds.t[1] = "now"  # uncommitted: x@main is the handle itself, t@<last commit> the old value
    assert tql.run(ds, f"SELECT * WHERE t@{full} IS NULL AND t@main == 'now'").indices.tolist() == [1]
    assert tql.run(ds, f"SELECT * WHERE ROW_CHANGED('{full}')").indices.tolist() == [1]


def test_errors_name_the_position(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "errs"), overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(3))
    v1 = ds.commit("x")
    ds.create_tensor("late", dtype="int64")
    ds.late.extend(np.arange(3))
    ds.commit("late")

    def err(text: str) -> tql.TQLError:
        with pytest.raises(tql.TQLError) as info:
            tql.run(ds, text)
        return info.value

    e = err("SELECT * WHERE x@nope > 1")
    assert "unknown version 'nope'" in e.message and (e.line, e.column) == (1, 16)
    e = err(f"SELECT * WHERE x > 0 AND late@{v1} > 1")
    assert "does not exist at version" in e.message and e.column == 26
    e = err(f"SELECT * WHERE x@{v1[:3]} > 1")
    assert "too short" in e.message and e.column == 16
    e = err("SELECT x AS y FROM (SELECT x * 2 AS d) WHERE d@main > 1")
    assert "computed by the sub-query" in e.message
    e = err("SELECT * WHERE ROW_ADDED(x)")
    assert "string" in e.message
    e = err("SELECT * WHERE ROW_CHANGED('main', 'nope')")
    assert "unknown tensor 'nope'" in e.message
    with pytest.raises(tql.TQLError):
        tql.explain(ds, "SELECT * WHERE x@nope > 1")  # explain plans, and so checks, too
    # an ambiguous prefix: two commits that share their first characters
    vc = VersionContext(ds)
    tree = VersionTree()
    tree.commits["abcdef01" + "0" * 32] = dict(tree.commits[next(iter(tree.commits))])
    tree.commits["abcdef02" + "0" * 32] = dict(tree.commits[next(iter(tree.commits))])
    vc._tree = tree
    with pytest.raises(tql.TQLError, match="ambiguous"):
        vc.resolve("abcdef0")
    assert vc.resolve("abcdef01") == "abcdef01" + "0" * 32


def test_groups_dotted_names_and_views(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "groups"), overwrite=True)
    ds.create_tensor("g/x", dtype="int64")
    ds.create_tensor("a.b", dtype="int64")
    ds.extend({"g/x": np.arange(4), "a.b": np.arange(4)})
    v1 = ds.commit("four")
    ds["g/x"][1] = 7
    ds["a.b"][2] = 9
    assert tql.run(ds["g"], f"SELECT * WHERE x@{v1} != x").indices.tolist() == [1]   # a group handle
    assert tql.run(ds, f"SELECT * WHERE g.x@{v1} != g.x").indices.tolist() == [1]
    assert tql.run(ds, f"SELECT * WHERE a.b@{v1} != a.b").indices.tolist() == [2]     # a tensor named with a dot
    assert tql.run(ds, f"SELECT * WHERE ROW_CHANGED('{v1}', 'a.b')").indices.tolist() == [2]
    assert tql.run(ds["g"], f"SELECT * WHERE ROW_CHANGED('{v1}')").indices.tolist() == [1]
    res = tql.run(ds[[3, 1, 2]], f"SELECT g.x@{v1} AS old WHERE ROW_CHANGED('{v1}')")  # rows of a view
    assert res.indices.tolist() == [1, 2] and _ints(res.columns["old"]) == [1, 2]
    sub = tql.run(ds, f"SELECT * FROM (SELECT * WHERE g.x > 0) WHERE g.x@{v1} < g.x ORDER BY g.x@{v1} DESC")
    assert sub.indices.tolist() == [1]
