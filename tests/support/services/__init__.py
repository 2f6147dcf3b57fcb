"""Real services for tests: S3, Azure Blob, GCS, PostgreSQL, MariaDB, Ray, Docker.

Each class starts one real server process bound to 127.0.0.1 on a free port,
keeps every byte it writes under its own temporary directory, waits until a
real client call succeeds, and stops the process by its PID on ``stop()`` or
at interpreter exit. Nothing here is a mock.

The binaries come from ``scripts/install_test_services.sh`` (apt + npm) and
the Python packages from the project's ``test`` extra. When a binary is
missing and the process runs as root inside a checkout, ``start()`` runs the
install script once (set ``LAKEFORMAT_TEST_AUTO_INSTALL=0`` to forbid that).

This package imports only the standard library at import time; client
libraries (boto3, sqlalchemy, ray, ...) are imported inside the methods that
need them.

Example::

    from tests.support.services import MotoS3

    s3 = MotoS3().start()
    s3.make_bucket("data")
    import fsspec
    fs = fsspec.filesystem("s3", **s3.storage_options)
    fs.pipe("data/hello.txt", b"hi")
    s3.stop()
"""

from ._base import (  # noqa: F401 - _port_open: for the tests
    AZURITE_ACCOUNT_KEY,
    AZURITE_ACCOUNT_NAME,
    ServiceProcess,
    _port_open,
    find_free_port,
    install_script,
    repo_root,
    services_dir,
)
from .databases import MariaDB, Postgres
from .docker_engine import DockerEngine
from .object_stores import Azurite, GcsEmulator, LatencyProxy, MotoS3
from .ray_cluster import Ray

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "Azurite",
    "DockerEngine",
    "GcsEmulator",
    "LatencyProxy",
    "MariaDB",
    "MotoS3",
    "Postgres",
    "Ray",
    "ServiceProcess",
    "find_free_port",
    "install_script",
    "repo_root",
    "services_dir",
]
