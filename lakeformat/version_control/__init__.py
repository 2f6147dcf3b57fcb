"""Version control inside the format: commits, branches, diffs and merges."""
