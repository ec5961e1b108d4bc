"""API keys: random, shown once, stored as a SHA-256 digest, scoped and bound to a tenant."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

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
