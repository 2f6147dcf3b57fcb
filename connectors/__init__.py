"""Ingestion connectors: the Airbyte destination (`destination_deeplake`) and SQL backfills."""
