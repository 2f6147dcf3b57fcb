"""What a user sees when an optional dependency is missing: a typed error naming what to install.
(The same, end to end through the installed console scripts, is in test_wheel_install.py.)"""
from __future__ import annotations

import sys

import pytest

from connectors.sql.engine import make_engine, require_sqlalchemy
from connectors.sql.errors import DriverNotInstalledError, SqlIngestError
from lakeformat.cli import main
from lakeformat.errors import LakeFormatError


def test_missing_sqlalchemy_names_the_sql_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # makes `import sqlalchemy` fail
    with pytest.raises(DriverNotInstalledError, match=r"airbyte-destination-deeplake\[sql\]") as ei:
        require_sqlalchemy()
    assert isinstance(ei.value, SqlIngestError) and isinstance(ei.value, LakeFormatError)
    assert isinstance(ei.value, ImportError) and ei.value.name == "sqlalchemy"


def test_ingest_sql_without_sqlalchemy_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    rc = main(["ingest", "sql", "--url", f"sqlite:///{tmp_path / 'x.db'}", "--table", "t", "--dest", str(tmp_path / "lake")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: SQL backfills need SQLAlchemy") and "[sql]" in err


@pytest.mark.parametrize(
    "url, module, package",
    [
        ("mysql+mysqldb://me:s3cretpw@127.0.0.1/shop", "MySQLdb", "mysqlclient"),
        ("postgresql+pg8000://me:s3cretpw@127.0.0.1/shop", "pg8000", "pg8000"),
        ("mssql+pyodbc://me:s3cretpw@dsn", "pyodbc", "pyodbc"),
    ],
)
def test_missing_driver_is_named_with_its_package(url, module, package):
    try:
        __import__(module)
    except ImportError:
        pass
    else:
        raise AssertionError(f"{module} is installed here: this test needs a driver that is not")
    with pytest.raises(DriverNotInstalledError) as ei:
        make_engine(url)
    msg = str(ei.value)
    assert ei.value.name == module
    assert f"'{module}'" in msg and f"pip install '{package}'" in msg
    assert "s3cretpw" not in msg
