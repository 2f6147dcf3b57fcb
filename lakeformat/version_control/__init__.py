"""Version control inside the format: commits, branches, diffs and merges.

- `api`: the verbs of a dataset (commit, checkout, log, reset, delete_branch) and the helpers
  they share (`copy_version_metas`, `drop_version_folder`, `write_commit_infos`, `dataset_at`);
- `operations`: commit operations (append chunks, replace or overwrite tensors, delete rows)
  published atomically, with a conflict error when the branch moved;
- `diff`, `merge`: comparing versions, and merging a branch into another;
- `locks`: one writer per branch;
- `objects`, `tree`: re-exports of the format's version objects and tree, which live in
  lakeformat.core (`version_objects`, `version_tree`) since the flush writes them.

It works on a dataset through `Dataset.session` (lakeformat.core.session.Session) only.
"""
