"""API keys: random, shown once, stored as a SHA-256 digest, scoped and bound to a tenant."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from filegate.db.engine import Database
from filegate.db.repository import ApiKeys
from filegate.domain import ApiKeyRecord, Principal, Scope, new_id, parse_choices, utcnow
from filegate.errors import ErrorCode, FilegateError
from filegate.services.upload_tokens import TOKEN_PREFIX, authenticate_token

KEY_PREFIX = "fgk_"
# 32 random bytes: far beyond brute force, which is why a fast hash (not bcrypt) is enough.
KEY_BYTES = 32
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEY_RE = re.compile(r"^fgk_[A-Za-z0-9_-]{43}$")
# An API process trusts a key it verified for this long without asking the database again.
# Keys are revoked in the database (``filegate keys revoke``, any process), so this bounds how
# long a revoked key keeps working on any API process: under one second, as promised
# (docs/decisions.md; tests/e2e/test_key_revocation.py).
VERIFIED_KEY_SECONDS = 0.5
VERIFIED_KEYS_KEPT = 1024


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def validate_tenant(tenant: str) -> str:
    if not _TENANT_RE.match(tenant):
        raise FilegateError(
            ErrorCode.INVALID_REQUEST,
            "Tenant names are 1-64 characters of lowercase a-z, 0-9, '-' and '_'.",
        )
    return tenant


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    return parse_choices(Scope, text, what="scope", empty="A key needs at least one scope.")


def create_key(
    db: Database, *, tenant: str, scopes: frozenset[Scope], name: str = ""
) -> tuple[ApiKeyRecord, str]:
    """Create a key; the raw key is returned here once and never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    record = ApiKeyRecord(
        id=new_id(),
        tenant=validate_tenant(tenant),
        name=name,
        prefix=raw[: len(KEY_PREFIX) + 6],
        scopes=scopes,
        created_at=utcnow(),
        revoked_at=None,
    )
    with db.session() as session:
        ApiKeys(session).add(record, hash_key(raw))
    return record, raw


class VerifiedKeys:
    """The API keys this process verified in the last ``seconds``: key digest -> principal.

    A key's age counts from before the database was asked, so a revocation committed after
    that answer is seen at most ``seconds`` later. Only keys that verified are kept (a wrong
    key always reaches the database, as it would without this), and at most ``kept`` of them.
    Upload tokens are not kept: each use is counted against its grant.
    """

    def __init__(
        self,
        seconds: float = VERIFIED_KEY_SECONDS,
        kept: int = VERIFIED_KEYS_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.kept = kept
        self.clock = clock
        self._keys: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def recent(self, raw: str) -> Principal | None:
        """The principal of ``raw`` if this process verified it in the last ``seconds``."""
        return self._fresh(hash_key(raw))

    def verify(self, db: Database, raw: str) -> Principal:
        """``raw``'s principal from the recent keys, else from the database (then kept)."""
        digest = hash_key(raw)
        principal = self._fresh(digest)
        if principal is not None:
            return principal
        asked_at = self.clock()
        principal = authenticate(db, raw)
        if principal.grant is None:
            with self._lock:
                self._keys[digest] = (asked_at, principal)
                self._keys.move_to_end(digest)
                while len(self._keys) > self.kept:
                    self._keys.popitem(last=False)
        return principal

    def _fresh(self, digest: str) -> Principal | None:
        entry = self._keys.get(digest)
        if entry is None or self.clock() - entry[0] >= self.seconds:
            return None
        return entry[1]


def authenticate(db: Database, raw: str) -> Principal:
    """The principal for a raw key or upload token, or ``unauthenticated`` (same answer for
    every failure: unknown, revoked, expired or malformed)."""
    if raw.startswith(TOKEN_PREFIX):
        principal = authenticate_token(db, raw)
        if principal is None:
            raise _unauthenticated()
        return principal
    # Checking the shape first keeps junk away from the database.
    if not _KEY_RE.match(raw):
        raise _unauthenticated()
    with db.session() as session:
        record = ApiKeys(session).find_active(hash_key(raw))
    if record is None:
        raise _unauthenticated()
    return Principal(key_id=record.id, tenant=record.tenant, scopes=record.scopes)


def list_keys(db: Database, tenant: str | None = None) -> list[ApiKeyRecord]:
    with db.session() as session:
        return ApiKeys(session).all(tenant)


def revoke_key(db: Database, key_id: str) -> None:
    with db.session() as session:
        if not ApiKeys(session).revoke(key_id, utcnow()):
            raise FilegateError(ErrorCode.KEY_NOT_FOUND, f"No active key with id {key_id!r}.")


def _unauthenticated() -> FilegateError:
    return FilegateError(ErrorCode.UNAUTHENTICATED, "A valid API key is required.")
