"""Root conftest: real services for the tests come from lakeformat's pytest plugin."""
pytest_plugins = ["lakeformat.testing.pytest_plugin"]
