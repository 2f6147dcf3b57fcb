"""Write paths for the kill harness (tests/core/kill_harness.py): name -> (setup, run).

`setup(path)` builds the dataset a path starts from (in the test process, never killed);
`run(ds, ack)` does the writes and calls `ack()` after each flush or commit it completes.
A run must also complete when started again on what a killed run left (the harness reruns it),
so each guards what may already have happened (a branch made, a tensor renamed).

Run as a script, it runs one path on a dataset, SIGKILLing itself at write KILL_AT (0: never):
    python tests/core/kill_writer.py PATH SCENARIO KILL_AT PROGRESS_FILE
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Tuple

import numpy as np

import lakeformat

try:
    from tests.core.crash_writer import batch
except ImportError:  # run as a script from tests/core
    from crash_writer import batch  # type: ignore[no-redef]

N0 = 12  # samples in a template


def _tensors(ds: Any) -> None:
    # the htypes of crash_writer, with chunks small enough that a dozen samples span several
    ds.create_tensor("ints", dtype="int64", max_chunk_size=40)
    ds.create_tensor("vecs", dtype="float32", chunk_compression="lz4", max_chunk_size=60)
    ds.create_tensor("txt", htype="text", max_chunk_size=50)
    ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c"])
    ds.create_tensor("imgs", htype="image", sample_compression="png", max_chunk_size=400)


def _base(path: str, commit: bool) -> Any:
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    with ds:
        _tensors(ds)
        ds.extend(batch(0, N0 // 2))
    if commit:
        ds.commit("base")
    with ds:
        ds.extend(batch(N0 // 2, N0 - N0 // 2))
    return ds


def setup_plain(path: str) -> None:
    _base(path, commit=False)


def setup_sequences(path: str) -> None:
    """A sequence tensor (its sequence index and the meta are separate objects) beside a flat one."""
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    with ds:
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int32", max_chunk_size=40)
        ds.create_tensor("ints", dtype="int64", max_chunk_size=40)
        ds.extend({"seq": [np.arange(i % 4, dtype=np.int32) for i in range(6)], "ints": np.arange(6)})


def run_append_sequences(ds: Any, ack: Callable[[], None]) -> None:
    for _ in range(2):
        with ds:
            n = len(ds)
            ds.extend({"seq": [np.full(1 + i % 3, i, dtype=np.int32) for i in range(n, n + 3)], "ints": np.arange(n, n + 3)})
        ack()


def setup_committed(path: str) -> None:
    _base(path, commit=True)


def setup_branches(path: str) -> None:
    """main with a commit and flushed head changes; branch 'alt' with committed work."""
    ds = _base(path, commit=True)
    ds.commit("second")
    ds.checkout("alt", create=True)
    ds.ints[3] = -3
    ds.pop(10)
    ds.extend(batch(100, 2))
    ds.create_tensor("extra", dtype="float32")
    ds.extra.extend(np.arange(len(ds.ints), dtype=np.float32))
    ds.commit("alt work")
    ds.checkout("main")
    with ds:
        ds.ints[5] = -50
        ds.txt[6] = "changed"
        ds.pop(0)


# -- runs -------------------------------------------------------------------------------------------
def run_append(ds: Any, ack: Callable[[], None]) -> None:
    for _ in range(2):
        with ds:
            ds.extend(batch(len(ds), 2))
        ack()


def run_update(ds: Any, ack: Callable[[], None]) -> None:
    with ds:
        ds.ints[1] = -1
        ds.txt[1] = "replaced, and longer than before"
        ds.ints[N0 - 2] = -2  # a chunk of the current commit
    ack()
    with ds:
        ds.vecs[5] = np.full((7,), -5, np.float32)
        ds.imgs[7] = np.full((8, 8, 3), 250, np.uint8)
        ds.labels[2] = 0
        ds.txt[N0 - 1] = "x"
    ack()


def run_pop(ds: Any, ack: Callable[[], None]) -> None:
    with ds:
        ds.pop(3)
        ds.pop(0)
    ack()
    with ds:
        ds.pop(len(ds) - 1)
        ds.txt.pop(1)  # one tensor only
    ack()


def run_pop_autoflush(ds: Any, ack: Callable[[], None]) -> None:
    """A dataset's pop outside a `with` block: one flush of every tensor (it flushed tensor by
    tensor, and a kill between two left the row in some tensors only)."""
    ds.pop(3)
    ack()
    ds.pop(len(ds) - 1)
    ack()


def run_commit(ds: Any, ack: Callable[[], None]) -> None:
    with ds:
        ds.extend(batch(len(ds), 1))
        ds.ints[0] = 7
    ack()
    ds.commit("the commit")
    ack()


def run_checkout_create(ds: Any, ack: Callable[[], None]) -> None:
    # the head has flushed changes: the auto commit and the branch are one publication
    name = f"b{len(ds.branches)}"
    ds.checkout(name, create=True)
    ack()


def run_merge(ds: Any, ack: Callable[[], None]) -> None:
    from lakeformat.errors import LakeFormatError

    try:
        ds.merge("alt", conflict_resolution="theirs")
    except LakeFormatError:
        if ds.version_state.tree.commits[ds.version_state.tree.branches["main"]]["parent"] is None:
            raise
        return  # a rerun after the merge was published: nothing left to merge
    ack()


def run_reset(ds: Any, ack: Callable[[], None]) -> None:
    ds.reset()
    ack()


def run_delete_branch(ds: Any, ack: Callable[[], None]) -> None:
    if "alt" in ds.branches:
        ds.delete_branch("alt")
    ack()


def run_schema(ds: Any, ack: Callable[[], None]) -> None:
    with ds:
        if "fresh" not in ds.tensors:
            ds.create_tensor("fresh", htype="text")
            ds.fresh.extend([f"f{i}" for i in range(len(ds))])
    ack()
    if "txt" in ds.tensors:
        ds.rename_tensor("txt", "words")
    else:
        ds.rename_tensor("words", "txt")
    ack()
    if "vecs" in ds.tensors:
        ds.delete_tensor("vecs")
    ack()


SCENARIOS: Dict[str, Tuple[Callable[[str], None], Callable[[Any, Callable[[], None]], None]]] = {
    "append": (setup_plain, run_append),
    "append_after_commit": (setup_committed, run_append),
    "append_sequences": (setup_sequences, run_append_sequences),
    "update": (setup_plain, run_update),
    "update_after_commit": (setup_committed, run_update),
    "pop": (setup_plain, run_pop),
    "pop_after_commit": (setup_committed, run_pop),
    "pop_autoflush": (setup_plain, run_pop_autoflush),
    "commit": (setup_committed, run_commit),
    "checkout_create": (setup_branches, run_checkout_create),
    "merge": (setup_branches, run_merge),
    "reset": (setup_branches, run_reset),
    "reset_uncommitted": (setup_plain, run_reset),
    "delete_branch": (setup_branches, run_delete_branch),
    "schema": (setup_plain, run_schema),
    "schema_after_commit": (setup_committed, run_schema),
}


def main(path: str, scenario: str, kill_at: int, progress: str) -> None:
    from tests.core.kill_harness import install_kill_switch

    ds = lakeformat.load(path)
    install_kill_switch(kill_at)

    def ack() -> None:
        with open(progress, "a") as f:
            f.write("ack\n")

    SCENARIOS[scenario][1](ds, ack)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
