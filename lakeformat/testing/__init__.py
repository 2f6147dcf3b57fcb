"""Test-only helpers: real services (S3, Azure, GCS, SQL, Ray, Docker) and their pytest plugin."""
