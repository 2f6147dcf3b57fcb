"""`ResetBranch`: a branch's new head follows another branch's last commit, in one write of
the version tree (the commit point); the other branch is dropped. Until that write, readers
of the branch see its previous state; a kill before it leaves an unreferenced version
folder (garbage), after it only folders of dropped heads to delete."""
from __future__ import annotations

from typing import TYPE_CHECKING

from lakeformat.core.version_tree import VersionTree, load_tree, new_commit_id, update_tree
from lakeformat.errors import CommitConflictError, VersionControlError
from lakeformat.version_control.api import copy_version_metas, drop_version_folder, write_commit_infos
from lakeformat.version_control.locks import acquire_lock, release_lock

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset
    from lakeformat.version_control.operations import ResetBranch


def reset_branch(ds: "Dataset", op: "ResetBranch", read_version: str) -> str:
    """Move `op.branch` to a new head whose parent is `op.source`'s last commit, and drop
    `op.source` (its head and the branch's old head hold no commit: their folders go). The
    log of `op.branch` then reads: the source's commits, then those it shared with the
    branch. Raises `CommitConflictError` when `op.branch` moved since `read_version`."""
    from lakeformat.version_control.operations import version_at_rest

    st = ds.session
    st.flush()
    storage = st.storage
    tree = load_tree(storage)
    for b in (op.branch, op.source):
        if b not in tree.branches:
            raise VersionControlError(f"no branch {b!r} in {st.path!r}")
    if op.branch == op.source:
        raise VersionControlError(f"cannot reset branch {op.branch!r} onto itself")
    source_head = tree.branches[op.source]
    staged_commit = tree.node(source_head)["parent"]
    if staged_commit is None:
        raise VersionControlError(f"branch {op.source!r} holds no commit to reset {op.branch!r} to")
    old_head = tree.branches[op.branch]
    if st.version_state.branch == op.source:
        release_lock(storage, op.source)  # the source is dropped: nobody writes it any more
    took = acquire_lock(storage, op.branch)  # LockedError when another writer holds the branch
    try:
        now = version_at_rest(storage, op.branch, old_head)
        if now != read_version:
            raise CommitConflictError(op.branch, read_version, now)
        new_head = new_commit_id()
        copy_version_metas(storage, staged_commit, new_head)

        def mutate(t: VersionTree) -> None:
            if t.branches.get(op.branch) != old_head:
                raise CommitConflictError(op.branch, read_version, f"head {t.branches.get(op.branch)}")
            t.add_node(new_head, op.branch, staged_commit)
            t.branches[op.branch] = new_head
            t.branches.pop(op.source, None)
            for pending in (old_head, source_head):
                if pending in t.commits and t.commits[pending]["commit_time"] is None:
                    t.remove_node(pending)

        try:
            tree = update_tree(storage, mutate)
        except BaseException:
            drop_version_folder(storage, new_head)
            raise
        write_commit_infos(storage, tree, [new_head])
        for pending in (old_head, source_head):
            drop_version_folder(storage, pending)
        storage.flush()
    finally:
        if took:
            release_lock(storage, op.branch)
    return version_at_rest(storage, op.branch, new_head)
