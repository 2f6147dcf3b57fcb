"""`ds.merge`: bring another branch's (or commit's) changes into the current branch.

Samples are matched by their ids (each tensor's hidden `_<name>_id`), from the lowest common
ancestor of the two versions:

- a sample the target added is appended here, with its id;
- a sample the target updated is copied here, unless this branch changed it too;
- a sample the target popped is popped here, unless this branch changed it;
- the same sample changed on both sides (and not to the same value) is a conflict:
  ``conflict_resolution="ours"`` keeps this branch's, ``"theirs"`` takes the target's, and
  without a policy `MergeConflictError` lists the tensors and sample indices and nothing is
  written.

Tensors: the target's new tensors are added (their chunks are referenced, not copied: the
merge commit's chunk_set points at them, as deeplake's does); a tensor the target renamed is
renamed here; one the target deleted is deleted here only with ``delete_removed_tensors=True``;
``force=True`` lets a rename that clashes with this branch's register the target's tensor as a
new one.

Crash safety: the merge is built into a new version folder that no stored tree points at; the
one write of version_control_info.json that follows makes it the branch's merge commit (with a
fresh head under it). Killed before that write, the branch is as it was; after it, merged.
If the head held uncommitted changes they are committed first, in the same tree write.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from lakeformat.core import keys, nulls
from lakeformat.core.dataset import Dataset
from lakeformat.core.session import Session
from lakeformat.core.version_objects import ChunkSet, CommitDiff
from lakeformat.core.version_state import VersionState
from lakeformat.core.version_tree import VersionTree, load_tree, new_commit_id, update_tree
from lakeformat.errors import MergeConflictError, MergeError
from lakeformat.htypes import htype_of
from lakeformat.version_control import api
from lakeformat.version_control.diff import (
    _Versions,
    changed_ids,
    deleted_ids,
    id_tensor_key,
    path_to,
    visible_keys,
    commit_diff_at,
)
from lakeformat.version_control.locks import acquire_lock, release_lock

logger = logging.getLogger(__name__)

_BATCH = 1024  # samples read and written per step when copying


@dataclass
class _TensorPlan:
    name: str  # the name here, after renames
    key_ours: str
    key_theirs: str
    updates: List[Tuple[int, int]] = field(default_factory=list)  # (index here, index there)
    pops: List[int] = field(default_factory=list)  # indices here
    appends: List[int] = field(default_factory=list)  # indices there
    conflicts: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class _Plan:
    renames: List[Tuple[str, str]] = field(default_factory=list)
    delete_tensors: List[str] = field(default_factory=list)
    copy_tensors: List[Tuple[str, str]] = field(default_factory=list)  # (name there, key there)
    tensors: List[_TensorPlan] = field(default_factory=list)

    @property
    def conflicts(self) -> List[Dict[str, Any]]:
        return [c for t in self.tensors for c in t.conflicts]


# ---- values -----------------------------------------------------------------------------------------
def _read_values(ds: "Dataset", key: str, indices: List[int]) -> List[Any]:
    """Samples of tensor `key` at `ds`'s version, in a form its append takes back unchanged:
    compressed images as their stored bytes, class labels as their names."""
    from lakeformat.codecs import IMAGE_COMPRESSIONS
    from lakeformat.core.sample import Sample
    from lakeformat.core.tensor import Tensor

    if not indices:
        return []
    eng = ds.session.engine(key)
    meta = eng.meta
    items = np.asarray(indices, dtype=np.int64)
    sc = meta.sample_compression
    if sc in IMAGE_COMPRESSIONS and not meta.is_link and not meta.is_sequence and not any(int(i) in eng.tiles for i in items):
        datas, _ = eng.read_items_bytes(items)
        return [Sample(buffer=bytes(d), compression=sc) for d in datas]
    t = Tensor(meta.name, key, ds)
    vals = t[items.tolist()].values()
    if htype_of(meta.base_htype).label and not meta.is_sequence:
        names = list(eng.info.get("class_names", []) or [])
        if names:
            out = []
            for v in vals:
                arr = np.asarray(v).reshape(-1)
                out.append([names[int(i)] for i in arr])
            return out
    return list(vals)


def _comparable(v: Any) -> Any:
    from lakeformat.core.sample import Sample

    if isinstance(v, Sample):
        return ("sample", bytes(v.buffer))
    if isinstance(v, np.ndarray):
        return ("nd", v.shape, str(v.dtype), v.tobytes())
    try:
        return ("json", json.dumps(v, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return ("repr", repr(v))


def _same_sample(ours: "Dataset", key_o: str, i_o: int, theirs: "Dataset", key_t: str, i_t: int) -> bool:
    a = _read_values(ours, key_o, [i_o])[0]
    b = _read_values(theirs, key_t, [i_t])[0]
    return _comparable(a) == _comparable(b)


# ---- planning (reads only) --------------------------------------------------------------------------
def _has_changes_on(versions: _Versions, key: str, path: List[str]) -> bool:
    storage = versions.ds.session.storage
    return any((cd := commit_diff_at(storage, key, c)) is not None and cd.has_changes for c in path)


def _plan(versions: _Versions, head: str, target: str, lca: str, force: bool, delete_removed_tensors: bool) -> _Plan:
    tree = versions.ds.session.version_state.tree
    ours, theirs, base = versions.at(head), versions.at(target), versions.at(lca)
    ko, kt, kl = visible_keys(ours), visible_keys(theirs), visible_keys(base)
    path_o, path_t = path_to(tree, head, lca), path_to(tree, target, lca)
    plan = _Plan()
    names_o = {n: k for k, n in ko.items()}  # this branch's names, as the renames leave them
    as_new: Set[str] = set()  # keys there to add as new tensors
    for k, new in kt.items():
        if k not in kl or kl[k] == new:
            continue
        old = kl[k]  # the target renamed old -> new
        if k in ko:
            if ko[k] == new:
                continue
            if ko[k] != old:
                if not force:
                    raise MergeError(f"tensor {old!r} was renamed to {new!r} in the target and to {ko[k]!r} here; pass force=True to add {new!r} as a new tensor")
                as_new.add(k)
            elif new in names_o:
                if not force:
                    raise MergeError(f"tensor {old!r} was renamed to {new!r} in the target, but {new!r} exists here; pass force=True to merge the target's {new!r} into it")
            else:
                plan.renames.append((old, new))
                names_o[new] = names_o.pop(old)
        elif not force:
            raise MergeError(f"tensor {old!r} was renamed to {new!r} in the target but deleted here; pass force=True to add {new!r} as a new tensor")
        else:
            as_new.add(k)
    for k, name in kt.items():
        if name in names_o and k not in as_new:
            plan.tensors.append(_plan_tensor(versions, head, target, lca, name, names_o[name], k, path_o, path_t))
        elif k in as_new or k not in kl or k in ko:
            if name in names_o:
                raise MergeError(f"tensor {name!r} of the target cannot be added: a tensor of that name exists here")
            plan.copy_tensors.append((name, k))
        elif _has_changes_on(versions, k, path_t):
            plan.copy_tensors.append((name, k))  # deleted here, changed there: it comes back
    for k in kl:
        if k not in kt and k in ko and delete_removed_tensors:
            plan.delete_tensors.append(ko[k])
    for name, k in plan.copy_tensors:
        if k in ours.meta.tensors:
            raise MergeError(f"tensor {name!r} of the target has key {k!r}, which a different tensor uses here")
    return plan


def _plan_tensor(versions: _Versions, head: str, target: str, lca: str, name: str, key_o: str, key_t: str, path_o: List[str], path_t: List[str]) -> _TensorPlan:
    ours, theirs = versions.at(head), versions.at(target)
    mo, mt = ours.session.engine(key_o).meta, theirs.session.engine(key_t).meta
    for what in ("htype", "sample_compression", "chunk_compression"):
        a, b = getattr(mo, what, None), getattr(mt, what, None)
        if (a or None) != (b or None):
            raise MergeError(f"tensor {name!r}: {what} is {a!r} here and {b!r} in the target; they cannot be merged")
    tp = _TensorPlan(name, key_o, key_t)
    ids_o, ids_t = versions.ids(head, key_o), versions.ids(target, key_t)
    if ids_o is None or ids_t is None:
        raise MergeError(f"tensor {name!r} has no sample ids (created with create_id_tensor=False); it cannot be merged")
    ids_l = versions.ids(lca, key_o) if key_o == key_t else None
    ids_l = ids_l if ids_l is not None else np.zeros(0, np.uint64)
    changed_o = changed_ids(versions, key_o, path_o)
    changed_t = changed_ids(versions, key_t, path_t)
    gone_o = set(ids_l[~np.isin(ids_l, ids_o)].tolist()) | deleted_ids(versions, key_o, path_o)
    gone_t = set(ids_l[~np.isin(ids_l, ids_t)].tolist()) | deleted_ids(versions, key_t, path_t)
    pos_o = {int(v): i for i, v in enumerate(ids_o.tolist())}
    pos_t = {int(v): i for i, v in enumerate(ids_t.tolist())}
    # the target's samples missing here: new there, or popped here
    for i_t in np.nonzero(~np.isin(ids_t, ids_o))[0].tolist():
        sid = int(ids_t[i_t])
        if sid not in gone_o:
            tp.appends.append(i_t)
        elif sid in changed_t:
            tp.conflicts.append({"tensor": name, "index": None, "target_index": i_t, "kind": "popped here, updated in the target"})
    # updated there
    for sid in sorted(changed_t):
        i_o, i_t = pos_o.get(sid), pos_t.get(sid)
        if i_o is None or i_t is None:
            continue
        if sid in changed_o:
            if not _same_sample(ours, key_o, i_o, theirs, key_t, i_t):
                tp.conflicts.append({"tensor": name, "index": i_o, "target_index": i_t, "kind": "updated on both sides"})
        else:
            tp.updates.append((i_o, i_t))
    # popped there
    for sid in gone_t:
        i_o = pos_o.get(sid)
        if i_o is None:
            continue
        if sid in changed_o:
            tp.conflicts.append({"tensor": name, "index": i_o, "target_index": None, "kind": "updated here, popped in the target"})
        else:
            tp.pops.append(i_o)
    tp.updates.sort()
    return tp


def _conflict_error(plan: _Plan, target_label: str) -> MergeConflictError:
    by_tensor: Dict[str, List[int]] = {}
    popped_here: Dict[str, List[int]] = {}
    for c in plan.conflicts:
        if c["index"] is not None:
            by_tensor.setdefault(c["tensor"], []).append(c["index"])
        else:
            by_tensor.setdefault(c["tensor"], [])
            popped_here.setdefault(c["tensor"], []).append(c["target_index"])
    err = MergeConflictError({t: sorted(v) for t, v in by_tensor.items()})
    if popped_here:
        extra = "; ".join(f"{t}: samples {sorted(v)[:20]} of {target_label}" for t, v in popped_here.items())
        err.args = (err.args[0] + f" Popped here but updated in the target: {extra}.",)
    err.details = plan.conflicts  # type: ignore[attr-defined]
    return err


# ---- applying (into a new version folder) -------------------------------------------------------------
def _append_with_ids(wds: "Dataset", key: str, values: List[Any], ids: np.ndarray) -> None:
    st = wds.session
    values, null_rows = nulls.split(wds, key, values)  # nulls: placeholders + validity rows
    before = st.engine(key).num_samples
    b = st.serialize(key, values)
    hidden = st.hidden_batches(key, b)
    idk = id_tensor_key(wds, key)
    if idk is not None:
        hidden[idk] = st.serialize(idk, np.ascontiguousarray(ids, dtype=np.uint64).reshape(-1, 1))
    st.engine(key).extend(b)
    for hk, hb in hidden.items():
        st.engine(hk).extend(hb)
    nulls.apply_extend(wds, null_rows, before)


def _apply_tensor(wds: "Dataset", theirs: "Dataset", tp: _TensorPlan, policy: Optional[str], ids_t: np.ndarray) -> None:
    updates, pops, appends = list(tp.updates), list(tp.pops), list(tp.appends)
    if policy == "theirs":
        for c in tp.conflicts:
            if c["index"] is not None and c["target_index"] is not None:
                updates.append((c["index"], c["target_index"]))
            elif c["index"] is None:
                appends.append(c["target_index"])
            else:
                pops.append(c["index"])
    for s in range(0, len(updates), _BATCH):
        part = updates[s : s + _BATCH]
        vals = _read_values(theirs, tp.key_theirs, [j for _, j in part])
        wds.update_samples(tp.key_ours, [i for i, _ in part], vals)
    for i in sorted(set(pops), reverse=True):
        wds.pop_samples(tp.key_ours, i)
    appends.sort()
    for s in range(0, len(appends), _BATCH):
        part = appends[s : s + _BATCH]
        _append_with_ids(wds, tp.key_ours, _read_values(theirs, tp.key_theirs, part), ids_t[np.asarray(part, dtype=np.int64)])


def _copy_tensor(wds: "Dataset", theirs: "Dataset", name: str, key: str) -> None:
    """Add the target's tensor `key` (with its hidden tensors) by reference: its metas and
    encoders are copied into the merge version, its chunks pointed at from its chunk_set."""
    ours_st, theirs_st = wds.session, theirs.session
    storage = ours_st.storage
    src, dst = theirs_st.version_state.commit_id, ours_st.version_state.commit_id
    eng = theirs_st.engine(key)
    all_keys = [key] + [h for h in (eng.meta.links or {}) if h in theirs.meta.tensors]
    for k in all_keys:
        e = theirs_st.engine(k)
        files = [keys.tensor_meta_key, keys.tensor_info_key, keys.chunk_id_encoder_key, keys.tile_encoder_key, keys.sequence_encoder_key, keys.creds_encoder_key]
        got = storage.get_many([f(k, src) for f in files], missing_ok=True)
        out = {f(k, dst): v for f, v in zip(files, got.values()) if v is not None}
        cs = ChunkSet()
        for cname in e.chunk_ids.names():
            cid, tkey = theirs_st.version_state.chunk_location(k, cname)
            cs.add(cname, cid, tkey if tkey != k else None)
        out[keys.chunk_set_key(k, dst)] = cs.to_bytes()
        cd = CommitDiff(0, created=True)
        cd.add_data(e.num_samples)
        out[keys.commit_diff_key(k, dst)] = cd.to_bytes()
        storage.set_many(out)
        tname = name if k == key else next((n for n, kk in theirs.meta.tensor_names.items() if kk == k), k)
        ours_st.meta = ours_st.meta.with_tensor(tname, k, k != key)
        ours_st.forget_engine(k)
    wds.register_groups(name)
    ours_st.mark_meta_dirty()


def merge(ds: "Dataset", target_id: str, conflict_resolution: Optional[str] = None, delete_removed_tensors: bool = False, force: bool = False) -> Optional[str]:
    """Merge branch or commit `target_id` into the current branch; returns the merge commit's
    id, or None when there is nothing to merge.

    >>> ds.checkout("main"); ds.merge("alt", conflict_resolution="theirs")  # doctest: +SKIP
    """
    if conflict_resolution not in (None, "ours", "theirs"):
        raise MergeError(f"conflict_resolution must be None, 'ours' or 'theirs', not {conflict_resolution!r}")
    if ds.is_view:
        raise MergeError("merge into the dataset, not a view of it")
    ds.check_writable()
    st = ds.session
    vs = st.version_state
    storage = st.storage
    ds.flush()
    api.refresh_tree(ds)
    tree = vs.tree
    head, branch = vs.commit_id, vs.branch
    target = tree.resolve(target_id)
    target_branch = tree.node(target)["branch"]
    if target == head:
        raise MergeError(f"cannot merge branch {branch!r} into itself")
    target_pending = tree.is_head(target)
    if target_pending and not api.has_head_changes(api.dataset_at(ds, target)):
        target, target_pending = tree.node(target)["parent"], False
    lca = tree.lowest_common_ancestor(head, target)
    if lca == target:
        logger.info("nothing to merge: %s is already part of branch %s", target_id, branch)
        return None
    versions = _Versions(ds)
    plan = _plan(versions, head, target, lca, force, delete_removed_tensors)
    if plan.conflicts and conflict_resolution is None:
        raise _conflict_error(plan, str(target_id))
    if target_pending:
        # the target branch's uncommitted changes are committed first: merge commits point at
        # their chunks, which must never change again
        _commit_branch_head(ds, target_branch, f"auto commit before merging into {branch}")
        api.refresh_tree(ds)
        tree = vs.tree
    user = api.user_name()
    head_changed = api.has_head_changes(ds)
    parent = tree.node(head)["parent"]
    base = head if head_changed or parent is None else parent
    merge_id = new_commit_id()
    api.copy_version_metas(storage, base, merge_id)
    work_tree = tree.copy()
    if base == head:
        work_tree.stamp(work_tree.node(head), f"auto commit before merging {target_id}", user)
    else:
        work_tree.remove_node(head)
    work_tree.add_node(merge_id, branch, base)
    work_tree.branches[branch] = merge_id
    new_head = new_commit_id()
    try:
        wds = Dataset(Session(storage, VersionState(storage, work_tree, merge_id, branch), False, st.path))
        theirs = versions.at(target)
        with wds:
            for old, new in plan.renames:
                wds.rename_tensor(old, new)
            for name in plan.delete_tensors:
                wds.delete_tensor(name)
            for tp in plan.tensors:
                _apply_tensor(wds, theirs, tp, conflict_resolution, versions.ids(target, tp.key_theirs))
            for name, key in plan.copy_tensors:
                _copy_tensor(wds, theirs, name, key)
        wds.flush()
        api.copy_version_metas(storage, merge_id, new_head)
        message = f"Merge {target_id} into {branch}"

        def mutate(t: VersionTree) -> None:
            if t.branches.get(branch) != head:
                raise MergeError(f"branch {branch!r} moved under this writer; reopen the dataset")
            if base == head:
                t.stamp(t.node(head), f"auto commit before merging {target_id}", user)
            else:
                t.remove_node(head)
            t.add_node(merge_id, branch, base)
            t.stamp(t.node(merge_id), message, user)
            t.node(merge_id)["merge_parent"] = target
            t.add_node(new_head, branch, merge_id)
            t.branches[branch] = new_head

        vs.tree = update_tree(storage, mutate)
    except BaseException:
        api.drop_version_folder(storage, merge_id)
        api.drop_version_folder(storage, new_head)
        raise
    api.write_commit_infos(storage, vs.tree, [c for c in (head, merge_id, new_head) if c in vs.tree.commits])
    if base != head:
        api.drop_version_folder(storage, head)
    st.reload(new_head)
    return merge_id


def _commit_branch_head(ds: "Dataset", branch: str, message: str) -> str:
    """Commit the uncommitted changes at the head of another branch (taking its lock)."""
    st = ds.session
    storage = st.storage
    tree = load_tree(storage)
    took = acquire_lock(storage, branch)
    try:
        other = Dataset(Session(storage, VersionState(storage, tree, tree.branches[branch], branch), False, st.path))
        return api.commit_head(other, message)
    finally:
        if took:
            release_lock(storage, branch)
