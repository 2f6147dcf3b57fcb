"""RetryPolicy and the failure classification, and who owns the retries under each store."""
from __future__ import annotations

import pickle

import pytest

from lakeformat.errors import StorageError
from lakeformat.storage import FsspecStorage
from lakeformat.storage.retry import RetryPolicy, ShortReadError, is_transient


def test_policy_from_every_spelling(monkeypatch):
    assert RetryPolicy.coerce(3) == RetryPolicy(attempts=3)
    assert RetryPolicy.coerce({"attempts": 2, "base_delay_s": 0.5}) == RetryPolicy(2, 0.5)
    p = RetryPolicy(4, 0.01, 0.02)
    assert RetryPolicy.coerce(p) is p
    monkeypatch.setenv("LAKEFORMAT_STORAGE_RETRIES", "7")
    monkeypatch.setenv("LAKEFORMAT_STORAGE_RETRY_BASE_S", "0.25")
    assert RetryPolicy.coerce(None) == RetryPolicy(7, 0.25)
    for bad in (0, {"tries": 3}, "five", True):
        with pytest.raises(StorageError):
            RetryPolicy.coerce(bad)
    monkeypatch.setenv("LAKEFORMAT_STORAGE_RETRIES", "many")
    with pytest.raises(StorageError, match="LAKEFORMAT_STORAGE_RETRIES"):
        RetryPolicy.from_env()


def test_delays_grow_with_full_jitter():
    p = RetryPolicy(attempts=10, base_delay_s=0.1, max_delay_s=1.0)
    for k in range(1, 10):
        cap = min(1.0, 0.1 * 2 ** (k - 1))
        delays = [p.delay(k) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2  # spread over the whole interval, not pinned


def _client_error(status: int, code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def test_classification():
    transient = [_client_error(503, "SlowDown"), _client_error(500, "InternalError"), _client_error(429, "TooMany"),
                 ConnectionResetError(), TimeoutError(), ShortReadError("short")]
    permanent = [_client_error(404, "NoSuchKey"), _client_error(403, "AccessDenied"), _client_error(412, "PreconditionFailed"),
                 FileNotFoundError("k"), PermissionError(), ValueError("bad")]
    for e in transient:
        assert is_transient(e), e
    for e in permanent:
        assert not is_transient(e), e
    # s3fs turns a ClientError into an OSError raised from it: the cause decides
    try:
        try:
            raise _client_error(503, "SlowDown")
        except Exception as inner:
            raise OSError(16, "Please reduce your request rate") from inner
    except OSError as outer:
        assert is_transient(outer)


def test_run_retries_transient_failures_only():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return "ok"

    assert RetryPolicy(5, 0.0).run(flaky, "a read") == "ok" and len(calls) == 3
    calls.clear()

    def missing():
        calls.append(1)
        raise FileNotFoundError("k")

    with pytest.raises(FileNotFoundError):
        RetryPolicy(5, 0.0).run(missing, "a read")
    assert len(calls) == 1


def test_store_owns_the_retries_in_workers_too(s3_url, az_url):
    from loaders.reader import worker_storage

    for url, opts in (s3_url, az_url):
        store = FsspecStorage(url, {**opts, "retry": 3})
        assert store.retry.attempts == 3
        for s in (store, worker_storage(store), pickle.loads(pickle.dumps(store))):
            if url.startswith("s3://"):
                assert s.fs.retries == 1, (url, s.fs.retries)
                # (botocore adds its "mode" to this dict when it makes a client)
                assert s.fs.config_kwargs["retries"]["total_max_attempts"] == 1, s.fs.config_kwargs
            else:
                policy = s.fs.service_client._config.retry_policy
                assert policy.total_retries == 0, (type(policy).__name__, policy.total_retries)
            assert s.retry.attempts == 3, s.retry
    # botocore's retries stay when the options configure them
    url, opts = s3_url
    kept = FsspecStorage(url, {**opts, "config_kwargs": {"retries": {"max_attempts": 4}}})
    assert kept.fs.config_kwargs["retries"]["max_attempts"] == 4, kept.fs.config_kwargs
    assert "total_max_attempts" not in kept.fs.config_kwargs["retries"]
    assert kept.fs.retries == type(kept.fs).retries, kept.fs.retries
