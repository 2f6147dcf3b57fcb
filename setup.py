"""Build of the required C extension `lakeformat._native` (metadata lives in pyproject.toml).

The extension is not optional: a compiler error fails the install loudly.
"""
from setuptools import Extension, setup

native = Extension(
    "lakeformat._native",
    sources=["native/lakeformat_native.c", "native/lz4_block.c"],
    include_dirs=["native"],
    extra_compile_args=["-O3", "-std=c99", "-Wall", "-Werror=implicit-function-declaration"],
    optional=False,
)

setup(ext_modules=[native])
