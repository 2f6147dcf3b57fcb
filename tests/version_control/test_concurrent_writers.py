"""Writers never lose each other's work, on a local folder and on every emulated object store:
real processes racing for one branch's lock, writers on different branches creating branches
and committing side by side, two writable handles in one process, and a writer whose read
cache holds an old version tree."""
from __future__ import annotations

import gc
import multiprocessing as mp
import os

import numpy as np
import pytest

import lakeformat
from lakeformat.constants import FIRST_COMMIT_ID
from lakeformat.errors import LockedError, ReadOnlyError
from lakeformat.version_control.locks import lock_key, release_all

# rounds of the lock race per store: 12 in make test, more by hand (make test-long sets 40);
# the old non-atomic lock lost 6 rounds of 25
ROUNDS = int(os.environ.get("LAKEFORMAT_LOCK_RACE_ROUNDS", "12"))


def _ctx():
    """Processes forked from a server that imported the libraries once: each starts in a
    fraction of a spawn's time (the preload only takes if this session starts the server)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lakeformat", "numpy", "fsspec", "s3fs", "adlfs", "gcsfs"])
    return ctx


def _make(url: str, opts: dict | None) -> None:
    ds = lakeformat.empty(url, overwrite=True, creds=opts, lock=False)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(3))
    ds.commit("base")


def _contender(url: str, opts: dict | None, rounds: int, barrier, out) -> None:
    """Each round: open `main` for writing at the same moment as the others; report; the
    winner writes a sample and gives the lock back once every contender has reported."""
    for r in range(rounds):
        barrier.wait(120)
        ds = None
        try:
            ds = lakeformat.load(url, creds=opts)
            out.put((r, "won"))
        except LockedError as e:
            out.put((r, "main" in str(e) and "locked" in str(e)))
        barrier.wait(120)
        if ds is not None:
            ds.x.append(100 + r)
            ds.close()
        barrier.wait(120)


def _brancher(url: str, opts: dict | None, who: str, base: str, out) -> None:
    try:
        ds = lakeformat.load(url, creds=opts, lock=False)
        for j in range(2):
            ds.checkout(base)
            ds.checkout(f"{who}-{j}", create=True)
            ds.x.append(j + 10 * int(who[1:]))
            ds.commit(f"{who} {j}")
        ds.close()
        out.put((who, "ok"))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out.put((who, f"{type(e).__name__}: {e}"))


@pytest.fixture(params=["local", "s3", "azure", "gcs"])
def location(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "ds"), None
    return request.getfixturevalue({"s3": "s3_url", "azure": "az_url", "gcs": "gcs_url"}[request.param])


def test_processes_racing_for_one_branch_exactly_one_wins(location):
    url, opts = location
    _make(url, opts)
    ctx = _ctx()
    n = 3
    barrier, out = ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=_contender, args=(url, opts, ROUNDS, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        for r in range(ROUNDS):
            barrier.wait(180)
            got = [out.get(timeout=120) for _ in procs]
            assert all(rr == r for rr, _ in got)
            results = [res for _, res in got]
            assert results.count("won") == 1, f"round {r}: {results}"
            assert all(res is True for res in results if res != "won"), f"round {r}: LockedError must name the branch: {results}"
            barrier.wait(120)
            barrier.wait(120)
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    ds = lakeformat.load(url, creds=opts, read_only=True)
    # every winner's sample arrived, none twice
    assert ds.x.numpy().ravel().tolist() == [0, 1, 2] + [100 + r for r in range(ROUNDS)]
    assert not ds.storage.exists(lock_key("main"))  # every winner gave it back


def test_writers_on_different_branches_lose_no_branch_or_commit(location):
    url, opts = location
    _make(url, opts)
    base = lakeformat.load(url, creds=opts, read_only=True).commit_id
    ctx = _ctx()
    out = ctx.Queue()
    who = ["w1", "w2", "w3"]
    procs = [ctx.Process(target=_brancher, args=(url, opts, w, base, out)) for w in who]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(60)
    assert got == {w: "ok" for w in who}
    ds = lakeformat.load(url, creds=opts, read_only=True)
    want = {"main"} | {f"{w}-{j}" for w in who for j in range(2)}
    assert set(ds.branches) == want
    tree = ds.version_state.tree
    for w in who:
        for j in range(2):
            b = f"{w}-{j}"
            ds.checkout(b)
            assert ds.log()[0]["message"] == f"{w} {j}"
            assert ds.x.numpy().ravel().tolist() == [0, 1, 2, j + 10 * int(w[1:])]
            committed = tree.commits[tree.branches[b]]["parent"]
            old = lakeformat.load(url, creds=opts, read_only=True, version=committed)
            assert old.x.numpy().ravel().tolist() == [0, 1, 2, j + 10 * int(w[1:])]
    reach, stack = set(), [FIRST_COMMIT_ID]
    while stack:
        c = stack.pop()
        reach.add(c)
        stack += tree.commits[c]["children"]
    assert reach == set(tree.commits)


def test_stale_cached_tree_never_overwrites_another_writer(s3_url):
    """Writer A's read cache saw the tree before B made a branch and committed on it; A then
    rewrites the tree. B's branch and commits survive, and B commits again. (Two storage
    objects, each with its own cache, as two processes would have; the cache is the same
    class in front of every object store, and a local folder has none.)"""
    url, opts = s3_url
    _make(url, opts)
    a = lakeformat.load(url, creds=opts)
    a.checkout("a", create=True)  # A reads (and could cache) the tree
    a.log()
    b = lakeformat.load(url, creds=opts, lock=False)
    b.checkout("b1", create=True)
    b.x.append(7)
    first_b = b.commit("b one")
    a.x.append(5)
    a.commit("a one")  # a tree write from A's side
    a.checkout("a2", create=True)
    b.x.append(8)
    b.commit("b two")  # was: "branch 'b1' moved to None"
    fresh = lakeformat.load(url, creds=opts, read_only=True)
    assert set(fresh.branches) == {"main", "a", "a2", "b1"}
    fresh.checkout("b1")
    assert [e["message"] for e in fresh.log()][:2] == ["b two", "b one"]
    assert fresh.x.numpy().ravel().tolist() == [0, 1, 2, 7, 8]
    assert first_b in fresh.version_state.tree.commits
    fresh.checkout("a")
    assert fresh.x.numpy().ravel().tolist() == [0, 1, 2, 5]
    a.close()
    b.close()


def test_two_writable_handles_in_one_process(tmp_path):
    path = str(tmp_path / "ds")
    _make(path, None)
    one = lakeformat.load(path)
    two = lakeformat.load(path)  # the same branch: the same state, so no append is lost
    one.x.append(10)
    two.x.append(11)
    one.x.append(12)
    assert lakeformat.load(path, read_only=True).x.numpy().ravel().tolist() == [0, 1, 2, 10, 11, 12]
    # a handle of another state cannot take the branch while the first one lives
    other = lakeformat.load(path, lock=False)
    other.checkout("side", create=True)
    with pytest.raises(LockedError, match="another writable handle in this process") as e:
        other.checkout("main")
    assert "'main'" in str(e.value)
    assert other.branch == "side"  # the refused checkout left it where it was
    # readers are never refused
    assert len(lakeformat.load(path, read_only=True)) == 6
    # closing gives the lock back; the closed handle only reads from then on
    one.close()
    with pytest.raises(ReadOnlyError):
        one.x.append(1)
    assert not one.storage.exists(lock_key("main"))
    other.checkout("main")  # now free
    other.x.append(13)
    other.close()
    # a handle that is garbage collected gives its lock back as well
    third = lakeformat.load(path)
    third.x.append(14)
    del third
    gc.collect()
    fourth = lakeformat.load(path, lock=False)
    fourth.checkout("side")
    fourth.checkout("main")  # takes main's lock: free again
    assert fourth.x.numpy().ravel().tolist() == [0, 1, 2, 10, 11, 12, 13, 14]
    fourth.close()
    release_all()


def test_overwrite_demotes_the_replaced_datasets_handles(tmp_path):
    path = str(tmp_path / "ds")
    _make(path, None)
    old = lakeformat.load(path)
    new = lakeformat.empty(path, overwrite=True)
    new.create_tensor("y")
    with pytest.raises(ReadOnlyError):
        old.x.append(1)  # would have written into the new dataset
    assert list(lakeformat.load(path, read_only=True).tensors) == ["y"]
    new.close()
