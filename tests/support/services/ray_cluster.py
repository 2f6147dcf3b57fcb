"""A local Ray cluster with a fixed number of CPUs."""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import sys
import warnings
from pathlib import Path


from ._base import _make_tmp_dir, _tail

# --------------------------------------------------------------------------- Ray


_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


class Ray:
    """A local Ray instance: ``ray.init(num_cpus=2, include_dashboard=False)``.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps Ray on loopback (Ray reads
    it when first imported) and ``RAY_AUTH_MODE=disabled`` keeps it from
    writing a token under ``~/.ray``; both are set before importing ray.
    Attributes: ``context`` (what ``ray.init`` returned), ``address``.
    """

    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        self.context = None
        self.tmp_dir: Path | None = None

    def start(self) -> "Ray":
        if self.context is not None:
            return self
        os.environ.update(_RAY_ENV)
        already_imported = "ray" in sys.modules
        import ray

        if already_imported:
            from ray._private import ray_constants

            if getattr(ray_constants, "ENABLE_RAY_CLUSTER", False):
                warnings.warn(
                    "ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set; it may "
                    "listen on every interface. Load tests.support.pytest_plugin first.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        atexit.register(self.stop)
        self.tmp_dir = _make_tmp_dir("ray")
        try:
            self.context = ray.init(
                num_cpus=self.num_cpus,
                include_dashboard=False,
                _temp_dir=str(self.tmp_dir),
                ignore_reinit_error=False,
                log_to_driver=False,
            )
        except BaseException as exc:
            logs = _tail_ray_logs(self.tmp_dir)
            self.stop()
            raise RuntimeError(f"ray.init failed: {exc!r}\n--- ray logs ---\n{logs}") from exc
        return self

    @property
    def address(self) -> str | None:
        return None if self.context is None else self.context.address_info.get("address")

    def stop(self) -> None:
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        self.context = None
        if self.tmp_dir is not None and os.environ.get("LAKEFORMAT_KEEP_SERVICE_DIRS") != "1":
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir = None

    def __enter__(self) -> "Ray":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _tail_ray_logs(tmp_dir: Path | None) -> str:
    if tmp_dir is None:
        return ""
    parts = []
    for path in sorted(glob.glob(str(tmp_dir / "session_latest" / "logs" / "*.err")))[-4:]:
        parts.append(f"== {path}\n{_tail(Path(path), 1000)}")
    return "\n".join(parts) or "(no ray logs)"
