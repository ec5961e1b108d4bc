"""`filegate verify` against real services: PostgreSQL, Redis, clamd and SeaweedFS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from filegate.cli import app
from filegate.cli.runtime import make_storage
from filegate.config import Settings, load_settings
from filegate.db import migrate
from filegate.inspect.antivirus import ScannerConfig
from filegate.services.verify import Limits, verify
from tests.support.seaweed import S3Server, s3_settings
from tests.support.services import without_filegate_env

SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAREALLOOKING", "AWS_SECRET_ACCESS_KEY": "s3cr3t-of-40-chars"}


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    """Where public_url points: something answering /healthz, as the proxy would."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def staging(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: str,
    proxy: str,
) -> dict[str, object]:
    """Settings of a healthy staging deployment on the test services."""
    without_filegate_env(monkeypatch, tmp_path)
    database_url: str = request.getfixturevalue("fresh_postgres")
    scanner: ScannerConfig = request.getfixturevalue("clamd")
    server: S3Server = request.getfixturevalue("s3_server")
    migrate.upgrade(database_url)
    return {
        "data_dir": tmp_path / "var",
        "database_url": database_url,
        "queue_url": redis_server,
        "clamd_url": scanner.url,
        "scanner_required": True,
        "public_url": proxy,
        "embedded_worker": False,
        **s3_settings(server, request.getfixturevalue("s3_bucket"), monkeypatch),
    }


def run(settings: Settings, *, allow_local_signatures: bool = False) -> dict[str, tuple[bool, str]]:
    limits = Limits(allow_local_signatures=allow_local_signatures)
    findings = verify(settings, make_storage, limits, environ=SECRETS)
    return {f.check: (f.ok, f.detail) for f in findings}


def test_a_healthy_staging_passes_every_check(staging: dict[str, object]) -> None:
    found = run(load_settings(**staging), allow_local_signatures=True)
    assert all(ok for ok, _ in found.values()), found
    assert list(found) == ["database", "queue", "scanner", "storage", "public_url", "secrets"]
    assert "local signatures only" in found["scanner"][1]


def test_each_check_fails_on_what_it_guards(
    staging: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test clamd has local signatures only: no freshclam behind it.
    assert not run(load_settings(**staging))["scanner"][0]
    broken = load_settings(
        **{
            **staging,
            "database_url": f"sqlite:///{tmp_path / 'one-host.db'}",
            "queue_url": "",
            "scanner_required": False,
            "public_url": str(staging["public_url"]) + "/nowhere",
            "storage_url": "s3://no-such-bucket-for-filegate",
        }
    )
    found = verify(
        broken,
        make_storage,
        Limits(allow_local_signatures=True),
        {"AWS_SECRET_ACCESS_KEY": "change-me"},
    )
    failed = {f.check: f.detail for f in found if not f.ok}
    assert set(failed) == {"database", "queue", "scanner", "storage", "public_url", "secrets"}
    assert "not PostgreSQL" in failed["database"]
    assert "not on Redis" in failed["queue"]
    assert "scanner_required is false" in failed["scanner"]
    assert "NoSuchBucket" in failed["storage"]
    assert "answered 404" in failed["public_url"]
    assert "AWS_SECRET_ACCESS_KEY" in failed["secrets"]


def test_a_database_behind_its_migrations_fails(staging: dict[str, object]) -> None:
    migrate.downgrade(str(staging["database_url"]), "-1")
    ok, detail = run(load_settings(**staging), allow_local_signatures=True)["database"]
    assert not ok
    assert "filegate migrate" in detail


def test_the_command_prints_one_line_per_check_and_exits_1_on_a_failure(
    staging: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in staging.items():
        monkeypatch.setenv(f"FILEGATE_{name.upper()}", str(value))
    result = CliRunner().invoke(app, ["verify", "--allow-local-signatures"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok   config",
        "ok   database",
        "ok   queue",
        "ok   scanner",
        "ok   storage",
        "ok   public_url",
        "ok   secrets",
    ]
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "FAIL scanner: clamd answers, but reports no published signatures" in result.output
