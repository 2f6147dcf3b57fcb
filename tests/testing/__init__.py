"""Tests of lakeformat.testing: the real services the rest of the suite relies on."""
