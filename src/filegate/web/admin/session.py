"""The console's session cookie and CSRF tokens, signed with the share-link keyring.

The cookie names the admin key by id, never holds the key itself:
``v1.<kid>.<key id>.<session id>.<expiry>.<signature>``, the signature an HMAC-SHA256 under
the keyring's key ``kid`` (``FILEGATE_LINK_KEYS``, or ``data_dir/link-keys``), so rotating the
keyring ends every session as it retires links. Each request checks the key again in the
database (services.review.reviewer): revoking it ends its sessions at once.

A form's CSRF token is an HMAC of the session id (a different message than the cookie's), so
it is bound to one session and needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from filegate.config import Settings
from filegate.services.links import link_keys

COOKIE = "filegate_admin"
# A working day: long enough for a review session, short enough that a cookie left on a
# shared machine is dead by the next morning.
SESSION_SECONDS = 8 * 3600
_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    session_id: str
    expires: int
    kid: str


def _mac(key: bytes, purpose: str, *fields: str) -> str:
    message = "\n".join([f"filegate-admin-{purpose}-v1", *fields]).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(settings: Settings, key_id: str) -> tuple[str, Session]:
    """A new session for the admin key ``key_id``, and its cookie value."""
    keys = link_keys(settings)
    session = Session(
        key_id=key_id,
        session_id=secrets.token_urlsafe(16),
        expires=int(time.time()) + SESSION_SECONDS,
        kid=keys.signing,
    )
    fields = (session.key_id, session.session_id, str(session.expires))
    signature = _mac(keys.keys[keys.signing], "session", *fields)
    return ".".join([_VERSION, session.kid, *fields, signature]), session


def read(settings: Settings, value: str | None) -> Session | None:
    """The session a cookie value carries, if its signature holds and it has not expired."""
    parts = (value or "").split(".")
    if len(parts) != 6 or parts[0] != _VERSION:
        return None
    _, kid, key_id, session_id, expires, signature = parts
    key = link_keys(settings).keys.get(kid)
    if key is None or not expires.isdigit():
        return None
    expected = _mac(key, "session", key_id, session_id, expires)
    if not hmac.compare_digest(expected, signature) or int(expires) <= time.time():
        return None
    return Session(key_id=key_id, session_id=session_id, expires=int(expires), kid=kid)


def csrf_token(settings: Settings, session: Session) -> str:
    return _mac(link_keys(settings).keys[session.kid], "csrf", session.session_id)


def csrf_valid(settings: Settings, session: Session, token: str) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(settings, session), token)
