"""Services the tests talk to for real: skip on a laptop without them, fail under CI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def postgres_admin_url() -> str:
    return os.environ.get("FILEGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("FILEGATE_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def require_service(name: str, target: str, probe: Callable[[str], None]) -> None:
    """Run ``probe(target)``; when it fails, skip with the reason, or fail if CI is set."""
    try:
        probe(target)
    except Exception as exc:
        reason = f"{name} is not reachable at {_redact(target)}: {type(exc).__name__}: {exc}"
        if in_ci():
            pytest.fail(f"{reason} (CI is set, so a missing service is a failure)")
        pytest.skip(reason)


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://…@{rest.split('@', 1)[1]}"


def forget_redis_keys(url: str, name: str) -> None:
    """Delete every key of the queue (and rate limits) named ``name`` from the Redis at ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{name}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def without_filegate_env(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Path:
    """No FILEGATE_* variables and ``workdir`` as the working directory: nothing leaks in."""
    for name in list(os.environ):
        if name.startswith("FILEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(workdir)
    return workdir


def stop_process(process: subprocess.Popen[bytes], seconds: float = 10.0) -> None:
    """TERM, then KILL if it is still there after ``seconds``; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
