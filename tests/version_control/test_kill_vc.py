"""The version-control verbs killed (SIGKILL) at each of their storage writes: the dataset
opens, verifies, and is the state before the verb or after it (see tests/core/kill_harness)."""
from __future__ import annotations

import pytest

from tests.core.kill_harness import check_kill_path

VC_PATHS = ["commit", "checkout_create", "merge", "reset", "reset_uncommitted", "delete_branch"]


@pytest.mark.parametrize("scenario", VC_PATHS)
def test_kill_at_every_write(tmp_path, scenario):
    seen = check_kill_path(tmp_path, scenario)
    assert seen["points"] >= min(seen["writes"], 10), seen
    # a verb has a publishing write: kills before it leave the old state, after it the new
    assert seen["before"] and seen["after"], seen
