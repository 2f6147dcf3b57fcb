"""Test-only support, not part of the installed library: real services (S3, Azure, GCS, SQL,
Ray, Docker) and the pytest plugin that hands them to tests (loaded by the root conftest.py)."""
