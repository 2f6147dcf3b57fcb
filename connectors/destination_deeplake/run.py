"""The `destination-deeplake` console script."""
from __future__ import annotations

import logging
import sys
from typing import List, Optional


def run(argv: Optional[List[str]] = None) -> None:
    # logs go to stderr: stdout carries only Airbyte protocol messages
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from connectors.destination_deeplake.destination import DestinationDeeplake

    DestinationDeeplake().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
