"""SQL servers: PostgreSQL and MariaDB, each in its own data directory."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path


from ._base import ServiceProcess, _LOG_TAIL_CHARS, _chown_tree, _require_binary, _run

# --------------------------------------------------------------------------- PostgreSQL


class Postgres(ServiceProcess):
    """A throwaway PostgreSQL cluster (initdb + postgres, trust auth, fsync off).

    Runs as user ``postgres`` when started by root (the server refuses root).
    Attributes: ``port``, ``socket_dir``, ``url(db, driver)``,
    ``create_database(name)``.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: abort sessions, then exit
    user = "postgres"
    _bin_candidates = ("/usr/lib/postgresql/*/bin/{name}",)

    def __init__(self) -> None:
        super().__init__()
        self.dir_owner = "postgres" if os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        return _require_binary(name, [c.format(name=name) for c in self._bin_candidates])

    @property
    def data_dir(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir

    def _popen_kwargs(self) -> dict:
        if self.dir_owner is None:
            return {}
        entry = pwd.getpwnam(self.dir_owner)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.dir_owner is not None:
            entry = pwd.getpwnam(self.dir_owner)
            env.update(HOME=entry.pw_dir, USER=self.dir_owner, LOGNAME=self.dir_owner)
        env.setdefault("LC_ALL", "C.UTF-8")
        return env

    def _prepare(self) -> None:
        self._postgres = self._bin("postgres")
        self._pg_isready = self._bin("pg_isready")
        initdb = self._bin("initdb")
        result = subprocess.run(
            [initdb, "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=str(self.tmp_dir),
            **self._popen_kwargs(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed with exit code {result.returncode}:\n"
                f"{result.stdout.decode('utf-8', 'replace')[-_LOG_TAIL_CHARS:]}"
            )

    def _command(self) -> list[str]:
        return [
            self._postgres,
            "-D", str(self.data_dir),
            "-c", f"listen_addresses={self.host}",
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]

    def _ready(self) -> bool:
        # pg_isready exits 0 only once the server accepts connections (not
        # while it is still "starting up").
        result = subprocess.run(
            [self._pg_isready, "-q", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
        )
        return result.returncode == 0

    def url(self, db: str = "postgres", driver: str = "psycopg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@127.0.0.1:PORT/db``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name`` (idempotent); returns its SQLAlchemy URL."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                if exists is None:
                    quoted = conn.dialect.identifier_preparer.quote(name)
                    conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        finally:
            engine.dispose()
        return self.url(name)


# --------------------------------------------------------------------------- MariaDB


class MariaDB(ServiceProcess):
    """A throwaway MariaDB server (mariadb-install-db + mariadbd, root without password).

    Attributes: ``port``, ``socket_path``, ``url(db, driver)``,
    ``create_database(name)``.
    """

    name = "mariadb"
    start_timeout = 60.0
    user = "root"

    def __init__(self) -> None:
        super().__init__()
        self.dir_owner = "mysql" if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "data"

    @property
    def socket_path(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "mariadb.sock"

    def _user_args(self) -> list[str]:
        return [f"--user={self.dir_owner}"] if self.dir_owner else []

    def _popen_kwargs(self) -> dict:
        # Drop to the mysql user in Popen rather than with mariadbd --user:
        # a process that changes its own uid loses the parent-death signal.
        if self.dir_owner is None:
            return {}
        entry = pwd.getpwnam(self.dir_owner)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        sbin = ("/usr/sbin/{name}", "/usr/bin/{name}")
        self._mariadbd = _require_binary("mariadbd", [c.format(name="mariadbd") for c in sbin])
        install_db = _require_binary("mariadb-install-db", [c.format(name="mariadb-install-db") for c in sbin])
        _run(
            [
                install_db,
                "--no-defaults",
                *self._user_args(),
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            what="mariadb-install-db",
            timeout=120,
        )
        if self.dir_owner:
            _chown_tree(self.tmp_dir, self.dir_owner)

    def _command(self) -> list[str]:
        return [
            self._mariadbd,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--bind-address={self.host}",
            f"--port={self.port}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.tmp_dir / 'mariadb.pid'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=200",
        ]

    def _ready(self) -> bool:
        import pymysql

        conn = pymysql.connect(host=self.host, port=self.port, user=self.user, connect_timeout=2)
        conn.close()
        return True

    def url(self, db: str = "mysql", driver: str = "pymysql") -> str:
        """SQLAlchemy URL, e.g. ``mysql+pymysql://root@127.0.0.1:PORT/db``."""
        scheme = f"mysql+{driver}" if driver else "mysql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE IF NOT EXISTS name`` (utf8mb4); returns its SQLAlchemy URL."""
        import pymysql

        conn = pymysql.connect(host=self.host, port=self.port, user=self.user, autocommit=True)
        try:
            with conn.cursor() as cur:
                quoted = "`" + name.replace("`", "``") + "`"
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        return self.url(name)
