"""version_control_info.json, the tree of commits and branch heads: it lives in
lakeformat.core.version_tree (the format's layer, which the flush writes); re-exported here."""
from lakeformat.core.version_tree import VersionTree, load_tree, new_commit_id, update_tree, with_tree_lock

__all__ = ["VersionTree", "load_tree", "new_commit_id", "update_tree", "with_tree_lock"]
