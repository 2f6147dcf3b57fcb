"""A Docker engine (Debian's docker.io) and base images made without a registry."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


from ._base import ServiceProcess, _LOG_TAIL_CHARS, _require_binary, _run, services_dir

# --------------------------------------------------------------------------- Docker


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 2.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


BASE_IMAGE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")


class DockerEngine(ServiceProcess):
    """A private ``dockerd`` with its own socket, data root and exec root (root only).

    No bridge network and no iptables changes: containers run with
    ``--network none`` or ``--network host``. No registry is reachable, so
    ``ensure_base_image`` builds a Debian base image with debootstrap.
    Attributes: ``socket_path``, ``docker_host``, ``env`` (``os.environ`` plus
    ``DOCKER_HOST``), ``docker(*args)``, ``client()`` (docker-py),
    ``ensure_base_image(name_tag)``.
    """

    name = "dockerd"
    start_timeout = 60.0
    stop_timeout = 30.0

    @property
    def socket_path(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.docker_host
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_TLS_VERIFY", None)
        return env

    def _prepare(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("DockerEngine needs root (dockerd manages mounts and cgroups)")
        self._dockerd = _require_binary("dockerd", ["/usr/sbin/dockerd", "/usr/bin/dockerd"])
        self._docker = _require_binary("docker", ["/usr/bin/docker"])

    def _command(self) -> list[str]:
        assert self.tmp_dir is not None
        return [
            self._dockerd,
            "--host", self.docker_host,
            "--data-root", str(self.tmp_dir / "root"),
            "--exec-root", str(self.tmp_dir / "exec"),
            "--pidfile", str(self.tmp_dir / "docker.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ]

    def _ready(self) -> bool:
        conn = _UnixHTTPConnection(str(self.socket_path))
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def _after_stop(self) -> None:
        if self.tmp_dir is None:
            return
        # dockerd leaves its network namespace bind-mounted; unmount it (and
        # anything else still mounted below the dir) before deleting the tree.
        mounts = []
        with open("/proc/self/mounts") as fh:
            for line in fh:
                target = line.split()[1].encode().decode("unicode_escape")
                if target.startswith(str(self.tmp_dir) + "/"):
                    mounts.append(target)
        netns = str(self.tmp_dir / "exec" / "netns" / "default")
        if netns not in mounts and os.path.exists(netns):
            mounts.append(netns)
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def docker(self, *args: str, timeout: float = 600, input: bytes | None = None) -> str:
        """Run the docker CLI against this engine; return stdout+stderr, raise on failure."""
        if input is not None:
            result = subprocess.run(
                [self._docker, *args], env=self.env, input=input,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
            )
            out = result.stdout.decode("utf-8", "replace")
            if result.returncode != 0:
                raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{out[-_LOG_TAIL_CHARS:]}")
            return out
        return _run([self._docker, *args], env=self.env, timeout=timeout, what=f"docker {' '.join(args)}")

    def client(self):
        """A docker-py ``DockerClient`` bound to this engine."""
        import docker

        return docker.DockerClient(base_url=self.docker_host)

    def image_exists(self, name_tag: str) -> bool:
        result = subprocess.run(
            [self._docker, "image", "inspect", name_tag], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def ensure_base_image(self, name_tag: str, suite: str = "bookworm") -> str:
        """Make ``name_tag`` a Debian ``suite`` minbase image with python3, venv, pip and CA certs.

        The rootfs tarball is built once per machine with debootstrap (~2 min)
        and cached as ``.test_services/debian-<suite>-python.tar``; later calls
        only ``docker import`` it (seconds), and calls on an engine that
        already has the tag return at once.
        """
        if self.image_exists(name_tag):
            return name_tag
        tarball = base_rootfs_tarball(suite)
        self.docker(
            "import",
            "--change", 'CMD ["python3"]',
            "--change", "ENV LANG=C.UTF-8",
            str(tarball),
            name_tag,
            timeout=600,
        )
        return name_tag


def base_rootfs_tarball(suite: str = "bookworm") -> Path:
    """Build (once, under a file lock) and return the cached Debian rootfs tarball."""
    cache = services_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"debian-{suite}-python.tar"
    if tarball.exists():
        return tarball
    with open(cache / f"debian-{suite}-python.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():  # another process built it while we waited
            return tarball
        if os.geteuid() != 0:
            raise RuntimeError("building the Docker base image with debootstrap needs root")
        debootstrap = _require_binary("debootstrap", ["/usr/sbin/debootstrap"])
        work = Path(tempfile.mkdtemp(prefix=f"rootfs-{suite}-", dir=cache))
        rootfs = work / "rootfs"
        try:
            _run(
                [
                    debootstrap,
                    "--variant=minbase",
                    "--include=" + ",".join(BASE_IMAGE_PACKAGES),
                    suite,
                    str(rootfs),
                    os.environ.get("LAKEFORMAT_DEBIAN_MIRROR", "http://deb.debian.org/debian"),
                ],
                what="debootstrap",
                timeout=1800,
            )
            host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
            if host_bundle.exists():
                # pip inside `RUN` fails TLS without the host's bundle (it may
                # carry a proxy's CA the Debian bundle lacks).
                target = rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt"
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                shutil.copyfile(host_bundle, target)
            # Smaller image: apt caches and lists are not needed at run time.
            for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in glob.glob(str(rootfs / sub / "*")):
                    if os.path.isfile(entry):
                        os.unlink(entry)
            partial = work / "rootfs.tar"
            _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], what="tar rootfs")
            os.replace(partial, tarball)
        finally:
            _rmtree_rootfs(rootfs)
            shutil.rmtree(work, ignore_errors=True)
    return tarball


def _rmtree_rootfs(rootfs: Path) -> None:
    """Delete a debootstrap tree, unmounting anything (proc, sys) it left mounted."""
    if not rootfs.exists():
        return
    with open("/proc/self/mounts") as fh:
        targets = [line.split()[1] for line in fh if line.split()[1].startswith(str(rootfs) + "/")]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(rootfs, ignore_errors=True)
