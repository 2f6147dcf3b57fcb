"""commit, checkout, log, reset, delete_branch: the version-control verbs of a dataset.

Every verb that changes history writes the new version's files first and
version_control_info.json last, in one atomic write: a crash leaves the state before or the
state after, never one between.
"""
from __future__ import annotations

import getpass
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from lakeformat import constants as C
from lakeformat.core import keys
from lakeformat.errors import CheckoutError, CommitError, EmptyCommitError, VersionControlError
from lakeformat.version_control.objects import CommitDiff, DatasetDiff
from lakeformat.version_control.tree import VersionTree, new_commit_id

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset

logger = logging.getLogger(__name__)

_TREE_LOCK_KEY = C.VERSION_CONTROL_INFO_LOCK_FILENAME
_TREE_LOCK_WAIT_S = 30.0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


# ---- the tree on storage ------------------------------------------------------------------------
def _tree_locked(storage, fn):
    """Run fn() holding the short-lived lock of version_control_info.json."""
    import uuid

    me = uuid.uuid4().hex
    deadline = time.time() + _TREE_LOCK_WAIT_S
    while True:
        try:
            cur = json.loads(storage.get(_TREE_LOCK_KEY))
        except (KeyError, ValueError):
            cur = None
        if cur is None or cur.get("expires", 0) < time.time():
            storage.set(_TREE_LOCK_KEY, json.dumps({"owner": me, "expires": time.time() + 10}).encode())
            try:
                if json.loads(storage.get(_TREE_LOCK_KEY)).get("owner") == me:
                    break
            except (KeyError, ValueError):
                pass
        if time.time() > deadline:
            raise VersionControlError("version_control_info.json stayed locked by another writer")
        time.sleep(0.02)
    try:
        return fn()
    finally:
        try:
            storage.delete(_TREE_LOCK_KEY)
        except Exception:  # noqa: BLE001
            pass


def save_tree(ds: "Dataset") -> None:
    """Read-merge-write version_control_info.json so that a concurrent branch creation by
    another writer is never lost."""
    st = ds._state
    storage = st.storage

    def merge_and_write():
        try:
            stored = VersionTree.from_bytes(storage.get(keys.version_control_info_key()))
            st.vs.tree.merge_from(stored)
        except KeyError:
            pass
        storage.set(keys.version_control_info_key(), st.vs.tree.to_bytes())

    _tree_locked(storage, merge_and_write)


def refresh_tree(ds: "Dataset") -> None:
    try:
        stored = VersionTree.from_bytes(ds._state.storage.get(keys.version_control_info_key()))
        ds._state.vs.tree.merge_from(stored)
    except KeyError:
        pass


# ---- queries ------------------------------------------------------------------------------------------
def commit_id(ds: "Dataset") -> Optional[str]:
    """The last committed commit at or before the current state (None before any commit)."""
    vs = ds._state.vs
    if vs.is_head:
        return vs.tree.commits[vs.commit_id]["parent"]
    return vs.commit_id


def has_head_changes(ds: "Dataset") -> bool:
    st = ds._state
    if not st.vs.is_head:
        return False
    if st.meta_dirty or st.diff.dirty or st.diff.renamed or st.diff.deleted or st.diff.info_updated:
        return True
    for key in st.meta.tensors:
        eng = ds._engine(key)
        cd = eng.commit_diff
        if eng.is_dirty or cd.created or cd.num_samples_added or cd.data_updated or cd.data_deleted or cd.info_updated or cd.cleared:
            return True
    return False


def log(ds: "Dataset", print_out: bool = True) -> List[Dict[str, Any]]:
    """Commits from the current one back to the first: id, author, time, message, branch."""
    vs = ds._state.vs
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
    lines = [f"---------------\nLakeformat Version Log\n---------------\n\nCurrent Branch: {branch}"]
    for e in entries:
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["time"])) if e["time"] else "-"
        lines.append(f"Commit : {e['commit']} ({e['branch']})\nAuthor : {e['author']}\nTime   : {t}\nMessage: {e['message']}\n")
    return "\n".join(lines)


# ---- copying a version's metas ---------------------------------------------------------------------
def _version_files(ds: "Dataset", commit: str) -> List[str]:
    st = ds._state
    ks = [keys.dataset_meta_key(commit), keys.dataset_info_key(commit)]
    try:
        from lakeformat.core.meta import DatasetMeta

        meta = DatasetMeta.from_bytes(st.storage.get(keys.dataset_meta_key(commit)))
        tensors = meta.tensors
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


def copy_version_metas(ds: "Dataset", src: str, dst: str) -> None:
    """A new version starts as a copy of its parent's metas and encoders (not its chunks)."""
    st = ds._state
    src_keys = _version_files(ds, src)
    got = st.storage.get_many(src_keys, missing_ok=True)
    out: Dict[str, bytes] = {}
    prefix_src = "" if src == C.FIRST_COMMIT_ID else f"versions/{src}/"
    prefix_dst = f"versions/{dst}/"
    for k, v in got.items():
        if v is None:
            continue
        rel = k[len(prefix_src):]
        out[prefix_dst + rel] = v
    # fresh per-version diffs: nothing added yet, positions start at each tensor's length
    from lakeformat.core.meta import TensorMeta

    for k, v in list(out.items()):
        if k.endswith("/" + C.TENSOR_META_FILENAME):
            tkey = k[len(prefix_dst):-len("/" + C.TENSOR_META_FILENAME)]
            n = TensorMeta.from_bytes(v).length
            seq_key = keys.sequence_encoder_key(tkey, dst)
            if seq_key in out:
                from lakeformat.core.encoders import RangeEncoder

                n = RangeEncoder.from_bytes(out[seq_key]).num_samples
            out[keys.commit_diff_key(tkey, dst)] = CommitDiff(n).to_bytes()
    out[keys.dataset_diff_key(dst)] = DatasetDiff().to_bytes()
    st.storage.set_many(out)


# ---- verbs ----------------------------------------------------------------------------------------------
def commit(ds: "Dataset", message: Optional[str] = None, allow_empty: bool = False) -> str:
    """Snapshot the current branch head; returns the new commit's id."""
    ds._check_writable()
    if ds.is_view:
        raise CommitError("commit from the dataset, not a view")
    ds.flush()
    if not allow_empty and not has_head_changes(ds):
        raise EmptyCommitError("Nothing to commit: the head has no changes (pass allow_empty=True to commit anyway).")
    return _commit(ds, message)


def _commit(ds: "Dataset", message: Optional[str]) -> str:
    st = ds._state
    vs = st.vs
    cur = vs.commit_id
    branch = vs.branch
    refresh_tree(ds)
    new = new_commit_id()
    copy_version_metas(ds, cur, new)
    node = vs.tree.commits[cur]
    node.update({"commit_message": message, "commit_time": time.time(), "commit_user_name": _user()})
    st.storage.set(keys.commit_info_key(cur), json.dumps(node).encode())
    vs.tree.commits[new] = VersionTree._node(branch, cur)
    node["children"].append(new)
    vs.tree.branches[branch] = new
    save_tree(ds)  # the switch: before it the commit did not happen, after it it did
    vs.forget_chunk_sets()
    st.load_commit(new)
    return cur


def checkout(ds: "Dataset", address: str, create: bool = False) -> Optional[str]:
    """Move to a branch or commit; `create=True` makes branch `address` from the current state."""
    st = ds._state
    if not st.read_only and st.vs.is_head:
        ds.flush()
    refresh_tree(ds)
    tree = st.vs.tree
    from lakeformat.version_control.locks import acquire_branch_lock, release_branch_lock

    old_branch = st.vs.branch
    if create:
        if st.read_only:
            raise CheckoutError("cannot create a branch on a dataset opened read-only")
        if address in tree.branches:
            raise CheckoutError(f"Branch {address!r} already exists.")
        if not address or "/" in address or address.startswith("-"):
            raise CheckoutError(f"{address!r} is not a valid branch name")
        if st.vs.is_head:
            if has_head_changes(ds) or tree.commits[st.vs.commit_id]["parent"] is None:
                _commit(ds, f"auto-commit before checkout to {address}")
            base = tree.commits[st.vs.commit_id]["parent"]
        else:
            base = st.vs.commit_id
        new = new_commit_id()
        copy_version_metas(ds, base, new)
        tree.commits[new] = VersionTree._node(address, base)
        tree.commits[base]["children"].append(new)
        tree.branches[address] = new
        save_tree(ds)
        target, branch = new, address
    else:
        if address in tree.branches:
            target, branch = tree.branches[address], address
        else:
            target = tree.resolve(address)
            branch = tree.commits[target]["branch"] if tree.is_head(target) else None
    if old_branch != branch and old_branch is not None:
        release_branch_lock(st.storage, old_branch)
    st.vs.branch = branch
    st.vs.forget_chunk_sets()
    st.load_commit(target)
    if branch is not None and not st.read_only:
        acquire_branch_lock(ds)
    return target


def reset(ds: "Dataset") -> None:
    """Drop every uncommitted change of the current branch head."""
    ds._check_writable()
    st = ds._state
    cur = st.vs.commit_id
    parent = st.vs.tree.commits[cur]["parent"]
    st.engines.clear()
    if parent is None:
        for k in st.storage.list(""):
            if k.startswith("versions/") or k.startswith("locks/") or k in (keys.version_control_info_key(), keys.linked_creds_key()):
                continue
            st.storage.delete(k)
        st.load_commit(cur)
        st.meta_dirty = True
        ds.flush()
        return
    st.storage.delete_prefix(f"versions/{cur}/")
    copy_version_metas(ds, parent, cur)
    st.vs.forget_chunk_sets()
    st.load_commit(cur)


def delete_branch(ds: "Dataset", name: str) -> None:
    st = ds._state
    ds._check_writable()
    refresh_tree(ds)
    tree = st.vs.tree
    if name not in tree.branches:
        raise CheckoutError(f"Branch {name!r} does not exist.")
    if name == C.DEFAULT_BRANCH:
        raise VersionControlError("The main branch cannot be deleted.")
    if name == st.vs.branch:
        raise VersionControlError(f"Branch {name!r} is checked out; check out another branch first.")
    own = [c for c, n in tree.commits.items() if n["branch"] == name]
    for c in own:
        for ch in tree.commits[c]["children"]:
            if tree.commits[ch]["branch"] != name:
                raise VersionControlError(f"Branch {name!r} has branches made from it; delete those first.")
    for c in own:
        parent = tree.commits[c]["parent"]
        if parent in tree.commits and c in tree.commits[parent]["children"]:
            tree.commits[parent]["children"].remove(c)
    for c in own:
        tree.commits.pop(c, None)
    tree.branches.pop(name)
    storage = st.storage

    def write():
        try:
            stored = VersionTree.from_bytes(storage.get(keys.version_control_info_key()))
        except KeyError:
            stored = tree
        for c in own:
            stored.commits.pop(c, None)
        for n in stored.commits.values():
            n["children"] = [x for x in n["children"] if x not in own]
        stored.branches.pop(name, None)
        st.vs.tree = stored
        storage.set(keys.version_control_info_key(), stored.to_bytes())

    _tree_locked(storage, write)
    for c in own:
        storage.delete_prefix(f"versions/{c}/")
