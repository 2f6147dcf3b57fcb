"""version_control_info.json: the tree of commits and the heads of branches.

The head of every branch is an uncommitted ("pending") node: committing stamps it with a
message and time and hangs a new pending child under it. Every change to the stored tree is a
read-modify-write of the latest stored copy under a short-lived storage lock
(`update_tree`), so that a branch made by another writer in the meantime is never lost.
"""
from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, TypeVar

from lakeformat import constants as C
from lakeformat.core.checksums import check_embedded, embed_checksum
from lakeformat.errors import CheckoutError, CorruptDataError, VersionControlError
from lakeformat.storage.base import StorageProvider, update_object

T = TypeVar("T")

_TREE_LOCK_WAIT_S = 60.0
_TREE_LOCK_VALIDITY_S = 10.0
_TREE_LOCK_SETTLE_S = 0.01  # re-read after writing the lock: a racing writer's lock shows by then


def new_commit_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]  # 40 hex digits, like the layout's ids


class VersionTree:
    def __init__(self, d: Optional[Dict[str, Any]] = None):
        if d is None:
            d = {
                "commits": {C.FIRST_COMMIT_ID: self._node(C.DEFAULT_BRANCH, None)},
                "branches": {C.DEFAULT_BRANCH: C.FIRST_COMMIT_ID},
            }
        self.d = d

    @staticmethod
    def _node(branch: str, parent: Optional[str]) -> Dict[str, Any]:
        return {
            "branch": branch,
            "parent": parent,
            "children": [],
            "commit_message": None,
            "commit_time": None,
            "commit_user_name": None,
            "is_checkpoint": False,
            "total_samples_processed": 0,
        }

    @classmethod
    def from_bytes(cls, data: bytes, key: str = C.VERSION_CONTROL_INFO_FILENAME) -> "VersionTree":
        try:
            d = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptDataError(f"version control info is not JSON: {e}", key) from e
        if not isinstance(d, dict) or "commits" not in d or "branches" not in d:
            raise CorruptDataError("version control info lacks commits/branches", key)
        # the checksum we keep inside it (deeplake 3.9.52 drops it when it rewrites the tree)
        check_embedded(data, d, key, ("commits", "branches"))
        return cls(d)

    def to_bytes(self) -> bytes:
        return embed_checksum(self.d)

    def copy(self) -> "VersionTree":
        return VersionTree(copy.deepcopy(self.d))

    @property
    def commits(self) -> Dict[str, Dict[str, Any]]:
        commits: Dict[str, Dict[str, Any]] = self.d["commits"]
        return commits

    @property
    def branches(self) -> Dict[str, str]:
        branches: Dict[str, str] = self.d["branches"]
        return branches

    def node(self, commit_id: str) -> Dict[str, Any]:
        try:
            return self.commits[commit_id]
        except KeyError:
            raise CheckoutError(f"No commit {commit_id!r} in this dataset.") from None

    def is_head(self, commit_id: str) -> bool:
        return self.node(commit_id)["commit_time"] is None

    def chain(self, commit_id: str) -> List[str]:
        """commit_id, its parent, ..., the first commit."""
        out = []
        c: Optional[str] = commit_id
        while c is not None:
            out.append(c)
            c = self.node(c)["parent"]
        return out

    def ancestors(self, commit_id: str) -> Dict[str, int]:
        """Every version `commit_id` contains, through parents and merge parents (our key
        "merge_parent": deeplake ignores it), with its distance in steps."""
        out: Dict[str, int] = {}
        frontier = [commit_id]
        dist = 0
        while frontier:
            nxt = []
            for c in frontier:
                if c in out or c not in self.commits:
                    continue
                out[c] = dist
                node = self.commits[c]
                for p in (node.get("parent"), node.get("merge_parent")):
                    if p is not None and p not in out:
                        nxt.append(p)
            frontier = nxt
            dist += 1
        return out

    def lowest_common_ancestor(self, a: str, b: str) -> str:
        """The nearest version both `a` and `b` contain (merges count: after merging b into a,
        b itself is their common ancestor)."""
        anc_a, anc_b = self.ancestors(a), self.ancestors(b)
        common = [c for c in anc_a if c in anc_b]
        if not common:
            raise VersionControlError(f"commits {a} and {b} share no ancestor")  # a tree always does
        return min(common, key=lambda c: (anc_a[c] + anc_b[c], anc_a[c]))

    def resolve(self, address: str) -> str:
        """A branch name or a commit id (or a unique prefix of at least 6 digits) -> commit id."""
        if address in self.branches:
            return self.branches[address]
        if address in self.commits:
            return address
        if len(address) >= 6:
            found = [c for c in self.commits if c.startswith(address)]
            if len(found) == 1:
                return found[0]
        raise CheckoutError(f"{address!r} is neither a branch nor a commit of this dataset.")

    # ---- structural edits (applied to the latest stored copy under the tree lock) -----------
    def add_node(self, commit_id: str, branch: str, parent: Optional[str]) -> Dict[str, Any]:
        node = self._node(branch, parent)
        self.commits[commit_id] = node
        if parent is not None:
            kids = self.node(parent)["children"]
            if commit_id not in kids:
                kids.append(commit_id)
        return node

    def remove_node(self, commit_id: str) -> None:
        node = self.commits.pop(commit_id, None)
        if node and node["parent"] in self.commits:
            kids = self.commits[node["parent"]]["children"]
            if commit_id in kids:
                kids.remove(commit_id)

    @staticmethod
    def stamp(node: Dict[str, Any], message: Optional[str], user: str, when: Optional[float] = None) -> None:
        node["commit_message"] = message
        node["commit_time"] = time.time() if when is None else when
        node["commit_user_name"] = user

    def merge_from(self, other: "VersionTree") -> None:
        """Union another writer's tree into ours (used only when creating a dataset)."""
        for cid, node in other.commits.items():
            mine = self.commits.get(cid)
            if mine is None:
                self.commits[cid] = node
            else:
                for ch in node["children"]:
                    if ch not in mine["children"]:
                        mine["children"].append(ch)
        for b, head in other.branches.items():
            self.branches.setdefault(b, head)


# ---- the stored tree ---------------------------------------------------------------------------
def _lock_key() -> str:
    return C.VERSION_CONTROL_INFO_LOCK_FILENAME


def _tree_key() -> str:
    return C.VERSION_CONTROL_INFO_FILENAME


def with_tree_lock(storage: StorageProvider, fn: Callable[[], T]) -> T:
    """Run fn() holding the short-lived lock of version_control_info.json (an object in the
    storage with an owner and an expiry: a writer killed while holding it blocks others for
    at most its validity)."""
    me = uuid.uuid4().hex
    deadline = time.time() + _TREE_LOCK_WAIT_S
    while True:
        try:
            cur = json.loads(storage.get(_lock_key()))
        except (KeyError, ValueError):
            cur = None
        if cur is None or cur.get("expires", 0) < time.time():
            storage.set(_lock_key(), json.dumps({"owner": me, "expires": time.time() + _TREE_LOCK_VALIDITY_S}).encode())
            time.sleep(_TREE_LOCK_SETTLE_S)
            try:
                if json.loads(storage.get(_lock_key())).get("owner") == me:
                    break
            except (KeyError, ValueError):
                pass
        if time.time() > deadline:
            raise VersionControlError("version_control_info.json stayed locked by another writer")
        time.sleep(0.01 + (uuid.uuid4().int % 20) / 1000)
    try:
        return fn()
    finally:
        try:
            cur = json.loads(storage.get(_lock_key()))
            if cur.get("owner") == me:
                storage.delete(_lock_key())
        except Exception:  # noqa: BLE001 - the lock expires anyway
            pass


def load_tree(storage: StorageProvider) -> VersionTree:
    try:
        return VersionTree.from_bytes(storage.get(_tree_key()))
    except KeyError:
        return VersionTree()


def update_tree(storage: StorageProvider, mutate: Callable[[VersionTree], None]) -> VersionTree:
    """Read the stored tree, apply `mutate` to it and write it back as one conditional write.
    The single write of version_control_info.json is the commit point of every verb."""

    def apply(raw: Optional[bytes]) -> "tuple[bytes, VersionTree]":
        # a conditional write of the version read: a writer that changed the tree meanwhile
        # makes this run again on its tree (mutate re-checks what it relies on)
        tree = VersionTree.from_bytes(raw) if raw is not None else VersionTree()
        mutate(tree)
        return tree.to_bytes(), tree

    return update_object(storage, _tree_key(), apply)
