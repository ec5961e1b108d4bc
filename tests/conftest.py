"""Fixtures shared by every suite: database backends, storage, a runtime, an API client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from filegate.cli import build_runtime
from filegate.config import Settings, load_settings
from filegate.db import migrate
from filegate.db.engine import Database
from filegate.domain import Scope
from filegate.inspect.antivirus import ScannerConfig
from filegate.inspect.sandbox import Sandbox
from filegate.jobs.worker import Worker
from filegate.services.keys import create_key
from filegate.services.runtime import Runtime
from filegate.web.app import create_app
from tests.support.clamd import running_clamd
from tests.support.seaweed import S3Server, fresh_bucket, running_seaweedfs
from tests.support.services import (
    forget_redis_keys,
    postgres_admin_url,
    redis_url,
    require_service,
    without_filegate_env,
)

DB_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL server (skip, or fail under CI, if none)."""
    url = postgres_admin_url()
    require_service("PostgreSQL", url, _postgres_ok)
    return url


def _postgres_ok(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The URL of a reachable Redis (skip, or fail under CI, if none)."""
    url = redis_url()
    require_service("Redis", url, _redis_ok)
    return url


def _redis_ok(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


QUEUES = ["sqlite-queue", pytest.param("redis-queue", marks=pytest.mark.redis)]


@pytest.fixture(params=QUEUES)
def queue_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """``settings`` on each queue engine: the SQLite queue file, and the real Redis."""
    if request.param == "sqlite-queue":
        yield settings
        return
    url: str = request.getfixturevalue("redis_server")
    name = f"filegate-test-{uuid.uuid4().hex[:12]}"
    yield settings.model_copy(update={"queue_url": url, "queue_name": name})
    forget_redis_keys(url, name)


@pytest.fixture
def fresh_postgres(postgres_server: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    name = f"filegate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        postgres_server.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = postgres_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=DB_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'filegate.db'}"
    url: str = request.getfixturevalue("fresh_postgres")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate.upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Built-in defaults on a temporary data dir, untouched by the caller's environment."""
    without_filegate_env(monkeypatch, tmp_path)
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url)
    migrate.upgrade(database_url)
    return settings


@dataclass
class Api:
    """An in-process app on a real database and disk; ``inspect()`` runs the queued jobs."""

    client: TestClient
    runtime: Runtime
    worker: Worker
    keys: dict[str, str]

    def auth(self, who: str = "a") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def inspect(self, wait_seconds: float = 0.0) -> int:
        """Run every due job (inspect, promote, deliver) in this thread; returns how many."""
        return self.worker.drain(wait_seconds)

    def upload(
        self, data: bytes, name: str = "photo.png", who: str = "a", **form: str
    ) -> httpx.Response:
        files = {"file": (name, data, "application/octet-stream")}
        return self.client.post("/v1/files", files=files, data=form, headers=self.auth(who))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One inspection child process for the whole session: starting one costs about a second."""
    shared = Sandbox()
    yield shared
    shared.close()


@pytest.fixture
def api(settings: Settings, sandbox: Sandbox) -> Iterator[Api]:
    with running_api(settings, sandbox) as built:
        yield built


@contextmanager
def running_api(settings: Settings, sandbox: Sandbox) -> Iterator[Api]:
    """The app on ``settings`` with keys for two tenants; jobs run only when ``inspect()`` asks."""
    runtime, worker = build_runtime(settings, run_job=sandbox.run)
    keys = {
        "a": create_key(runtime.db, tenant="tenant-a", scopes=ALL_SCOPES)[1],
        "b": create_key(runtime.db, tenant="tenant-b", scopes=ALL_SCOPES)[1],
        "a-read": create_key(runtime.db, tenant="tenant-a", scopes=frozenset({Scope.READ}))[1],
        "a-upload": create_key(runtime.db, tenant="tenant-a", scopes=frozenset({Scope.UPLOAD}))[1],
    }
    app = create_app(runtime)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client=client, runtime=runtime, worker=worker, keys=keys)
    finally:
        runtime.db.dispose()


ALL_SCOPES = frozenset({Scope.UPLOAD, Scope.READ})


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScannerConfig]:
    """A real clamd for the session (skipped without one, failed under CI)."""
    with running_clamd(tmp_path_factory.mktemp("clamd")) as scanner:
        yield scanner


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) for the session (skipped without one, failed under CI)."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    """One bucket for the session; each test works under a prefix of its own."""
    return fresh_bucket(s3_server)
