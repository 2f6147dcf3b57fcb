"""lakeformat with the Airbyte destination's tensor defaults (run with the project's python).

The same calls as ``lakeformat_peer.py``, but every tabular tensor is created as the
destination creates a column (`connectors/destination_deeplake/sink.py`): its default
chunk compression, its chunk size, nullable info, and the hidden `_id`/`_shape` tensors
deeplake 3.9.52's merge and diff rely on. The columns keep the workload's dtypes, so the
size on disk compares with what the other peers store. Only the tabular workload.
"""

from __future__ import annotations

from _common import Columns, main
from lakeformat_peer import LakeFormat


class LakeFormatDestination(LakeFormat):
    name = "lakeformat_dest"

    def __init__(self) -> None:
        super().__init__()
        from connectors.destination_deeplake import config, schema, sink

        self.chunk_compression = config.DEFAULT_CHUNK_COMPRESSION
        self.max_chunk_size = sink.MAX_CHUNK_BYTES
        self.schema = schema

    def compression(self, workload: str) -> str:
        if workload != "tabular":
            raise ValueError("the destination-defaults peer runs the tabular workload only")
        return f"destination defaults: chunk_compression={self.chunk_compression}, _id and _shape tensors"

    def write(self, path: str, workload: str, cols: Columns) -> None:
        if workload != "tabular":
            raise ValueError("the destination-defaults peer runs the tabular workload only")
        S = self.schema
        ds = self.lf.empty(path, overwrite=True)
        with ds:
            kinds = {"id": (S.INT, "int64"), "value": (S.FLOAT, "float64"), "text": (S.TEXT, None),
                     "label": (S.INT, "int32")}
            for name, (kind, dtype) in kinds.items():
                args = S.tensor_args(kind)
                if dtype is not None:
                    args["dtype"] = dtype  # the workload's dtype (label is int32 for every peer)
                ds.create_tensor(name, chunk_compression=self.chunk_compression,
                                 max_chunk_size=self.max_chunk_size, **args)
                ds[name].info.update(S.tensor_info(kind, name))
            for name in kinds:
                ds[name].extend(cols[name])


if __name__ == "__main__":
    raise SystemExit(main(LakeFormatDestination))
