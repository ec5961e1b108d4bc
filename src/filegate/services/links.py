"""Share links: a URL that serves one clean file without an API key, for a while.

``/v1/share/<file id>/<first 16 hex of its sha256>?k=<key id>&e=<expiry>&d=<a|i>&l=<link id>
&s=<signature>``. The signature (HMAC-SHA256 under the key named by ``k``) covers every part
of the URL, so a changed id, hash, expiry, disposition, link or key id is refused before the
database is asked. The URL names the content hash, so a cache may key the file's bytes by it
and keep them until the link expires. The link's row holds what a URL cannot: downloads used
(links limited to N) and revocation.

Keys: ``FILEGATE_LINK_KEYS="kid=secret,kid2=secret2"`` (the first signs, all verify; removing
a key id revokes every link it signed), or, for a single host, a key generated once into
``data_dir/link-keys``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import structlog

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Files, ShareLinks
from filegate.domain import FileRecord, FileState, Principal, ShareLinkRecord, new_id, utcnow
from filegate.errors import ErrorCode, FilegateError

log = structlog.get_logger(__name__)

HASH_CHARS = 16
MAX_DOWNLOADS = 1_000_000
KEYS_FILE = "link-keys"
DISPOSITIONS = {"attachment": "a", "inline": "i"}


@dataclass(frozen=True, slots=True)
class LinkKeys:
    signing: str
    keys: dict[str, bytes]


def link_keys(settings: Settings) -> LinkKeys:
    """The configured keys, else this host's own (generated on first use, mode 0600); read
    and parsed once per configuration, not on every share request."""
    return _parsed_keys(settings.link_keys.get_secret_value().strip(), settings.data_dir)


@functools.lru_cache(maxsize=8)
def _parsed_keys(text: str, data_dir: Path) -> LinkKeys:
    if not text:
        text = _local_keys(data_dir / KEYS_FILE)
    pairs = []
    for part in text.split(","):
        kid, _, secret = part.strip().partition("=")
        if not kid or len(secret) < 16 or not kid.isalnum() or len(kid) > 32:
            raise FilegateError(
                ErrorCode.CONFIG_INVALID,
                "link_keys: use kid=secret pairs (key ids of letters and digits, secrets of at "
                "least 16 characters), separated by commas",
            )
        pairs.append((kid, secret.encode()))
    return LinkKeys(signing=pairs[0][0], keys=dict(pairs))


def _local_keys(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"local{secrets.token_hex(2)}={secrets.token_urlsafe(32)}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text + "\n")
    return path.read_text().strip()


def _signature(key: bytes, fields: list[str]) -> str:
    mac = hmac.new(key, "\n".join(["filegate-link-v1", *fields]).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def _fields(*parts: object) -> list[str]:
    """What a signature covers: file id, hash, key id, expiry, disposition, link id."""
    return [str(part) for part in parts]


@dataclass(frozen=True, slots=True)
class NewLink:
    record: ShareLinkRecord
    path: str  # /v1/share/... with its query


def create(
    db: Database,
    settings: Settings,
    principal: Principal,
    file_id: str,
    *,
    seconds: int | None,
    disposition: str,
    max_downloads: int | None,
) -> NewLink:
    """A link to the caller's clean file, within its profile's limits."""
    with db.session() as session:
        record = Files(session).get(file_id, principal.tenant)
    if record is None:
        raise FilegateError(ErrorCode.FILE_NOT_FOUND, "No such file.")
    if record.state is not FileState.CLEAN:
        raise FilegateError(ErrorCode.FILE_NOT_READY, "Only clean files can be shared.")
    limits = (
        settings.profiles[record.profile].links if record.profile in settings.profiles else None
    )
    if limits is None:
        raise FilegateError(ErrorCode.LINK_NOT_ALLOWED, "The file's profile no longer exists.")
    lifetime = limits.default_seconds if seconds is None else seconds
    if not 60 <= lifetime <= limits.max_seconds:
        raise FilegateError(
            ErrorCode.LINK_NOT_ALLOWED,
            f"A link lives between 60 and {limits.max_seconds} seconds for this profile.",
        )
    if disposition == "inline" and (record.detected_type or "") not in limits.inline_types:
        raise FilegateError(
            ErrorCode.LINK_NOT_ALLOWED,
            f"{record.detected_type or 'This type'} is never shown inline; inline types: "
            f"{', '.join(limits.inline_types) or 'none'}.",
        )
    if max_downloads is not None and not 1 <= max_downloads <= MAX_DOWNLOADS:
        raise FilegateError(ErrorCode.LINK_NOT_ALLOWED, "max_downloads is 1 or more.")
    keys = link_keys(settings)
    now = utcnow()
    expires = int((now + timedelta(seconds=lifetime)).timestamp())
    link = ShareLinkRecord(
        id=new_id(),
        file_id=record.id,
        tenant=record.tenant,
        key_id=keys.signing,
        disposition=disposition,
        max_downloads=max_downloads,
        downloads=0,
        created_at=now,
        expires_at=datetime.fromtimestamp(expires, UTC),
        revoked_at=None,
    )
    with db.session() as session:
        ShareLinks(session).add(link)
    digest = record.sha256[:HASH_CHARS]
    flag = DISPOSITIONS[disposition]
    fields = _fields(record.id, digest, keys.signing, expires, flag, link.id)
    query = {"k": keys.signing, "e": expires, "d": flag, "l": link.id}
    query["s"] = _signature(keys.keys[keys.signing], fields)
    log.info("link.created", file_id=record.id, link_id=link.id, seconds=lifetime)
    return NewLink(link, f"/v1/share/{record.id}/{digest}?{urlencode(query)}")


@dataclass(frozen=True, slots=True)
class Shared:
    file: FileRecord
    link: ShareLinkRecord
    seconds_left: int


def _invalid() -> FilegateError:
    # Nothing about the file: a guessed or edited link learns only that it is not valid.
    return FilegateError(ErrorCode.LINK_INVALID, "This link is not valid.")


def resolve(
    db: Database,
    settings: Settings,
    file_id: str,
    digest: str,
    query: dict[str, str],
    *,
    download: bool,
) -> Shared:
    """The file a share link serves, after checking it; ``download`` counts one use."""
    kid, flag, link_id, signature = (query.get(k, "") for k in ("k", "d", "l", "s"))
    try:
        expires = int(query.get("e", ""))
    except ValueError:
        raise _invalid() from None
    key = link_keys(settings).keys.get(kid)
    if key is None or flag not in DISPOSITIONS.values() or not signature:
        raise _invalid()
    expected = _signature(key, _fields(file_id, digest, kid, expires, flag, link_id))
    if not hmac.compare_digest(expected, signature):
        raise _invalid()
    seconds_left = expires - int(utcnow().timestamp())
    if seconds_left <= 0:
        raise _invalid()
    with db.session() as session:
        link = ShareLinks(session).get(link_id)
        if link is None or link.revoked_at is not None or link.file_id != file_id:
            raise _invalid()
        record = Files(session).get(file_id, link.tenant)
        if record is None or record.state is not FileState.CLEAN:
            raise FilegateError(ErrorCode.LINK_GONE, "The shared file is gone.")
        if not record.sha256.startswith(digest):
            raise FilegateError(ErrorCode.LINK_GONE, "The shared file is gone.")
        limited = download and link.max_downloads is not None
        if limited and not ShareLinks(session).count_download(link.id):
            raise _invalid()
    return Shared(record, link, seconds_left)


def revoke(db: Database, principal: Principal, file_id: str, link_id: str) -> None:
    with db.session() as session:
        revoked = ShareLinks(session).revoke(link_id, principal.tenant, file_id, utcnow())
    if not revoked:
        raise FilegateError(ErrorCode.NOT_FOUND, "No such link.")
    log.info("link.revoked", file_id=file_id, link_id=link_id)
