"""destination-deeplake: the Airbyte destination that lands synced records as tensor datasets.

>>> from connectors.destination_deeplake import DestinationDeeplake   # doctest: +SKIP
>>> DestinationDeeplake().run(["spec"])                                # doctest: +SKIP
"""
from typing import Any

__all__ = ["DestinationDeeplake"]


def __getattr__(name: str) -> Any:  # lazy: `write` runs without importing airbyte_cdk
    if name == "DestinationDeeplake":
        from connectors.destination_deeplake.destination import DestinationDeeplake

        return DestinationDeeplake
    raise AttributeError(name)
