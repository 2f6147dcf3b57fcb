"""The distribution as a user gets it: the wheel built from this tree, installed from the package
index into fresh virtual environments, its console scripts run from outside the source tree.

One wheel build per run; two environments: plain (then `[torch]`, then `[all]` added), and `[sql]`
(installed in the background while the first is tested).
Every check of an install runs before anything is added to its environment, in the same test, so
the order the tests run in does not matter.
"""
from __future__ import annotations

import ast
import email.parser
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
OWN_PACKAGES = ("lakeformat", "loaders", "connectors")
# The local CPU build of torch. On this machine a bare range makes pip pull GBs of CUDA wheels,
# so torch is installed pinned first and the `torch>=2.1` of the extras then finds it installed.
TORCH_PIN = "torch==2.13.0"
USER_EXTRAS = ("s3", "gcs", "azure", "http", "sql", "torch", "arrow")
# imports our code makes of modules no requirement of ours names: each comes with an extra
TRANSITIVE = {"botocore": "s3", "azure": "azure"}  # s3fs -> aiobotocore -> botocore; adlfs -> azure-core


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:]


def _run(cmd: Sequence[str], *, cwd: Path, env: Dict[str, str], timeout: float = 180, stdin: Optional[bytes] = None,
         check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(cmd), cwd=cwd, env=env, input=stdin, capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\nstdout:\n{_tail(p.stdout.decode(errors='replace'))}\n"
                             f"stderr:\n{_tail(p.stderr.decode(errors='replace'))}")
    return p


def _outside_env() -> Dict[str, str]:
    """The environment for everything run in a fresh venv: nothing that would put the source
    tree (or the project's own .venv) on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(ROOT)))
    return env


@dataclass
class Venv:
    """A fresh virtual environment, populated by this interpreter's pip (`pip --python`), so no
    pip is installed into it."""

    root: Path
    cwd: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def script(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def pip(self, *args: str, timeout: float = 400) -> None:
        _run([sys.executable, "-m", "pip", "--python", str(self.python), *args], cwd=self.cwd, env=_outside_env(), timeout=timeout)

    def install(self, *reqs: str) -> None:
        start = time.perf_counter()
        self.pip("install", "-q", "--no-compile", "--progress-bar", "off", *reqs)
        print(f"[packaging] {self.root.name}: pip install {' '.join(Path(r).name for r in reqs)}: {time.perf_counter() - start:.1f} s")

    def run(self, *cmd: str, stdin: Optional[bytes] = None, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        return _run(cmd, cwd=self.cwd, env=_outside_env(), stdin=stdin, check=check, timeout=timeout)

    def py(self, code: str) -> str:
        return self.run(str(self.python), "-c", code).stdout.decode()


def _new_venv(base: Path, name: str) -> Venv:
    root = base / name
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=base, env=_outside_env(), timeout=120)
    cwd = base / f"{name}-work"  # every command runs here: not the source tree
    cwd.mkdir()
    return Venv(root, cwd)


def _source_files() -> List[str]:
    """The files of this checkout a sdist would hold: tracked or new, not ignored, present."""
    out = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def wheel(base: Path) -> Path:
    """The wheel, built (C extensions compiled) from a copy of the tree: the build writes
    build/ and *.egg-info, which must not land in the working tree."""
    src = base / "src"
    for f in _source_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    out = base / "wheelhouse"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)], cwd=base, env=_outside_env(), timeout=400)
    (whl,) = out.glob("airbyte_destination_deeplake-*.whl")
    return whl


@pytest.fixture(scope="module")
def sql_env(wheel: Path, base: Path) -> Iterator[Future]:
    """The `[sql]` environment, installed in the background: pip spends much of its time waiting
    on files and the index, so this install overlaps the plain environment's test."""
    def make() -> Venv:
        env = _new_venv(base, "sql")
        env.install(f"{wheel}[sql]")
        return env

    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(make)


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(z.read(name).decode())


def _requirements(meta: email.message.Message) -> Dict[Optional[str], List[str]]:
    """{extra or None (core): [requirement without its marker]}."""
    out: Dict[Optional[str], List[str]] = {}
    for req in meta.get_all("Requires-Dist") or []:
        spec, _, marker = req.partition(";")
        m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        out.setdefault(m.group(1) if m else None, []).append(spec.strip())
    return out


def _dist_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-")


# ------------------------------------------------------------------------------ wheel contents
def test_wheel_holds_the_library_and_no_test_services(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        assert tops == set(OWN_PACKAGES), tops
        assert any(re.fullmatch(r"lakeformat/_native\..*\.so", n) for n in names)
        assert any(re.fullmatch(r"connectors/destination_deeplake/_records\..*\.so", n) for n in names)
        assert "connectors/destination_deeplake/spec.json" in names
        assert not [n for n in names if n.startswith(("lakeformat/testing/", "tests/"))]
        mentions = [n for n in names if b"apt-get" in z.read(n)]
        assert mentions == [], f"files of the installed library that mention apt-get: {mentions}"


def test_extras_and_dependencies(metadata: email.message.Message):
    reqs = _requirements(metadata)
    core = {_dist_name(r) for r in reqs[None]}
    assert {"airbyte-cdk", "orjson", "numpy", "fsspec"} <= core  # what destination-deeplake imports
    for extra in USER_EXTRAS + ("all", "test"):
        assert reqs.get(extra), f"extra [{extra}] is missing or empty"
    assert {_dist_name(r) for r in reqs["sql"]} == {"sqlalchemy"}  # drivers are the user's choice
    assert {_dist_name(r) for r in reqs["torch"]} == {"torch"}
    # [all] is every user extra
    want = {r for e in USER_EXTRAS for r in reqs[e]}
    assert want <= set(reqs["all"]), sorted(want - set(reqs["all"]))
    # nothing a user installs pins an exact version
    for extra in (None, "all") + USER_EXTRAS:
        assert not [r for r in reqs[extra] if "==" in r], reqs[extra]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


# packages imported only when their feature is used (Dataset.pytorch imports the loader on call)
OPTIONAL_INTEGRATIONS = ("loaders/", "lakeformat/integrations/")


def test_every_import_is_a_declared_requirement(wheel: Path, metadata: email.message.Message):
    """Each third-party module our installed code imports comes from a requirement: module-level
    imports of lakeformat and connectors from the core ones (they run on every start), the rest
    (lazy imports of optional features; the torch integration, which `import lakeformat` never
    loads) from the core or an extra."""
    from importlib.metadata import packages_distributions

    dists = {m: {d.lower().replace("_", "-") for d in ds} for m, ds in packages_distributions().items()}
    reqs = _requirements(metadata)
    core = {_dist_name(r) for r in reqs[None]}
    anywhere = core | {_dist_name(r) for e in USER_EXTRAS for r in reqs[e]}
    problems = []
    with zipfile.ZipFile(wheel) as z:
        for name in (n for n in z.namelist() if n.endswith(".py")):
            tree = ast.parse(z.read(name), filename=name)
            top_level = set(map(id, tree.body))
            # imports under `if TYPE_CHECKING:` never run (typing_extensions for the checker only)
            typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                           for stmt in node.body for n in ast.walk(stmt)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                if id(node) in typing_only:
                    continue
                for mod in (m.split(".")[0] for m in mods):
                    if mod in sys.stdlib_module_names or mod in OWN_PACKAGES:
                        continue
                    if mod in TRANSITIVE:
                        assert TRANSITIVE[mod] in reqs, f"{name}: {mod} should come with [{TRANSITIVE[mod]}]"
                        continue
                    provided = dists.get(mod, set())
                    if not provided:
                        problems.append(f"{name}: imports {mod}, which no installed distribution provides")
                    elif id(node) in top_level and not name.startswith(OPTIONAL_INTEGRATIONS) and not provided & core:
                        problems.append(f"{name}: imports {mod} at module level; {sorted(provided)} is not a core dependency")
                    elif not provided & anywhere:
                        problems.append(f"{name}: imports {mod}; {sorted(provided)} is in no dependency list")
    assert problems == []


# ------------------------------------------------------------------------------ installs
def _write_records(env: Venv, lake: Path) -> None:
    """`destination-deeplake check` and a small `write`, then the dataset read back."""
    config = env.cwd / "config.json"
    config.write_text(json.dumps({"path": str(lake)}))
    check = json.loads(env.run(env.script("destination-deeplake"), "check", "--config", str(config)).stdout)
    assert check["connectionStatus"]["status"] == "SUCCEEDED", check

    catalog = env.cwd / "catalog.json"
    stream = {"name": "users", "supported_sync_modes": ["full_refresh", "incremental"],
              "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}}
    catalog.write_text(json.dumps({"streams": [{
        "stream": stream, "sync_mode": "incremental", "destination_sync_mode": "append", "primary_key": [["id"]],
        "cursor_field": [], "generation_id": 1, "minimum_generation_id": 0, "sync_id": 1}]}))
    messages = [{"type": "RECORD", "record": {"stream": "users", "data": {"id": i, "name": f"user-{i}"}, "emitted_at": 1_700_000_000_000}}
                for i in range(5)]
    messages.append({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"id": 4}}}})
    out = env.run(env.script("destination-deeplake"), "write", "--config", str(config), "--catalog", str(catalog),
                  stdin=b"\n".join(json.dumps(m).encode() for m in messages) + b"\n").stdout
    emitted = [json.loads(line) for line in out.splitlines()]
    states = [m for m in emitted if m["type"] == "STATE"]
    assert [s["state"]["stream"]["stream_state"] for s in states] == [{"id": 4}], emitted
    got = json.loads(env.py(
        "import json, lakeformat\n"
        f"ds = lakeformat.load({str(lake / 'users')!r}, read_only=True)\n"
        "print(json.dumps([ds.id.numpy().ravel().tolist(), ds.name.numpy().ravel().tolist()]))"))
    assert got == [list(range(5)), [f"user-{i}" for i in range(5)]]


def _assert_isolated(env: Venv) -> None:
    """Our packages load from the venv's site-packages, never from the source tree."""
    found = json.loads(env.py(
        "import json, sys, sysconfig, importlib.metadata as md, lakeformat, connectors, lakeformat._native\n"
        f"assert not [p for p in sys.path if p.startswith({str(ROOT)!r})], sys.path\n"
        "print(json.dumps({'site': sysconfig.get_paths()['purelib'],\n"
        "                  'loaded': [lakeformat.__file__, connectors.__file__, lakeformat._native.__file__],\n"
        "                  'installed': [str(f) for f in md.files('airbyte-destination-deeplake')]}))"))
    site, installed = Path(found["site"]), found["installed"]
    assert all(Path(f).is_relative_to(site) for f in found["loaded"]), found["loaded"]
    assert [f for f in installed if f.startswith("lakeformat/")], installed
    assert not [f for f in installed if f.startswith(("tests/", "lakeformat/testing/"))]
    assert not (site / "lakeformat" / "testing").exists()
    mentions = [str(p) for pkg in OWN_PACKAGES for p in (site / pkg).rglob("*") if p.is_file() and b"apt-get" in p.read_bytes()]
    assert mentions == []


def _ingest_sqlite(env: Venv, name: str) -> None:
    """`lakeformat ingest sql` of a SQLite table, then the dataset read back."""
    db = env.cwd / f"{name}.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL)")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item-{i}", i * 1.5) for i in range(1, 26)])
    conn.close()
    lake = env.cwd / f"{name}-lake"
    out = env.run(env.script("lakeformat"), "ingest", "sql", "--url", f"sqlite:///{db}", "--table", "items",
                  "--dest", str(lake), "--no-progress").stdout
    assert json.loads(out)["rows"] == 25
    got = json.loads(env.py(
        "import json, lakeformat\n"
        f"ds = lakeformat.load({str(lake)!r}, read_only=True)\n"
        "print(json.dumps([ds.id.numpy().ravel().tolist(), ds.name.numpy().ravel().tolist(), ds.price.numpy().ravel().tolist()]))"))
    assert got == [list(range(1, 26)), [f"item-{i}" for i in range(1, 26)], [i * 1.5 for i in range(1, 26)]]


def test_plain_install_then_torch_then_all(wheel: Path, base: Path, sql_env: Future):
    # sql_env: asked for here only to start that install now, beside this one
    env = _new_venv(base, "plain")
    env.install(str(wheel))
    env.pip("check")
    _assert_isolated(env)

    spec = json.loads(env.run(env.script("destination-deeplake"), "spec").stdout)
    assert spec["type"] == "SPEC" and "path" in spec["spec"]["connectionSpecification"]["properties"]
    _write_records(env, env.cwd / "lake")

    help_text = env.run(env.script("lakeformat"), "--help").stdout.decode()
    assert "ingest" in help_text and "verify" in help_text
    info = json.loads(env.run(env.script("lakeformat"), "info", str(env.cwd / "lake" / "users")).stdout)
    assert info["length"] == 5

    # without [sql]: a one-line error naming the extra, not a traceback
    p = env.run(env.script("lakeformat"), "ingest", "sql", "--url", "sqlite:///" + str(env.cwd / "x.db"), "--table", "t",
                "--dest", str(env.cwd / "sql-lake"), check=False)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert "Traceback" not in err and "SQLAlchemy" in err and "airbyte-destination-deeplake[sql]" in err, err

    # [torch]: torch pinned first (see TORCH_PIN), then the extra
    env.install(TORCH_PIN)
    env.install(f"{wheel}[torch]")
    batches = json.loads(env.py(
        "import json, lakeformat\n"
        "from loaders import dataloader\n"
        f"ds = lakeformat.load({str(env.cwd / 'lake' / 'users')!r}, read_only=True)\n"
        "loader = dataloader(ds).batch(2).pytorch(num_workers=0, tensors=['id'])\n"
        "print(json.dumps([b['id'].ravel().tolist() for b in loader]))"))
    assert batches == [[0, 1], [2, 3], [4]]

    # [all] on top: every extra (torch is in already)
    env.install(f"{wheel}[all]")
    env.pip("check")
    env.py("import s3fs, gcsfs, adlfs, aiohttp, sqlalchemy, torch, loaders, botocore, azure.core\n"
           "import fsspec\n"
           "for proto in ('s3', 'gs', 'az', 'http'):\n"
           "    fsspec.get_filesystem_class(proto)\n")
    _ingest_sqlite(env, "all")


def test_sql_extra(sql_env: Future):
    env = sql_env.result()
    env.pip("check")
    _assert_isolated(env)

    _ingest_sqlite(env, "shop")

    # a driver the user has not installed: named, with what to install, and no password shown
    p = env.run(env.script("lakeformat"), "ingest", "sql", "--url", "postgresql+psycopg://me:s3cretpw@127.0.0.1:9/shop",
                "--table", "items", "--dest", str(env.cwd / "pg-lake"), check=False)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert "Traceback" not in err and "'psycopg'" in err and "pip install 'psycopg[binary]'" in err, err
    assert "s3cretpw" not in err
