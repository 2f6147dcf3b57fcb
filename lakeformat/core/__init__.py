"""The format engine, one layer above storage and codecs: metas (`meta`, `info`), encoders
and chunks, the chunk engine of one tensor (`chunk_engine` with its read, update and delete
parts), the `Session` of one open dataset (`session`, `journal`), the read layer (`layout`,
`decode`), the handles users hold (`tensor`, `dataset`, `view`), and the version objects
(`version_objects`, `version_tree`) that `lakeformat.version_control` operates on.
Nothing here imports a layer above (tests/test_layering.py)."""
