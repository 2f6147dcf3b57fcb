"""Tests of tests/support: the real services the rest of the suite relies on."""
