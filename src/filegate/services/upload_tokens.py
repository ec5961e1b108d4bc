"""Upload tokens: short-lived credentials a backend mints for one browser's uploads.

Random, shown once, stored as a SHA-256 digest like API keys. A token uploads into one
profile, each file at most ``max_size`` bytes, at most ``max_files`` uploads, and reads back
only the files it uploaded; every other route refuses it (``web/deps.py``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import structlog

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import UploadTokens
from filegate.domain import (
    Principal,
    Scope,
    UploadGrant,
    UploadTokenRecord,
    new_id,
    parse_id,
    utcnow,
)
from filegate.errors import ErrorCode, FilegateError

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "fgt_"  # noqa: S105 (a prefix, no secret)
# As for API keys: 32 random bytes are beyond brute force, so a fast digest is enough.
TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"^fgt_[A-Za-z0-9_-]{43}$")
# What a token may do on the routes that take one; the routes themselves narrow it further.
TOKEN_SCOPES = frozenset({Scope.UPLOAD, Scope.READ})

DEFAULT_SECONDS = 900
# A day: a token is for one page visit's uploads, not a standing credential.
MAX_SECONDS = 86_400
MAX_FILES = 1000
# Fixed metadata travels in every tus Upload-Metadata header (stored up to 4 KiB): keep it
# well inside that, whatever the browser adds.
MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 1024
_METADATA_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# The profile is the token's own field; letting metadata name one would be a second source.
_RESERVED_KEYS = frozenset({"profile"})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What the backend asks for; None: the default."""

    profile: str | None = None
    max_size: int | None = None
    max_files: int = 1
    metadata: Mapping[str, str] | None = None
    expires_in: int = DEFAULT_SECONDS


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    db: Database, settings: Settings, principal: Principal, wanted: TokenRequest
) -> tuple[UploadTokenRecord, str]:
    """Mint a token for ``principal``'s tenant; the raw token is returned here once."""
    policy = settings.profile(wanted.profile)
    max_size = policy.max_size if wanted.max_size is None else wanted.max_size
    if max_size > policy.max_size:
        raise _invalid(
            f"max_size {max_size} is above the {policy.name!r} profile's {policy.max_size}."
        )
    now = utcnow()
    grant = UploadGrant(
        profile=policy.name,
        max_size=max_size,
        max_files=wanted.max_files,
        metadata=_checked_metadata(wanted.metadata or {}),
        expires_at=now + timedelta(seconds=wanted.expires_in),
    )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    record = UploadTokenRecord(
        id=new_id(),
        tenant=principal.tenant,
        key_id=principal.key_id,
        grant=grant,
        files_created=0,
        created_at=now,
        revoked_at=None,
    )
    with db.session() as session:
        UploadTokens(session).add(record, hash_token(raw))
    log.info("upload_token.created", token_id=record.id, tenant=record.tenant)
    return record, raw


def _checked_metadata(metadata: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise _invalid(f"metadata holds at most {MAX_METADATA_KEYS} keys.")
    for key in metadata:
        if not _METADATA_KEY_RE.fullmatch(key) or key in _RESERVED_KEYS:
            raise _invalid(
                f"metadata key {key[:64]!r}: use 1-64 of A-Z a-z 0-9 _ . - "
                "(not 'profile': that is the token's own field)."
            )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise _invalid(f"metadata is {size} bytes; at most {MAX_METADATA_BYTES}.")
    return tuple(sorted(metadata.items()))


def authenticate_token(db: Database, raw: str) -> Principal | None:
    """The principal for a live upload token, or None (the caller answers as for a bad key)."""
    if not _TOKEN_RE.match(raw):
        return None
    with db.session() as session:
        record = UploadTokens(session).find_active(hash_token(raw), utcnow())
    if record is None:
        return None
    return Principal(
        key_id=record.id, tenant=record.tenant, scopes=TOKEN_SCOPES, grant=record.grant
    )


def revoke_token(db: Database, principal: Principal, token_id: str) -> None:
    """Revoke one of the tenant's tokens; uploads it started can no longer be continued."""
    try:
        parse_id(token_id)
    except FilegateError:
        raise _not_found(token_id) from None
    with db.session() as session:
        if not UploadTokens(session).revoke(token_id, principal.tenant, utcnow()):
            raise _not_found(token_id)
    log.info("upload_token.revoked", token_id=token_id, tenant=principal.tenant)


def take_upload(db: Database, principal: Principal) -> None:
    """Count a new upload against the token's ``max_files`` (nothing for an API key), or
    refuse it (403 ``upload_token_used_up``)."""
    grant = principal.grant
    if grant is None:
        return
    with db.session() as session:
        taken = UploadTokens(session).take_upload(principal.key_id, utcnow())
    if not taken:
        raise FilegateError(
            ErrorCode.UPLOAD_TOKEN_USED_UP,
            f"This upload token has already made its {grant.max_files} upload(s); "
            "ask the application for a new one.",
            max_files=grant.max_files,
        )


def give_back(db: Database, principal: Principal) -> None:
    """Uncount an upload that failed before it was created (nothing for an API key)."""
    if principal.grant is not None:
        with db.session() as session:
            UploadTokens(session).give_back(principal.key_id)


def check_profile(principal: Principal, asked: str | None) -> str | None:
    """The profile an upload goes to: a token's own; a token asking for another is refused."""
    grant = principal.grant
    if grant is None:
        return asked
    if asked is not None and asked != grant.profile:
        raise FilegateError(
            ErrorCode.FORBIDDEN,
            f"This upload token uploads into the {grant.profile!r} profile only, not {asked!r}.",
        )
    return grant.profile


def size_limit(principal: Principal, profile_max: int) -> int:
    """The most one file may hold: the profile's limit, or the token's when lower."""
    grant = principal.grant
    return profile_max if grant is None else min(profile_max, grant.max_size)


def _invalid(message: str) -> FilegateError:
    return FilegateError(ErrorCode.INVALID_REQUEST, message)


def _not_found(token_id: str) -> FilegateError:
    return FilegateError(
        ErrorCode.UPLOAD_TOKEN_NOT_FOUND, f"No active upload token with id {token_id[:26]!r}."
    )
