"""commit, checkout, log, reset, delete_branch: the version-control verbs of a dataset.

Every verb that changes history writes the new version's files first, into a folder no
stored tree points at yet, and then rewrites version_control_info.json once (`update_tree`):
that single atomic write is the switch. A process killed before it leaves the state before
(plus an unreferenced `versions/<id>/` folder); killed after it, the state after.
"""
from __future__ import annotations

import getpass
import logging
import time
from typing import Any, Dict, Iterable, List, Optional

from lakeformat import constants as C
from lakeformat.core import checksums as CS
from lakeformat.core import keys
from lakeformat.core.dataset import Dataset
from lakeformat.core.meta import DatasetMeta
from lakeformat.core.session import Session
from lakeformat.core.version_objects import ChunkSet, DatasetDiff
from lakeformat.core.version_state import VersionState
from lakeformat.core.version_tree import VersionTree, new_commit_id, update_tree
from lakeformat.errors import CheckoutError, CommitError, EmptyCommitError, LockedError, ReadOnlyError, VersionControlError
from lakeformat.storage import StorageProvider

logger = logging.getLogger(__name__)


def user_name() -> str:
    """The name commits are stamped with: the OS user ("unknown" where there is none)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


# ---- the tree of an open dataset -------------------------------------------------------------
def save_tree(ds: "Dataset") -> None:
    """Write the in-memory tree, unioned into whatever is stored (dataset creation)."""
    ds.session.save_tree()


def refresh_tree(ds: "Dataset") -> None:
    """Pick up branches and commits other writers made since this dataset was opened."""
    vs = ds.session.version_state
    try:
        stored = VersionTree.from_bytes(ds.session.storage.get(keys.version_control_info_key()))
    except KeyError:
        return
    if vs.commit_id in stored.commits:
        vs.tree = stored


def write_commit_infos(storage, tree: VersionTree, ids: Iterable[str]) -> None:
    """commit_info.json of each version: its node, as deeplake writes it (a backup from which
    the tree can be rebuilt), with our checksum inside (`checksums.embed_checksum`)."""
    for cid in ids:
        if cid in tree.commits:
            storage.set(keys.commit_info_key(cid), CS.embed_checksum(tree.commits[cid]))


def dataset_at(ds: "Dataset", commit_id: str, tree: Optional[VersionTree] = None) -> "Dataset":
    """A read-only dataset object on the same storage at another version."""
    st = ds.session
    tree = tree or st.vs.tree
    branch = tree.node(commit_id)["branch"] if tree.is_head(commit_id) else None
    vs = VersionState(st.storage, tree, commit_id, branch)
    return Dataset(Session(st.storage, vs, True, st.path))


# ---- queries ----------------------------------------------------------------------------------------
def commit_id(ds: "Dataset") -> Optional[str]:
    """The last committed commit at or before the current state (None before any commit)."""
    vs = ds.session.version_state
    if vs.is_head:
        return vs.tree.node(vs.commit_id)["parent"]
    return vs.commit_id


def has_head_changes(ds: "Dataset") -> bool:
    """Whether the branch head holds changes not yet committed."""
    st = ds.session
    return st.version_state.is_head and st.has_changes


def log(ds: "Dataset", print_out: bool = False) -> List[Dict[str, Any]]:
    """Commits from the current one back to the first, newest first: commit id, author,
    time (a POSIX timestamp), message and branch."""
    vs = ds.session.version_state
    out = []
    for cid in vs.chain:
        node = vs.tree.commits[cid]
        if node["commit_time"] is None:
            continue
        out.append({
            "commit": cid,
            "author": node.get("commit_user_name"),
            "time": node.get("commit_time"),
            "message": node.get("commit_message"),
            "branch": node.get("branch"),
        })
    if print_out:
        print(format_log(out, vs.branch))
    return out


def format_log(entries: List[Dict[str, Any]], branch: Optional[str]) -> str:
    lines = [f"Current branch: {branch if branch is not None else '(detached: an old commit)'}", ""]
    if not entries:
        lines.append("No commits yet.")
    for e in entries:
        t = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(e["time"])) if e["time"] else "-"
        lines.append(f"commit  {e['commit']} ({e['branch']})\nAuthor: {e['author']}\nDate:   {t}\n\n    {e['message'] or ''}\n")
    return "\n".join(lines)


# ---- a new version's files --------------------------------------------------------------------------
def _version_files(storage, commit: str) -> List[str]:
    ks = [keys.dataset_meta_key(commit), keys.dataset_info_key(commit)]
    try:
        tensors = DatasetMeta.from_bytes(storage.get(keys.dataset_meta_key(commit))).tensors
    except KeyError:
        tensors = []
    for t in tensors:
        ks += [
            keys.tensor_meta_key(t, commit),
            keys.tensor_info_key(t, commit),
            keys.chunk_id_encoder_key(t, commit),
            keys.tile_encoder_key(t, commit),
            keys.sequence_encoder_key(t, commit),
            keys.creds_encoder_key(t, commit),
        ]
    return ks


def copy_version_metas(storage, src: str, dst: str) -> List[str]:
    """A new version starts as a copy of its parent's metas and encoders (never its chunks),
    with an empty chunk_set per tensor. Like deeplake, no commit_diff is written until the
    version changes something. Returns the tensor keys."""
    got = storage.get_many(_version_files(storage, src), missing_ok=True)
    prefix_src = "" if src == C.FIRST_COMMIT_ID else f"versions/{src}/"
    out: Dict[str, bytes] = {}
    for k, v in got.items():
        if v is not None:
            out[f"versions/{dst}/" + k[len(prefix_src):]] = v
    tensors: List[str] = []
    mk = keys.dataset_meta_key(dst)
    if mk in out:
        tensors = DatasetMeta.from_bytes(out[mk]).tensors
    for t in tensors:
        out[keys.chunk_set_key(t, dst)] = ChunkSet().to_bytes()
    # checksums of the copies: the new version is verifiable before its first flush
    out.update(CS.side_files_of_copy(out, tensors, dst))
    # the dataset meta last: a folder without it is no version at all
    meta = out.pop(mk, None)
    storage.set_many(out)
    if meta is not None:
        storage.set(mk, meta)
    return tensors


def _publish_version(storage, vs, mutate, new: str, infos: list) -> None:
    """Apply `mutate` to the stored version tree (one atomic write); if that fails, the
    version folder `new` prepared for it is dropped. Then write the commit infos of `infos`."""
    try:
        vs.tree = update_tree(storage, mutate)
    except BaseException:
        drop_version_folder(storage, new)
        raise
    write_commit_infos(storage, vs.tree, infos)


def drop_version_folder(storage: StorageProvider, commit: str) -> None:
    """Delete the folder of version `commit` (one no stored tree points at): best effort, a
    leftover folder is garbage, not damage. The first commit's files are never touched."""
    if commit != C.FIRST_COMMIT_ID:
        try:
            storage.delete_prefix(f"versions/{commit}/")
        except Exception as e:  # noqa: BLE001 - a leftover folder is garbage, not damage
            logger.warning("could not delete versions/%s/: %s", commit, e)


# ---- verbs ----------------------------------------------------------------------------------------------
def commit(ds: "Dataset", message: Optional[str] = None, allow_empty: bool = False) -> str:
    """Snapshot the current branch head; returns the new commit's id."""
    if ds.is_view:
        raise CommitError("commit from the dataset, not a view of it")
    ds.check_writable()
    ds.flush()
    if not allow_empty and not has_head_changes(ds):
        raise EmptyCommitError("Nothing to commit: the head has no changes (pass allow_empty=True to commit anyway).")
    return commit_head(ds, message)


def commit_head(ds: "Dataset", message: Optional[str]) -> str:
    """Stamp the (flushed) branch head of `ds` as a commit and move the handle onto a new
    head after it, even when the head holds no change; returns the stamped commit's id."""
    st = ds.session
    vs = st.vs
    storage = st.storage
    cur, branch = vs.commit_id, vs.branch
    new = new_commit_id()
    copy_version_metas(storage, cur, new)
    user, when = user_name(), time.time()

    def mutate(t: VersionTree) -> None:
        if t.branches.get(branch) != cur:
            raise CommitError(f"branch {branch!r} moved to {t.branches.get(branch)} under this writer; reopen the dataset")
        t.stamp(t.node(cur), message, user, when)
        t.add_node(new, branch, cur)
        t.branches[branch] = new

    _publish_version(storage, vs, mutate, new, [cur, new])
    st.reload(new)
    return cur


def _valid_branch_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and ":" not in name and not name.startswith(("-", ".")) and name.strip() == name


def checkout(ds: "Dataset", address: str, create: bool = False) -> Optional[str]:
    """Move to a branch or a commit; `create=True` makes branch `address` from the current
    state (committing the head first if it has changes). Returns the commit id of the new
    position (its last commit, for a branch head)."""
    from lakeformat.version_control.locks import acquire_lock, release_lock

    st = ds.session
    vs = st.vs
    storage = st.storage
    writable = not st.read_only
    if writable and vs.is_head:
        ds.flush()
    refresh_tree(ds)
    tree = vs.tree
    old_locked = vs.branch if (writable and vs.is_head) else None
    if create:
        if not writable:
            raise ReadOnlyError("cannot create a branch on a dataset opened read-only")
        if address in tree.branches:
            raise CheckoutError(f"Branch {address!r} already exists.")
        if address in tree.commits:
            raise CheckoutError(f"{address!r} is a commit id; pick another branch name.")
        if not _valid_branch_name(address):
            raise CheckoutError(f"{address!r} is not a valid branch name (no '/', '\\', ':', leading '-' or '.')")
        # The auto commit of the head (when it has changes) and the new branch are published
        # by one tree write: a crash leaves neither or both.
        auto: Optional[str] = None  # the current branch's next head, when the head is committed
        cur, cur_branch = vs.commit_id, vs.branch
        if vs.is_head:
            if has_head_changes(ds) or tree.node(cur)["parent"] is None:
                auto = new_commit_id()
                copy_version_metas(storage, cur, auto)
                base = cur
            else:
                base = tree.node(cur)["parent"]
        else:
            base = cur
        new = new_commit_id()
        copy_version_metas(storage, base, new)
        message, user, when = f"auto commit before checkout to {address}", user_name(), time.time()

        def mutate(t: VersionTree) -> None:
            if address in t.branches:
                raise CheckoutError(f"Branch {address!r} already exists.")
            if auto is not None:
                if t.branches.get(cur_branch) != cur:
                    raise CommitError(f"branch {cur_branch!r} moved to {t.branches.get(cur_branch)} under this writer; reopen the dataset")
                t.stamp(t.node(cur), message, user, when)
                t.add_node(auto, cur_branch, cur)
                t.branches[cur_branch] = auto
            t.add_node(new, address, base)
            t.branches[address] = new

        took = False
        try:
            took = acquire_lock(storage, address, owner=st)
            vs.tree = update_tree(storage, mutate)
        except BaseException:
            if took:
                release_lock(storage, address)
            drop_version_folder(storage, new)
            if auto is not None:
                drop_version_folder(storage, auto)
            raise
        write_commit_infos(storage, vs.tree, [cur, auto, new] if auto is not None else [new])
        target, branch = new, address
    else:
        if address in tree.branches:
            target, branch = tree.branches[address], address
        else:
            target = tree.resolve(address)
            branch = tree.node(target)["branch"] if tree.is_head(target) else None
        if writable and branch is not None and branch != old_locked:
            acquire_lock(storage, branch, owner=st)  # LockedError leaves us where we were
    if old_locked is not None and old_locked != branch:
        release_lock(storage, old_locked, owner=st)
    vs.branch = branch
    st.reload(target)
    return commit_id(ds)


def reset(ds: "Dataset") -> None:
    """Drop every uncommitted change of the current branch head."""
    ds.check_writable()
    st = ds.session
    vs = st.vs
    storage = st.storage
    refresh_tree(ds)
    cur, branch = vs.commit_id, vs.branch
    parent = vs.tree.node(cur)["parent"]
    for key in st.open_engines():
        st.forget_engine(key)
    if parent is None:
        # never committed: back to an empty dataset, published by one journaled flush (an
        # empty dataset meta, info and diff); the tensors' folders go once it is published
        old_tensors = list(st.meta.tensors)
        st.dropped = [f"{k}/" for k in old_tensors]
        st.schema_edited = True
        st.meta, st.meta_dirty = DatasetMeta(), True
        st.info, st.info_dirty = {}, True
        st.diff = DatasetDiff()
        st.diff.dirty = True
        ds.flush()
        st.reload(cur)
        return
    new = new_commit_id()
    copy_version_metas(storage, parent, new)

    def mutate(t: VersionTree) -> None:
        if t.branches.get(branch) != cur:
            raise VersionControlError(f"branch {branch!r} moved under this writer; reopen the dataset")
        t.remove_node(cur)
        t.add_node(new, branch, parent)
        t.branches[branch] = new

    _publish_version(storage, vs, mutate, new, [new])
    drop_version_folder(storage, cur)
    st.reload(new)


def _branch_commits(tree: VersionTree, name: str) -> List[str]:
    out = []
    c: Optional[str] = tree.branches[name]
    while c is not None and tree.node(c)["branch"] == name:
        out.append(c)
        c = tree.node(c)["parent"]
    return out


def _chunk_pointers_into(storage, tree: VersionTree, targets: set, skip: set) -> Optional[str]:
    """A commit outside `skip` whose chunk sets point at chunks of a commit in `targets`."""
    for cid in tree.commits:
        if cid in skip or cid == C.FIRST_COMMIT_ID:
            continue
        try:
            tensors = DatasetMeta.from_bytes(storage.get(keys.dataset_meta_key(cid))).tensors
        except KeyError:
            continue
        got = storage.get_many([keys.chunk_set_key(t, cid) for t in tensors], missing_ok=True)
        for raw in got.values():
            if raw and any(v.get("commit_id") in targets for v in ChunkSet.from_bytes(raw).chunks.values()):
                return cid
    return None


def delete_branch(ds: "Dataset", name: str) -> None:
    """Delete branch `name` and its commits. Refused for main, the checked-out branch, a
    branch with branches made from it, one merged elsewhere, or one a live writer holds."""
    from lakeformat.version_control.locks import is_locked_by_other, lock_key

    st = ds.session
    if st.read_only:
        raise ReadOnlyError("cannot delete a branch of a dataset opened read-only")
    storage = st.storage
    refresh_tree(ds)
    tree = st.vs.tree
    if name not in tree.branches:
        raise CheckoutError(f"Branch {name!r} does not exist.")
    if name == C.DEFAULT_BRANCH:
        raise VersionControlError("The main branch cannot be deleted.")
    if name == st.vs.branch or tree.node(st.vs.commit_id)["branch"] == name:
        raise VersionControlError(f"Branch {name!r} is checked out; check out another branch first.")
    own = _branch_commits(tree, name)
    own_set = set(own)
    for c in own:
        for ch in tree.node(c)["children"]:
            if ch not in own_set:
                raise VersionControlError(f"Branch {name!r} has branches made from it ({tree.node(ch)['branch']!r}); delete those first.")
    if st.vs.commit_id in own_set:
        raise VersionControlError(f"Branch {name!r} is checked out; check out another branch first.")
    user = _chunk_pointers_into(storage, tree, own_set, own_set)
    if user is not None:
        raise VersionControlError(f"Branch {name!r} was merged into {tree.node(user)['branch']!r}; it cannot be deleted.")
    holder = is_locked_by_other(storage, name)
    if holder:
        raise LockedError(f"Branch {name!r} is locked by a writer ({holder}); it cannot be deleted now.")
    head = tree.branches[name]

    def mutate(t: VersionTree) -> None:
        if t.branches.get(name) != head:
            raise VersionControlError(f"branch {name!r} changed while being deleted; try again")
        for c in own:
            t.remove_node(c)
        t.branches.pop(name)

    st.vs.tree = update_tree(storage, mutate)
    for c in own:
        drop_version_folder(storage, c)
    try:
        storage.delete(lock_key(name))
    except Exception:  # noqa: BLE001
        pass
