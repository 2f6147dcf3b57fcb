"""Object stores behind a fault-injecting proxy (tests/support/fault_proxy.py)."""
from __future__ import annotations

import os
import uuid
from typing import Callable, Iterator, Tuple

import pytest

from tests.support.fault_proxy import FaultProxy, FaultSchedule

#: `make test-long` (LAKEFORMAT_KILL_EXHAUSTIVE=1) or LAKEFORMAT_FAULTS_LONG=1: more seeds and kinds
LONG = os.environ.get("LAKEFORMAT_KILL_EXHAUSTIVE") == "1" or os.environ.get("LAKEFORMAT_FAULTS_LONG") == "1"

#: fast retries, and client timeouts short enough that a hung request is a timeout in seconds
RETRY = {"attempts": 8, "base_delay_s": 0.01, "max_delay_s": 0.2}
TIMEOUT_S = 1
HANG_S = 2.5


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["s3", "azure"])
def faulty_store(request) -> Iterator[Callable[[FaultSchedule], Tuple[str, dict, dict, FaultProxy]]]:
    """A function of a schedule returning (url, options through the proxy, options straight
    to the emulator, proxy): one fresh bucket (container) per test, on moto and on azurite."""
    proxies = []
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server.make_bucket(_unique("faults"))
        url = f"s3://{bucket}/{_unique('data')}"

        def options(endpoint: str, proxied: bool) -> dict:
            opts = server.storage_options_for(endpoint)
            if proxied:
                opts["config_kwargs"] = {"read_timeout": TIMEOUT_S, "connect_timeout": TIMEOUT_S}
            return opts
    else:
        server = request.getfixturevalue("azure_server")
        container = server.make_container(_unique("faults"))
        url = f"az://{container}/{_unique('data')}"

        def options(endpoint: str, proxied: bool) -> dict:
            opts = dict(server.storage_options)
            opts["connection_string"] = server.connection_string.replace(server.endpoint_url, endpoint + "/" + server.account_name)
            if proxied:
                opts.update(read_timeout=TIMEOUT_S, connection_timeout=TIMEOUT_S)
            return opts

    def make(schedule: FaultSchedule, latency_s: float = 0.0):
        proxy = FaultProxy(server.port, schedule, hang_s=HANG_S, latency_s=latency_s).start()
        proxies.append(proxy)
        direct = options(f"http://{server.host}:{server.port}", False)
        return url, {**options(proxy.endpoint_url, True), "retry": dict(RETRY)}, direct, proxy

    make.kind = request.param
    yield make
    for p in proxies:
        p.stop()
