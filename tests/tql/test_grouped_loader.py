"""The loader over GROUP BY's grouped views and UNGROUP BY's item views
(lakeformat/integrations/torch/groups.py), and ItemView's View value: every batch checked
against references built from the generated data by hand, on random groups (varied sizes,
a group of one), with and without shuffle and workers."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
import torch

import lakeformat
from lakeformat import tql
from lakeformat.integrations.torch import GroupLoader, LoaderError, dataloader
from lakeformat.tql import GroupedView, ItemView

CLASSES = ["a", "b", "c"]
SEEDS = list(range(int(os.environ.get("LF_GROUPED_LOADER_SEEDS", "3"))))  # 20 when run by hand before a change lands


def make(seed: int, n: int = 37) -> Tuple[Any, Dict[str, List[Any]]]:
    rng = np.random.default_rng(seed)
    k = [int(x) for x in rng.integers(0, 6, n)]
    k[-1] = 99  # a group of one
    data: Dict[str, List[Any]] = {
        "k": k,
        "x": [rng.normal(size=3).astype(np.float32) for _ in range(n)],
        "r": [rng.normal(size=int(rng.integers(1, 4))).astype(np.float32) for _ in range(n)],
        "lab": [int(rng.integers(0, 3)) for _ in range(n)],
        "t": [f"row{i}-é" for i in range(n)],
        "seq": [[rng.integers(0, 50, int(rng.integers(1, 3))).astype(np.int32) for _ in range(int(rng.integers(1, 4)))] for _ in range(n)],
    }
    ds = lakeformat.empty(f"memory://grouped-loader-{seed}", overwrite=True)
    with ds:
        ds.create_tensor("k", dtype="int64")
        ds.create_tensor("x", dtype="float32")
        ds.create_tensor("r", dtype="float32")
        ds.create_tensor("lab", htype="class_label", class_names=CLASSES)
        ds.create_tensor("t", htype="text")
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int32")
        ds.extend({"k": np.array(k, np.int64), "x": data["x"], "r": data["r"], "lab": np.array(data["lab"], np.uint32),
                   "t": data["t"], "seq": data["seq"]})
    ds.commit("data")
    return ds, data


def members(v: Any) -> List[np.ndarray]:
    """A collated group value as the list of its members' arrays (stacked or listed)."""
    if isinstance(v, (torch.Tensor, np.ndarray)):
        return [np.asarray(v[j]) for j in range(len(v))]
    return [np.asarray(m) for m in v]


def row_seq(data: Dict[str, List[Any]], r: int) -> Any:
    items = data["seq"][r]
    return np.stack(items) if len({a.shape for a in items}) == 1 else items


def check_group_batch(batch: Dict[str, Any], gv: GroupedView, data: Dict[str, List[Any]], names: List[str]) -> List[int]:
    idx = [int(i) for i in batch["index"]]
    assert set(batch) == set(names) | {"index"}
    for i, g in enumerate(idx):
        rows = gv.groups[g].tolist()
        assert rows and len({data["k"][r] for r in rows}) == 1
        if "k" in names:
            assert np.asarray(members(batch["k"][i])).reshape(-1).tolist() == [data["k"][r] for r in rows]  # (1,)-shaped samples, as ds.k reads
        if "x" in names:
            x = batch["x"][i]
            assert tuple(x.shape) == (len(rows), 3)
            np.testing.assert_array_equal(np.asarray(x), np.stack([data["x"][r] for r in rows]))
        if "r" in names:
            got = members(batch["r"][i])
            assert len(got) == len(rows)
            for a, r in zip(got, rows):
                np.testing.assert_array_equal(a, data["r"][r])
        if "lab" in names:
            lab = batch["lab"][i]
            assert lab.dtype == torch.int64 and lab.tolist() == [data["lab"][r] for r in rows]
        if "t" in names:
            assert batch["t"][i] == [data["t"][r] for r in rows]
        if "seq" in names:
            got_seq = batch["seq"][i]
            assert len(got_seq) == len(rows)
            for s, r in zip(got_seq, rows):
                want = row_seq(data, r)
                if isinstance(want, np.ndarray):
                    np.testing.assert_array_equal(np.asarray(s), want)
                else:
                    assert [np.asarray(a).tolist() for a in s] == [a.tolist() for a in want]
    return idx


@pytest.fixture(params=SEEDS)
def grouped(request: Any) -> Tuple[Any, GroupedView, Dict[str, List[Any]]]:
    ds, data = make(request.param)
    gv = tql.run(ds, "SELECT * GROUP BY k").view
    assert isinstance(gv, GroupedView)
    sizes = gv.group_sizes.tolist()
    assert 1 in sizes and len(set(sizes)) > 1 and sorted(r for g in gv.groups for r in g.tolist()) == list(range(len(data["k"])))
    return ds, gv, data


@pytest.mark.parametrize("workers", [0, 2])
def test_grouped_batches_match_the_data(grouped: Any, workers: int) -> None:
    ds, gv, data = grouped
    names = ["k", "x", "r", "lab", "t", "seq"]
    loader = dataloader(gv).batch(3).pytorch(num_workers=workers, return_index=True)
    assert isinstance(loader, GroupLoader)
    seen: List[int] = []
    batches = 0
    for batch in loader:
        seen += check_group_batch(batch, gv, data, [n for n in names if n != "k"] + ["k"])
        batches += 1
    assert sorted(seen) == list(range(len(gv)))
    assert batches == len(loader)
    if workers == 0:
        assert seen == list(range(len(gv)))  # no shuffle: view order


def test_equal_groups_stack_into_one_tensor() -> None:
    ds, data = make(5)
    gv = tql.run(ds, "SELECT * GROUP BY k").view
    same = [g for g in range(len(gv)) if gv.group_sizes[g] == 1]
    sub = gv[same]
    (batch,) = list(dataloader(sub).batch(len(same)).pytorch(tensors=["x", "lab"]))
    assert isinstance(batch["x"], torch.Tensor) and tuple(batch["x"].shape) == (len(same), 1, 3)
    want = np.stack([np.stack([data["x"][r] for r in sub.groups[i].tolist()]) for i in range(len(same))])
    np.testing.assert_array_equal(batch["x"].numpy(), want)
    assert batch["lab"].tolist() == [[data["lab"][int(sub.groups[i][0])]] for i in range(len(same))]


@pytest.mark.parametrize("workers", [0, 2])
def test_grouped_shuffle_is_seeded(grouped: Any, workers: int) -> None:
    ds, gv, data = grouped

    def order(seed: int) -> List[int]:
        out: List[int] = []
        for b in dataloader(gv).batch(2).shuffle(True, seed=seed).pytorch(num_workers=workers, return_index=True, tensors=["x", "t"]):
            out += check_group_batch(b, gv, data, ["x", "t"])
        return out

    a, b, c = order(3), order(3), order(4)
    assert a == b and sorted(a) == list(range(len(gv)))
    assert a != c and sorted(c) == sorted(a)
    loader = dataloader(gv).batch(2).shuffle(True, seed=3).pytorch(num_workers=workers, return_index=True, tensors=["x"])
    e0 = [int(i) for bt in loader for i in bt["index"]]
    e1 = [int(i) for bt in loader for i in bt["index"]]  # the next epoch: another order
    assert e0 == a and e1 != e0 and sorted(e1) == sorted(e0)


def test_grouped_transforms_tensors_and_drop_last(grouped: Any) -> None:
    ds, gv, data = grouped
    loader = dataloader(gv).transform({"x": lambda v: v * 2}).batch(4, drop_last=True).pytorch(tensors=["x"], return_index=True)
    n = 0
    for b in loader:
        assert set(b) == {"x", "index"} and len(b["index"]) == 4
        for i, g in enumerate(b["index"].tolist()):
            np.testing.assert_array_equal(np.asarray(b["x"][i]), 2 * np.stack([data["x"][r] for r in gv.groups[g].tolist()]))
        n += 1
    assert n == len(gv) // 4 == len(loader)

    def size(sample: Dict[str, Any], extra: int) -> Dict[str, Any]:
        return {"n": len(sample["t"]) + extra}

    got = [int(v) for b in dataloader(gv).transform(size, extra=10).batch(5).pytorch(tensors=["t"]) for v in b["n"]]
    assert got == [int(s) + 10 for s in gv.group_sizes]


def test_grouped_rank_shards_cover_the_groups_once(grouped: Any) -> None:
    ds, gv, data = grouped
    shards = []
    for rank in range(3):
        loader = dataloader(gv).shuffle(True, seed=7).batch(2).pytorch(tensors=["x"], return_index=True)
        loader.rank, loader.world_size = rank, 3  # what distributed=True reads from torch.distributed
        got: List[int] = []
        for b in loader:
            got += check_group_batch(b, gv, data, ["x"])
        shards.append(got)
    assert sorted(sum(shards, [])) == list(range(len(gv)))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_pytorch_method_and_errors(grouped: Any) -> None:
    ds, gv, data = grouped
    loader = gv.pytorch(batch_size=2, num_workers=0, tensors=["lab"])  # ds.pytorch's arguments (return_index=True)
    seen = [i for b in loader for i in check_group_batch(b, gv, data, ["lab"])]
    assert seen == list(range(len(gv)))
    with pytest.raises(LoaderError, match="decode_method"):
        dataloader(gv).pytorch(decode_method={"x": "tobytes"})
    with pytest.raises(LoaderError, match="nope"):
        dataloader(gv).pytorch(tensors=["nope"])
    with pytest.raises(LoaderError, match="transform for tensors not loaded"):
        dataloader(gv).transform({"t": str}).pytorch(tensors=["x"])


# -- UNGROUP BY ------------------------------------------------------------------------------------
def item_reference(data: Dict[str, List[Any]]) -> List[Tuple[int, int]]:
    return [(r, j) for r in range(len(data["seq"])) for j in range(len(data["seq"][r]))]


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("workers", [0, 2])
def test_item_batches_match_the_data(seed: int, workers: int) -> None:
    ds, data = make(seed)
    iv = tql.run(ds, "SELECT * UNGROUP BY seq").view
    assert isinstance(iv, ItemView)
    ref = item_reference(data)
    assert list(zip(iv.rows.tolist(), iv.items.tolist())) == ref

    def run(shuffle_seed: Any, tensors: Any = None) -> List[int]:
        b0 = dataloader(iv).batch(4)
        if shuffle_seed is not None:
            b0 = b0.shuffle(True, seed=shuffle_seed)
        out: List[int] = []
        for b in b0.pytorch(num_workers=workers, return_index=True, tensors=tensors):
            assert set(b) == set(tensors or ["k", "x", "r", "lab", "t", "seq"]) | {"index"}
            for i, k in enumerate(b["index"].tolist()):
                r, j = ref[k]
                np.testing.assert_array_equal(np.asarray(b["seq"][i]), data["seq"][r][j])
                if tensors is None:
                    np.testing.assert_array_equal(np.asarray(b["x"][i]), data["x"][r])
                    np.testing.assert_array_equal(np.asarray(b["r"][i]), data["r"][r])
                    assert int(b["lab"][i]) == data["lab"][r] and b["t"][i] == data["t"][r] and int(b["k"][i]) == data["k"][r]
            out += b["index"].tolist()
        return out

    plain = run(None)
    assert sorted(plain) == list(range(len(ref)))
    if workers == 0:
        assert plain == list(range(len(ref)))
    a, b, c = run(5, ["seq"]), run(5, ["seq"]), run(6, ["seq"])
    assert a == b and a != c and sorted(a) == sorted(c) == list(range(len(ref)))


def test_item_view_value_round_trips() -> None:
    ds, data = make(3)
    text = "SELECT x, seq UNGROUP BY seq"
    iv = tql.run(ds, text).view
    v = iv.view
    assert v.query == text and v.commit_id == ds.commit_id and v.tensors == ("x", "seq") and len(v) == len(iv)
    assert v.row_indices().tolist() == iv.rows.tolist()
    d = json.loads(json.dumps(iv.to_dict()))
    back = ItemView.from_dict(d, ds)
    assert back.query_text == text and sorted(back.tensors) == ["seq", "x"] and back.items.tolist() == iv.items.tolist()
    ref = item_reference(data)
    for got, (r, j) in zip(back["seq"].numpy(aslist=True), ref):
        np.testing.assert_array_equal(got, data["seq"][r][j])
    np.testing.assert_array_equal(back["x"].numpy(), np.stack([data["x"][r] for r, _ in ref]))
    assert back.view.to_dict() == v.to_dict()
    sub = tql.run(back, "SELECT * WHERE x[0] > 0").view  # queried again after the round trip
    assert len(sub) == sum(1 for r, _ in ref if data["x"][r][0] > 0)
    with pytest.raises(lakeformat.errors.LakeFormatError, match="item"):
        ItemView.from_dict({**d, "items": d["items"][:-1]}, ds)


@pytest.mark.parametrize("workers", [0, 2])
def test_grouped_resume_mid_epoch(grouped: Any, workers: int) -> None:
    ds, gv, data = grouped

    def make_loader() -> Any:
        return dataloader(gv).batch(2).shuffle(True, seed=9).pytorch(num_workers=workers, tensors=["x"], return_index=True)

    full = [b["index"].tolist() for b in make_loader()]
    loader = make_loader()
    head = []
    for b in loader:
        head.append(b["index"].tolist())
        if len(head) == 3:
            break
    state = json.loads(json.dumps(loader.state_dict()))
    again = make_loader()
    again.load_state_dict(state)
    rest = [b["index"].tolist() for b in again]
    assert sorted(sum(head + rest, [])) == list(range(len(gv)))  # every group once: none repeated, none lost
    assert head == full[:3]
    if workers == 0:
        assert rest == full[3:]  # with workers, each resumes its own slice (the interleaving may differ)
    other = dataloader(gv).batch(2).pytorch(num_workers=workers, tensors=["x"])
    with pytest.raises(LoaderError, match="shuffle"):
        other.load_state_dict(state)


def test_transform_errors_raise_or_skip(grouped: Any) -> None:
    ds, gv, data = grouped
    one = [g for g in range(len(gv)) if gv.group_sizes[g] == 1]

    def fails_on_one(sample: Dict[str, Any]) -> Dict[str, Any]:
        if len(sample["x"]) == 1:
            raise ValueError("a group of one")
        return sample

    with pytest.raises(lakeformat.integrations.torch.SampleLoadError, match="a group of one") as err:
        list(dataloader(gv).transform(fails_on_one).pytorch(tensors=["x"]))
    assert err.value.index == one[0]
    loader = dataloader(gv).transform(fails_on_one).batch(4).pytorch(tensors=["x"], return_index=True, ignore_errors=True)
    seen = [i for b in loader for i in b["index"].tolist()]
    assert seen == [g for g in range(len(gv)) if g not in one] and loader.skipped == len(one)
