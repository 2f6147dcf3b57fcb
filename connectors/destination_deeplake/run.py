"""The `destination-deeplake` console script: spec | check --config C | write --config C --catalog K."""
from __future__ import annotations

import logging
import sys


def run(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # logs go to stderr: stdout carries only Airbyte protocol messages
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args and args[0] == "write":
        # the hot path skips importing airbyte_cdk (about 2 CPU-seconds) unless it must report a failure
        from connectors.destination_deeplake.protocol import main_write

        sys.exit(main_write(args[1:]))
    from connectors.destination_deeplake.destination import DestinationDeeplake

    DestinationDeeplake().run(args)


if __name__ == "__main__":
    run()
