"""pytest fixtures that start real services once per session.

Load it with ``pytest -p tests.support.pytest_plugin`` or
``pytest_plugins = ["tests.support.pytest_plugin"]`` in a root conftest.

Session fixtures (each starts its service on first use and stops it at the
end of the session): ``s3_server`` (MotoS3), ``azure_server`` (Azurite),
``gcs_server`` (GcsEmulator), ``postgres_server`` (Postgres),
``mariadb_server`` (MariaDB), ``ray_cluster`` (Ray), ``docker_engine``
(DockerEngine).

Function fixtures, each a fresh bucket/container and a unique prefix,
returning ``(url, storage_options)``: ``s3_url``, ``az_url``, ``gcs_url``.

A service that cannot start makes the fixture fail with its error and log
tail; nothing is ever skipped.

Markers: ``slow_docker`` marks tests that build the Docker base image; ``packaging`` the
tests that build the wheel and install it into fresh virtual environments.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

from tests.support import services

# Both libraries read these when they are first imported, so they must be in
# the environment before any test module imports gcsfs or ray.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow_docker: builds the Debian base image with debootstrap (minutes on first run) "
        "and runs containers on a private dockerd",
    )
    config.addinivalue_line(
        "markers",
        "packaging: builds the wheel and installs it into fresh virtual environments from the "
        "package index (a few minutes; part of `make test`)",
    )


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _serve(service):
    """Start ``service``; on any error FAIL the requesting tests with its message and log tail."""
    error = None
    try:
        service.start()
    except Exception as exc:
        error = f"{type(service).__name__} could not start: {exc}"
        service.stop()
    if error is not None:
        pytest.fail(error, pytrace=False)
    return service


# --------------------------------------------------------------------------- session servers


@pytest.fixture(scope="session")
def s3_server() -> Iterator[services.MotoS3]:
    """A moto S3 server on 127.0.0.1 for the whole session."""
    server = _serve(services.MotoS3())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azure_server() -> Iterator[services.Azurite]:
    """An Azurite blob server on 127.0.0.1 for the whole session."""
    server = _serve(services.Azurite())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[services.GcsEmulator]:
    """A GCS emulator on 127.0.0.1 for the whole session."""
    server = _serve(services.GcsEmulator())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[services.Postgres]:
    """A PostgreSQL cluster on 127.0.0.1 for the whole session."""
    server = _serve(services.Postgres())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[services.MariaDB]:
    """A MariaDB server on 127.0.0.1 for the whole session."""
    server = _serve(services.MariaDB())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[services.Ray]:
    """A local Ray instance (2 CPUs, no dashboard) for the whole session."""
    cluster = _serve(services.Ray())
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[services.DockerEngine]:
    """A private dockerd (own socket, data and exec roots) for the whole session."""
    engine = _serve(services.DockerEngine())
    yield engine
    engine.stop()


# --------------------------------------------------------------------------- per-test locations


@pytest.fixture
def s3_url(s3_server: services.MotoS3) -> tuple[str, dict]:
    """``("s3://<fresh bucket>/<unique prefix>", storage_options)``."""
    bucket = s3_server.make_bucket(_unique("test"))
    return f"s3://{bucket}/{_unique('data')}", s3_server.storage_options


@pytest.fixture
def az_url(azure_server: services.Azurite) -> tuple[str, dict]:
    """``("az://<fresh container>/<unique prefix>", storage_options)``."""
    container = azure_server.make_container(_unique("test"))
    return f"az://{container}/{_unique('data')}", azure_server.storage_options


@pytest.fixture
def gcs_url(gcs_server: services.GcsEmulator) -> tuple[str, dict]:
    """``("gs://<fresh bucket>/<unique prefix>", storage_options)``."""
    bucket = gcs_server.make_bucket(_unique("test"))
    return f"gs://{bucket}/{_unique('data')}", gcs_server.storage_options
