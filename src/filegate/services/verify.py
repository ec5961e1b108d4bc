"""``filegate verify``: is this configuration, against the services it names, fit to serve?

The release checklist's "verify staging config" step, and the first thing to run on a new
host. Each check reaches the real service and says what it found in one line; any failure
makes the command exit 1. Where ``check-config`` asks "is the file valid?", this asks "would
a deployment of several processes on these settings be safe and working right now?".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import redis

from filegate.config import Settings
from filegate.db import migrate
from filegate.db.engine import Database
from filegate.errors import FilegateError
from filegate.inspect import antivirus
from filegate.storage.base import Storage

# Values that mean "nobody set this": the env example's placeholders and well-known defaults.
PLACEHOLDERS = frozenset(
    {"change-me", "changeme", "change_me", "example", "password", "secret", "admin", "minioadmin"}
)
# Variables whose values are secrets (besides passwords inside URLs).
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
HTTP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Limits:
    # Signatures older than this mean freshclam is not updating them.
    max_signature_age_days: float = 3.0
    # A scanner with local signatures only (no published date): a test stack, never production.
    allow_local_signatures: bool = False


def verify(
    settings: Settings,
    make_storage: Callable[[Settings], Storage],
    limits: Limits,
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every check, in a fixed order; a check that raises is a failure, never a crash."""
    checks: list[tuple[str, Callable[[], str]]] = [
        ("database", lambda: _database(settings)),
        ("queue", lambda: _queue(settings)),
        ("scanner", lambda: _scanner(settings, limits)),
        ("storage", lambda: _storage(settings, make_storage(settings))),
        ("public_url", lambda: _public_url(settings)),
        ("secrets", lambda: _secrets(settings, os.environ if environ is None else environ)),
    ]
    return [_run(name, check) for name, check in checks]


class Failed(Exception):
    """A check's failure, with the sentence to print."""


def _run(name: str, check: Callable[[], str]) -> Finding:
    started = time.monotonic()
    try:
        detail = check()
        ok = True
    except Failed as exc:
        detail, ok = str(exc), False
    except FilegateError as exc:
        reason = exc.extra.get("reason")
        detail, ok = exc.message + (f" ({reason})" if reason else ""), False
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    return Finding(name, ok, f"{detail} [{time.monotonic() - started:.2f}s]")


def _database(settings: Settings) -> str:
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        raise Failed("not PostgreSQL: several processes need a shared database")
    database = Database(url)
    try:
        database.ping()
    finally:
        database.dispose()
    if not migrate.is_current(url):
        raise Failed("reachable, but not at the newest migration (run `filegate migrate`)")
    return "PostgreSQL reachable, schema at the newest migration"


def _queue(settings: Settings) -> str:
    url = settings.resolved_queue_url
    if not url.startswith(("redis://", "rediss://")):
        raise Failed("not on Redis: workers on other hosts cannot take jobs from a local file")
    client = redis.Redis.from_url(url, socket_connect_timeout=HTTP_SECONDS)
    try:
        client.ping()
    finally:
        client.close()
    return "Redis answers PING"


def _scanner(settings: Settings, limits: Limits) -> str:
    if not settings.scanner_required:
        raise Failed("scanner_required is false: a file could be promoted unscanned")
    if not settings.clamd_url:
        raise Failed("no clamd_url")
    config = antivirus.ScannerConfig(settings.clamd_url, settings.scanner_timeout_seconds)
    if not antivirus.ping(config):
        raise Failed("clamd does not answer PING")
    published = antivirus.signatures_date(config)
    if published is None:
        if limits.allow_local_signatures:
            return "clamd answers; local signatures only (allowed for this stack)"
        raise Failed("clamd answers, but reports no published signatures (is freshclam running?)")
    age_days = (datetime.now(UTC) - published).total_seconds() / 86400
    if age_days > limits.max_signature_age_days:
        raise Failed(
            f"signatures are {age_days:.1f} days old (limit {limits.max_signature_age_days:g})"
        )
    return f"clamd answers, signatures {age_days:.1f} days old"


def _storage(settings: Settings, storage: Storage) -> str:
    storage.check()
    if not settings.storage_url:
        raise Failed("local disk: API processes and workers on other hosts cannot share it")
    exposed = storage.public_access()
    if exposed:
        raise Failed(f"writable, but anyone can {' and '.join(exposed)}")
    return "bucket writable with the credentials, refused without them"


def _public_url(settings: Settings) -> str:
    if not settings.public_url:
        raise Failed("public_url is not set: links and tus Locations would name the wrong host")
    url = settings.public_url.rstrip("/") + "/healthz"
    answer = httpx.get(url, timeout=HTTP_SECONDS, follow_redirects=False)
    if answer.status_code != 200:
        raise Failed(f"{url} answered {answer.status_code}")
    return f"{url} answers 200"


def _secrets(settings: Settings, environ: Mapping[str, str]) -> str:
    found = sorted(set(_placeholders(settings, environ)))
    if found:
        raise Failed(f"example or default values in {', '.join(found)}")
    return "no example or default secrets"


def _placeholders(settings: Settings, environ: Mapping[str, str]) -> Iterator[str]:
    for name in SECRET_VARIABLES:
        if _is_placeholder(environ.get(name, "")):
            yield name
    for name in ("database_url", "queue_url", "clamd_url"):
        password = urlsplit(str(getattr(settings, name) or "")).password
        if password is not None and _is_placeholder(password):
            yield name


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return bool(lowered) and (lowered in PLACEHOLDERS or "change-me" in lowered)
