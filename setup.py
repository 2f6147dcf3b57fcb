"""Build of the required C extensions `lakeformat._native` and
`connectors.destination_deeplake._records` (metadata lives in pyproject.toml).

The extensions are not optional: a compiler error fails the install loudly.
"""
from setuptools import Extension, setup

native = Extension(
    "lakeformat._native",
    sources=["native/lakeformat_native.c", "native/lf_args.c", "native/chunk_index.c", "native/copy_kernels.c",
             "native/lz4_block.c", "native/lz4_encode.c", "native/png_filters.c",
             "native/tql_text.c", "native/tql_ragged.c", "native/text_decode.c",
             "native/json_path.c", "native/json_scan.c"],
    depends=["native/lf_args.h", "native/lz4_block.h", "native/png_filters.h", "native/text_offsets.h",
             "native/json_scan.h"],
    include_dirs=["native"],
    extra_compile_args=["-O3", "-std=c99", "-Wall", "-Werror=implicit-function-declaration"],
    optional=False,
)

# the destination's columnar fast path: Airbyte RECORD lines -> per-field columns
records = Extension(
    "connectors.destination_deeplake._records",
    sources=["native/airbyte_records.c", "native/record_parse.c", "native/json_scan.c", "native/iso_time.c"],
    depends=["native/airbyte_records.h", "native/json_scan.h"],
    include_dirs=["native"],
    extra_compile_args=["-O3", "-std=c99", "-Wall", "-Werror=implicit-function-declaration"],
    optional=False,
)

setup(ext_modules=[native, records])
