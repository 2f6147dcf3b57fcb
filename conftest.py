"""Root conftest: real services for the tests come from the plugin in tests/support (test-only
code, kept out of the installed package)."""
pytest_plugins = ["tests.support.pytest_plugin"]
