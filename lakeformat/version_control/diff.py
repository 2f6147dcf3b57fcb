"""`ds.diff`: what changed between two versions, each side from their lowest common ancestor.

Changes are found by sample id (every tensor's hidden `_<name>_id`): a sample is *added* on a
side if its id is not at the ancestor, *deleted* if the ancestor's id is gone, *updated* if a
commit on the side's path lists it in its `commit_diff` (mapped to an id at that commit).
Tensors are matched by key, so a rename is a rename and not a delete plus a create.

The dict form (``as_dict=True``), stable for code::

    {"base": <ancestor commit id or None>,
     "sides": [<side of id_1>, <side of id_2>]}

    side = {"id": <commit id>, "commits": [<ids from it back to the ancestor, exclusive>],
            "info_updated": bool,
            "tensors_created": [names], "tensors_deleted": [names],
            "tensors_renamed": {old name: new name},
            "tensors": {name: {"created": bool, "info_updated": bool,
                               "added": [indices at the side], "updated": [indices at the side],
                               "deleted": [indices at the ancestor]}}}
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set

import numpy as np

from lakeformat.core import keys
from lakeformat.errors import CorruptDataError
from lakeformat.core.version_objects import CommitDiff, DatasetDiff

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset


# ---- helpers shared with merge ----------------------------------------------------------------
def id_tensor_key(ds: "Dataset", key: str) -> Optional[str]:
    """The key of tensor `key`'s hidden sample-id tensor at `ds`'s version, if it has one."""
    eng = ds.session.engine(key)
    for hkey, link in (eng.meta.links or {}).items():
        if link.get("extend") == "extend_id" and hkey in ds.meta.tensors:
            return hkey
    return None


def sample_ids(ds: "Dataset", key: str) -> Optional[np.ndarray]:
    """Sample ids of tensor `key` at `ds`'s version (uint64, one per sample), or None."""
    hkey = id_tensor_key(ds, key)
    if hkey is None:
        return None
    from lakeformat.core.tensor import Tensor

    eng = ds.session.engine(hkey)
    n = eng.num_samples
    if n == 0:
        return np.zeros(0, np.uint64)
    fast = _ids_from_chunks(eng, n)
    if fast is not None:
        return fast
    t = Tensor(hkey, hkey, ds)
    return np.asarray(t.numpy()).reshape(n, -1)[:, 0].astype(np.uint64)


def _ids_from_chunks(eng, n: int) -> Optional[np.ndarray]:
    """Ids straight from the chunks' bytes (8 raw bytes a sample, in chunk order): a full
    read of a million ids without any per-sample work."""
    m = eng.meta
    if m.sample_compression or m.is_sequence or eng.tiles.entries or np.dtype(m.dtype or "uint64") != np.uint64:
        return None
    names = eng.chunk_ids.names()
    first = eng.chunk_ids.first_indices()
    last = eng.chunk_ids.rows[:, 1].astype(np.int64)
    chunks = eng.get_chunks(names)
    parts = []
    for r, name in enumerate(names):
        want = int(min(last[r], n - 1) - first[r] + 1)
        if want <= 0:
            break
        c = chunks[name]
        if c.num_samples < want or len(c.data) < 8 * c.num_samples:
            return None
        parts.append(np.frombuffer(c.data, dtype=np.uint8, count=8 * want).view(np.uint64))
    out = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    return out if len(out) == n else None


def commit_diff_at(storage, key: str, commit_id: str) -> Optional[CommitDiff]:
    try:
        raw = storage.get(keys.commit_diff_key(key, commit_id))
    except KeyError:
        return None
    try:
        return CommitDiff.from_bytes(raw, keys.commit_diff_key(key, commit_id))
    except CorruptDataError:
        return None


def dataset_diff_at(storage, commit_id: str) -> DatasetDiff:
    try:
        return DatasetDiff.from_bytes(storage.get(keys.dataset_diff_key(commit_id)))
    except KeyError:
        return DatasetDiff()


def path_to(tree, commit_id: str, ancestor: Optional[str]) -> List[str]:
    """The versions `commit_id` contains and `ancestor` does not (its own parent chain first,
    then what merges brought in), newest first."""
    mine = tree.ancestors(commit_id)
    if ancestor is not None:
        theirs = tree.ancestors(ancestor)
        mine = {c: d for c, d in mine.items() if c not in theirs}
    first = [c for c in tree.chain(commit_id) if c in mine]
    rest = sorted((c for c in mine if c not in set(first)), key=lambda c: mine[c])
    return first + rest


def visible_keys(ds: "Dataset") -> Dict[str, str]:
    """tensor key -> name, for the visible tensors of `ds`'s version."""
    hidden = set(ds.meta.hidden_tensors)
    return {k: n for n, k in ds.meta.tensor_names.items() if k not in hidden}


class _Versions:
    """Read-only dataset objects at any version of one dataset, made once each."""

    def __init__(self, ds: "Dataset"):
        from lakeformat.version_control.api import dataset_at

        self.ds = ds
        self._at = dataset_at
        self.cache: Dict[str, "Dataset"] = {}
        self.ids_cache: Dict[tuple, Optional[np.ndarray]] = {}

    def at(self, commit_id: str) -> "Dataset":
        d = self.cache.get(commit_id)
        if d is None:
            d = self._at(self.ds, commit_id)
            self.cache[commit_id] = d
        return d

    def ids(self, commit_id: str, key: str) -> Optional[np.ndarray]:
        k = (commit_id, key)
        if k not in self.ids_cache:
            d = self.at(commit_id)
            self.ids_cache[k] = sample_ids(d, key) if key in d.meta.tensors else None
        return self.ids_cache[k]


def changed_ids(versions: _Versions, key: str, path: Sequence[str]) -> Set[int]:
    """Ids of samples of tensor `key` updated by any version on `path`."""
    out: Set[int] = set()
    storage = versions.ds.session.storage
    for c in path:
        cd = commit_diff_at(storage, key, c)
        if cd is None or not cd.data_updated:
            continue
        ids = versions.ids(c, key)
        if ids is None:
            continue
        idx = np.fromiter((i for i in cd.data_updated if i < len(ids)), dtype=np.int64)
        out.update(int(x) for x in ids[idx])
    return out


def deleted_ids(versions: _Versions, key: str, path: Sequence[str]) -> Set[int]:
    """Ids of samples of tensor `key` popped by any version on `path`."""
    out: Set[int] = set()
    storage = versions.ds.session.storage
    for c in path:
        cd = commit_diff_at(storage, key, c)
        if cd is not None:
            out.update(int(i) for i in cd.data_deleted_ids)
    return out


# ---- one side ------------------------------------------------------------------------------------
def side_changes(versions: _Versions, commit_id: str, base: Optional[str]) -> Dict[str, Any]:
    ds = versions.ds
    storage = ds.session.storage
    tree = ds.session.vs.tree
    path = path_to(tree, commit_id, base)
    x = versions.at(commit_id)
    kx = visible_keys(x)
    kl = visible_keys(versions.at(base)) if base is not None else {}
    recreated = {k for k in kx if k in kl and any((cd := commit_diff_at(storage, k, c)) is not None and cd.created for c in path)}
    created = [k for k in kx if k not in kl or k in recreated]
    deleted = [k for k in kl if k not in kx or k in recreated]
    renamed = {kl[k]: kx[k] for k in kx if k in kl and k not in recreated and kl[k] != kx[k]}
    side: Dict[str, Any] = {
        "id": commit_id,
        "commits": path,
        "info_updated": any(dataset_diff_at(storage, c).info_updated for c in path),
        "tensors_created": sorted(kx[k] for k in created),
        "tensors_deleted": sorted(kl[k] for k in deleted),
        "tensors_renamed": dict(sorted(renamed.items())),
        "tensors": {},
    }
    created_set = set(created)
    for k, name in sorted(kx.items(), key=lambda kv: kv[1]):
        cds = [cd for c in path if (cd := commit_diff_at(storage, k, c)) is not None]
        entry: Dict[str, Any] = {"created": k in created_set, "info_updated": any(cd.info_updated for cd in cds), "added": [], "updated": [], "deleted": []}
        n_x = x.session.engine(k).num_samples
        if k in created_set:
            entry["added"] = list(range(n_x))
        else:
            _fill_sample_changes(versions, k, commit_id, base, path, cds, n_x, entry)
        side["tensors"][name] = entry
    return side


def _fill_sample_changes(versions: _Versions, key: str, commit_id: str, base: Optional[str], path: List[str], cds: List[CommitDiff], n_x: int, entry: Dict[str, Any]) -> None:
    ids_x = versions.ids(commit_id, key)
    ids_l = versions.ids(base, key) if base is not None else None
    if ids_x is not None and ids_l is not None:
        # the usual history appends at the end: compare past the common prefix only
        m = min(len(ids_x), len(ids_l))
        neq = np.nonzero(ids_x[:m] != ids_l[:m])[0]
        p = int(neq[0]) if len(neq) else m
        sx, sl = ids_x[p:], ids_l[p:]
        in_l = np.ones(len(ids_x), bool)
        in_l[p:] = np.isin(sx, sl) if len(sl) else False
        entry["added"] = np.nonzero(~in_l)[0].tolist()
        in_x = np.isin(sl, sx) if len(sx) else np.zeros(len(sl), bool)
        entry["deleted"] = (np.nonzero(~in_x)[0] + p).tolist()
        if not any(cd.data_updated for cd in cds):
            return
        if not any(cd.data_deleted for cd in cds):
            # no pops on the way: a position is the same sample in every version of the path
            upd = set()
            for cd in cds:
                upd |= cd.data_updated
            idx = np.fromiter((i for i in upd if i < n_x), dtype=np.int64)
            entry["updated"] = sorted(int(i) for i in idx[in_l[idx]])
            return
        upd_ids = changed_ids(versions, key, path)
        if upd_ids:
            hit = in_l & np.isin(ids_x, np.fromiter(upd_ids, dtype=np.uint64, count=len(upd_ids)))
            entry["updated"] = np.nonzero(hit)[0].tolist()
        return
    # no sample ids (a tensor made with create_id_tensor=False): the commit diffs' own counts
    n_added = sum(cd.num_samples_added for cd in cds)
    entry["added"] = list(range(max(0, n_x - n_added), n_x))
    if not any(cd.data_deleted for cd in cds):
        upd = set()
        for cd in cds:
            upd |= cd.data_updated
        entry["updated"] = sorted(i for i in upd if i < n_x - n_added)


# ---- the verb --------------------------------------------------------------------------------------
def compare(ds: "Dataset", id_1: Optional[str] = None, id_2: Optional[str] = None) -> Dict[str, Any]:
    """The dict form of `ds.diff(id_1, id_2)` (see the module docstring)."""
    from lakeformat.version_control.api import refresh_tree

    st = ds.session
    if not st.read_only and st.vs.is_head:
        ds.flush()
    refresh_tree(ds)
    tree = st.vs.tree
    if id_1 is None and id_2 is not None:
        raise ValueError("diff: give id_1 when giving id_2")
    cur = st.vs.commit_id
    if id_1 is None:
        a, b = cur, tree.node(cur)["parent"]
        base = b
    elif id_2 is None:
        a, b = cur, tree.resolve(id_1)
        base = tree.lowest_common_ancestor(a, b)
    else:
        a, b = tree.resolve(id_1), tree.resolve(id_2)
        base = tree.lowest_common_ancestor(a, b)
    versions = _Versions(ds)
    sides = [side_changes(versions, a, base)]
    sides.append(side_changes(versions, b, base) if b is not None else _empty_side(None))
    return {"base": base, "sides": sides}


def _empty_side(commit_id: Optional[str]) -> Dict[str, Any]:
    return {"id": commit_id, "commits": [], "info_updated": False, "tensors_created": [], "tensors_deleted": [], "tensors_renamed": {}, "tensors": {}}


def _ranges(idx: Sequence[int], limit: int = 12) -> str:
    if not idx:
        return ""
    groups = []
    s = prev = idx[0]
    for i in idx[1:]:
        if i == prev + 1:
            prev = i
            continue
        groups.append((s, prev))
        s = prev = i
    groups.append((s, prev))
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in groups[:limit]]
    if len(groups) > limit:
        parts.append(f"... {len(groups) - limit} more ranges")
    return "[" + ", ".join(parts) + "]"


def format_diff(d: Dict[str, Any], labels: Sequence[str] = ("id_1", "id_2")) -> str:
    """The printed form of a diff: one block per side, one line per changed tensor."""
    base = d["base"]
    lines = [f"Diff from the common ancestor {base or '(empty dataset)'}", ""]
    for side, label in zip(d["sides"], labels):
        n = len(side["commits"])
        lines.append(f"== {label}: {side['id']} ({n} version{'s' if n != 1 else ''} since the ancestor)")
        body = []
        if side["info_updated"]:
            body.append("dataset info updated")
        if side["tensors_created"]:
            body.append("tensors created: " + ", ".join(side["tensors_created"]))
        if side["tensors_deleted"]:
            body.append("tensors deleted: " + ", ".join(side["tensors_deleted"]))
        for old, new in side["tensors_renamed"].items():
            body.append(f"tensor renamed: {old} -> {new}")
        for name, t in side["tensors"].items():
            bits = []
            for what in ("added", "updated", "deleted"):
                if t[what]:
                    bits.append(f"{len(t[what])} {what} {_ranges(t[what])}")
            if t["info_updated"]:
                bits.append("info updated")
            if bits:
                body.append(f"{name}{' (new)' if t['created'] else ''}: " + "; ".join(bits))
        lines += ["  " + b for b in body] or ["  no changes"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def diff(ds: "Dataset", id_1: Optional[str] = None, id_2: Optional[str] = None, as_dict: bool = False) -> Optional[Dict[str, Any]]:
    """Changes between two versions, each from their lowest common ancestor.

    No ids: the current state against its previous commit. `id_1` only: the current state
    and `id_1`. Both: `id_1` and `id_2`. Ids are branch names or commit ids. Prints a
    readable report and returns None, or returns the dict form with `as_dict=True`.

    >>> ds.diff("main", "alt", as_dict=True)["sides"][1]["tensors"]["x"]["added"]  # doctest: +SKIP
    [10, 11]
    """
    d = compare(ds, id_1, id_2)
    if as_dict:
        return d
    if id_1 is None:
        labels = ("current state", "previous commit")
    elif id_2 is None:
        labels = ("current state", str(id_1))
    else:
        labels = (str(id_1), str(id_2))
    print(format_diff(d, labels), end="")
    return None
