"""version_control_info.json: the tree of commits and the heads of branches.

The head of every branch is an uncommitted ("pending") node: committing stamps it with a
message and time and hangs a new pending child under it.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List, Optional

from lakeformat import constants as C
from lakeformat.errors import CheckoutError, CorruptDataError


def new_commit_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]  # 40 hex digits, like the layout's ids


class VersionTree:
    def __init__(self, d: Optional[Dict[str, Any]] = None):
        if d is None:
            d = {
                "commits": {
                    C.FIRST_COMMIT_ID: self._node(C.DEFAULT_BRANCH, None),
                },
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
        if "commits" not in d or "branches" not in d:
            raise CorruptDataError("version control info lacks commits/branches", key)
        return cls(d)

    def to_bytes(self) -> bytes:
        return json.dumps(self.d).encode("utf-8")

    @property
    def commits(self) -> Dict[str, Dict[str, Any]]:
        return self.d["commits"]

    @property
    def branches(self) -> Dict[str, str]:
        return self.d["branches"]

    def node(self, commit_id: str) -> Dict[str, Any]:
        try:
            return self.commits[commit_id]
        except KeyError:
            raise CheckoutError(f"No commit {commit_id!r} in this dataset.") from None

    def is_head(self, commit_id: str) -> bool:
        return self.commits[commit_id]["commit_time"] is None

    def chain(self, commit_id: str) -> List[str]:
        """commit_id, its parent, ..., the first commit."""
        out = []
        c: Optional[str] = commit_id
        while c is not None:
            out.append(c)
            c = self.commits[c]["parent"]
        return out

    def add_child(self, parent: str, branch: str) -> str:
        cid = new_commit_id()
        self.commits[cid] = self._node(branch, parent)
        self.commits[parent]["children"].append(cid)
        return cid

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

    def merge_from(self, other: "VersionTree") -> None:
        """Union another writer's tree into ours (read-merge-write under the lock)."""
        for cid, node in other.commits.items():
            mine = self.commits.get(cid)
            if mine is None:
                self.commits[cid] = node
            else:
                for ch in node["children"]:
                    if ch not in mine["children"]:
                        mine["children"].append(ch)
                if mine["commit_time"] is None and node["commit_time"] is not None:
                    mine.update({k: node[k] for k in ("commit_message", "commit_time", "commit_user_name")})
        for b, head in other.branches.items():
            self.branches.setdefault(b, head)
