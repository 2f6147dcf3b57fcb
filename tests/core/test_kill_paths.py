"""Every write path of the format killed (SIGKILL) at each of its storage writes: the dataset
opens, verifies, and holds exactly the state of its last flush (or the next one). The default
run tries a sample of kill points per path; LAKEFORMAT_KILL_EXHAUSTIVE=1 (make test-long)
tries them all."""
from __future__ import annotations

import pytest

from tests.core.kill_harness import check_kill_path

CORE_PATHS = ["append", "append_after_commit", "append_sequences", "update", "update_after_commit", "pop", "pop_after_commit", "pop_autoflush", "schema", "schema_after_commit"]


@pytest.mark.parametrize("scenario", CORE_PATHS)
def test_kill_at_every_write(tmp_path, scenario):
    seen = check_kill_path(tmp_path, scenario)
    assert seen["points"] >= min(seen["writes"], 10), seen
    assert seen["before"] + seen["after"] == seen["points"]
