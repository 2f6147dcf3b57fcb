"""The child of tests/connectors/test_kill_destination.py: `destination-deeplake write` as the
platform runs it (the console script's `run(["write", ...])`), with stdin read from a file of
input messages and stdout (the protocol messages it emits, STATEs included) appended to a file,
so that the test sees exactly what the platform would have received before a SIGKILL."""
from __future__ import annotations

import os
import sys

# imported when the kill harness's zygote imports this module, before it forks: each child
# starts with the destination loaded (the platform's process pays this once too)
import connectors.destination_deeplake.protocol  # noqa: F401
from connectors.destination_deeplake.run import run


def write(config: str, catalog: str, input_path: str, output_path: str, log_path: str) -> None:
    """Run `destination-deeplake write --config C --catalog K` < input_path >> output_path."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)  # the destination's logs (stderr), kept for a failure's message
    os.close(fd)
    sys.stdin = open(input_path, "r")  # the entry point reads sys.stdin.buffer
    sys.stdout = open(output_path, "a")  # ... and writes (and flushes) sys.stdout.buffer
    try:
        run(["write", "--config", config, "--catalog", catalog])
    except SystemExit as e:
        if e.code:
            raise RuntimeError(f"destination-deeplake write exited {e.code}") from None
    sys.stdout.flush()
