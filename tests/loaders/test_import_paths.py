"""The loader lives in lakeformat.integrations.torch; `loaders` stays the users' import path,
and importing the format never imports torch."""
import importlib
import subprocess
import sys

import pytest

MODULES = ("blocks", "buffers", "checksum_tables", "chunk_cache", "collate", "errors", "pipeline", "plan", "reader", "slabs", "torch_loader")


@pytest.mark.parametrize("name", MODULES)
def test_loaders_module_is_the_integration_module(name):
    old = importlib.import_module(f"loaders.{name}")
    assert old is importlib.import_module(f"lakeformat.integrations.torch.{name}")


def test_loaders_names_are_the_integration_names():
    import loaders
    from lakeformat.integrations import torch as integration

    for name in loaders.__all__:
        assert getattr(loaders, name) is getattr(integration, name)


def test_lakeformat_does_not_import_torch():
    code = "import lakeformat, lakeformat.integrations, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
