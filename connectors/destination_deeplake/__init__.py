"""destination-deeplake: the Airbyte destination that lands synced records as tensor datasets.

>>> from connectors.destination_deeplake import DestinationDeeplake   # doctest: +SKIP
>>> DestinationDeeplake().run(["spec"])                                # doctest: +SKIP
"""
from connectors.destination_deeplake.destination import DestinationDeeplake

__all__ = ["DestinationDeeplake"]
