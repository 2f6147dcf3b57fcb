"""`TextBuffers` and `read_text_buffers`: text straight from the chunks into offsets + bytes,
equal to what `values()` reads (one str per value) on random unicode text with nulls and
empty strings, across chunk boundaries, chunk compressions, unflushed data, views and
datasets deeplake 3.9.52 wrote; `Tensor.to_arrow` over them."""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakeformat
from lakeformat.core.text_buffers import TextBuffers, read_text_buffers
from lakeformat.errors import CorruptDataError, LakeFormatError
from tests.interop.deeplake3 import run_deeplake3

ALPHABET = "ab \x00éßΣ😀\n"
values = st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=10), st.none()), max_size=60)


def random_texts(rng: np.random.Generator, n: int) -> List[Optional[str]]:
    chars = list("abcxyz ") + ["é", "ß", "Σ", "😀", "\x00", "\n"]
    out: List[Optional[str]] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.1:
            out.append(None)
        elif r < 0.15:
            out.append("")
        else:
            out.append("".join(rng.choice(chars, int(rng.integers(1, 30)))))
    return out


def check(tb: TextBuffers, want: List[Optional[str]]) -> None:
    assert len(tb) == len(want)
    assert tb.offsets.dtype == np.int64 and tb.data.dtype == np.uint8 and tb.offsets[0] == 0
    assert tb.objects().tolist() == want
    assert tb.null_mask().tolist() == [v is None for v in want]
    assert tb.null is None or tb.null.any()


@settings(max_examples=150, deadline=None)
@given(values, st.data())
def test_objects_take_round_trip(vals, data):
    tb = TextBuffers.from_objects(vals)
    check(tb, vals)
    pos = data.draw(st.lists(st.integers(0, max(len(vals) - 1, 0)), max_size=30)) if vals else []
    check(tb.take(np.asarray(pos, np.int64)), [vals[p] for p in pos])
    arr = tb.to_arrow()
    assert arr.type == pa.string() and arr.to_pylist() == vals
    arr.validate(full=True)


def test_take_and_from_objects_refuse_bad_input():
    tb = TextBuffers.from_objects(["a", "b"])
    with pytest.raises(IndexError):
        tb.take(np.array([2]))
    with pytest.raises(IndexError):
        tb.take(np.array([-1]))
    with pytest.raises(TypeError):
        TextBuffers.from_objects(["a", 3])
    bad = TextBuffers(np.array([0, 2], np.int64), np.frombuffer(b"\xff\xfe", np.uint8))
    with pytest.raises(CorruptDataError, match="not UTF-8"):
        bad.objects()


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_read_equals_values_across_chunks(tmp_path, compression, seed):
    rng = np.random.default_rng(seed)
    want = random_texts(rng, 700)
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("t", htype="text", chunk_compression=compression, max_chunk_size=2000)
    ds.t.extend(want[:500])
    ds.flush()
    ds.t.extend(want[500:])  # partly unflushed
    check(read_text_buffers(ds.t), want)
    assert len(ds.t.engine.chunk_ids.names()) > 3  # several chunks
    picks = rng.integers(0, len(want), 200)
    check(ds.t[picks.tolist()].text_buffers(), [want[p] for p in picks])  # unsorted, with repeats
    check(ds.t[100:650:3].text_buffers(), want[100:650:3])
    check(ds.t[5].text_buffers(), [want[5]])
    check(ds.t[[]].text_buffers(), [])
    ds.flush()
    again = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    check(again.t.text_buffers(), want)
    check(again[10:20].t.text_buffers(), want[10:20])
    arr = again.t.to_arrow()
    assert arr.to_pylist() == want and arr.null_count == sum(v is None for v in want)
    arr.validate(full=True)


def test_updated_and_popped_values(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("t", htype="text", max_chunk_size=200)
    want: List[Optional[str]] = [f"v{i}é" for i in range(60)]
    ds.t.extend(want)
    ds.t[3] = None
    ds.t[7] = "a much longer value than before " * 3
    ds.t.pop()
    want[3], want[7] = None, "a much longer value than before " * 3
    want.pop()
    check(ds.t.text_buffers(), want)
    assert ds.t.values() == want


def test_rare_layouts_read_through_values(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("t", htype="text", sample_compression="lz4")
    ds.t.extend(["a", None, "üb"])
    check(ds.t.text_buffers(), ["a", None, "üb"])
    ds.create_tensor("n", dtype="int64")
    with pytest.raises(LakeFormatError, match="not text"):
        ds.n.text_buffers()


def test_damaged_text_is_corrupt_data(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("t", htype="text")
    ds.t.extend(["abc", "déf"])
    ds.flush()
    (chunk,) = (tmp_path / "ds" / "t" / "chunks").iterdir()
    raw = bytearray(chunk.read_bytes())
    raw[-1] = 0xFF  # the last byte of "déf"
    chunk.write_bytes(bytes(raw))
    again = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    with pytest.raises(CorruptDataError, match="UTF-8"):
        again.t.text_buffers()


DL_WRITE = """
import deeplake
ds = deeplake.empty(INPUT["path"], overwrite=True)
ds.create_tensor("t", htype="text", max_chunk_size=1500)
ds.create_tensor("z", htype="text", chunk_compression="lz4", max_chunk_size=1500)
for name in ("t", "z"):
    ds[name].extend(INPUT["values"])
ds.commit("texts")
ds.t[2] = "changed é"
emit(None)
"""


def test_deeplake3_written_text(tmp_path):
    want = [v if v is not None else "" for v in random_texts(np.random.default_rng(5), 300)]
    path = str(tmp_path / "dl3")
    run_deeplake3(DL_WRITE, inputs={"path": path, "values": want})
    ds = lakeformat.load(path, read_only=True)
    changed = list(want)
    changed[2] = "changed é"
    check(ds.t.text_buffers(), changed)
    check(ds.z.text_buffers(), want)
    assert ds.t.values() == changed
    assert ds.z.to_arrow().to_pylist() == want
    check(ds[::7].t.text_buffers(), changed[::7])


# -- json: one parse for the whole column -----------------------------------------------------------
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(alphabet='ab,"\\[]{}:é😀\n', max_size=6))
json_docs = st.recursive(json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                             st.dictionaries(st.text(alphabet='k,"[{é', max_size=3), kids, max_size=3)),
                         max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(json_docs, max_size=25))
def test_json_values_equal_per_sample_reads(docs):
    from lakeformat.core.json_values import read_json_values

    ds = lakeformat.empty("memory://json-values", overwrite=True)
    ds.create_tensor("j", htype="json", max_chunk_size=400)
    ds.j.extend(docs)
    got = read_json_values(ds.j)
    assert got.dtype == object and got.shape == (len(docs),)
    assert got.tolist() == ds.j.values()
    if len(docs) > 2:
        assert read_json_values(ds.j[[2, 0, 2]]).tolist() == [ds.j.values()[k] for k in (2, 0, 2)]


def test_json_values_tagged_and_escaped(tmp_path):
    from lakeformat.core.json_values import read_json_values

    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("j", htype="json", chunk_compression="lz4")
    docs = [{"a": np.arange(3)}, {"_hub_custom_type": "bytes", "data": "x"}, None, [1, [2, {"b": b"hi"}]], {}, "s", {"$_hub_custom_type": 1}]
    ds.j.extend(docs)
    got = read_json_values(ds.j)
    want = ds.j.values()
    assert len(got) == len(want)
    for g, w in zip(got.tolist(), want):
        assert repr(g) == repr(w)
    assert np.array_equal(got[0]["a"], np.arange(3)) and got[1] == {"_hub_custom_type": "bytes", "data": "x"} and got[2] is None


def test_json_documents_that_do_not_balance_fall_back_to_the_per_sample_error(tmp_path):
    from lakeformat.core.json_values import read_json_values
    from lakeformat.core.text_codec import EncodedSamples

    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("j", htype="json")
    ds.j.extend([{"ok": 1}])
    # two damaged documents that would read as one array element together: "[1" and "2]"
    ds.j.extend(EncodedSamples(b"[12]", np.array([2, 2])))
    with pytest.raises(Exception) as per_sample:
        ds.j.values()
    with pytest.raises(type(per_sample.value)):
        read_json_values(ds.j)
    assert read_json_values(ds.j[:1]).tolist() == [{"ok": 1}]
