"""Per-tenant quotas (bytes and files kept, uploads under way) and the usage they are read from.

The database is the truth, so every API process sees the same numbers. A check reads the
usage and then the caller inserts; two uploads that pass at the same instant can overshoot a
quota by what they add, which is bounded by ``max_concurrent_uploads`` per process.
"""

from __future__ import annotations

from dataclasses import dataclass

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Files, Uploads
from filegate.domain import utcnow
from filegate.errors import ErrorCode, FilegateError
from filegate.services.ratelimits import RateLimiter


@dataclass(frozen=True, slots=True)
class Usage:
    stored_files: int
    stored_bytes: int
    in_flight_uploads: int
    in_flight_bytes: int


def usage(db: Database, settings: Settings, tenant: str, *, stored: bool = True) -> Usage:
    """What ``tenant`` keeps and has under way. A deferred length counts as its profile's
    ``max_size``: that is what the upload may still become. ``stored=False`` leaves out what
    it keeps (zeros): that sum reads every file row of the tenant."""
    with db.session() as session:
        files, size = Files(session).stored(tenant) if stored else (0, 0)
        groups = Uploads(session).in_flight(tenant, utcnow())
    in_flight = sum(
        declared + deferred * _max_size(settings, profile)
        for profile, _, declared, deferred in groups
    )
    return Usage(
        stored_files=files,
        stored_bytes=size,
        in_flight_uploads=sum(uploads for _, uploads, _, _ in groups),
        in_flight_bytes=in_flight,
    )


def _max_size(settings: Settings, profile: str) -> int:
    known = settings.profiles.get(profile)
    return int(known.max_size) if known is not None else settings.largest_max_size


def check_room(
    db: Database, settings: Settings, tenant: str, adding: int, *, resumable: bool
) -> None:
    """Refuse (413 ``quota_exceeded``) a new upload of ``adding`` bytes that would take the
    tenant past a quota. A resumable upload also counts against the in-flight quotas; what is
    under way counts against the stored quotas too, since it is about to be kept."""
    quotas = settings.quotas
    checks_stored = bool(quotas.stored_bytes or quotas.stored_files)
    checks_in_flight = resumable and bool(quotas.in_flight_bytes or quotas.in_flight_uploads)
    if not (checks_stored or checks_in_flight):
        return  # nothing to check: no query on the upload path
    # Uploads under way are few; the files kept can be millions, so they are only summed
    # when a quota on them is set.
    now = usage(db, settings, tenant, stored=checks_stored)
    wanted = [
        ("stored_bytes", int(quotas.stored_bytes), now.stored_bytes + now.in_flight_bytes, adding),
        ("stored_files", quotas.stored_files, now.stored_files + now.in_flight_uploads, 1),
    ]
    if resumable:
        wanted.append(("in_flight_bytes", int(quotas.in_flight_bytes), now.in_flight_bytes, adding))
        wanted.append(("in_flight_uploads", quotas.in_flight_uploads, now.in_flight_uploads, 1))
    for name, limit, used, more in wanted:
        if limit and used + more > limit:
            raise FilegateError(
                ErrorCode.QUOTA_EXCEEDED,
                f"This upload would take the tenant past its {name} quota "
                f"({used} used of {limit}).",
                quota=name,
                limit=limit,
                used=used,
            )


def admit_upload(
    db: Database,
    settings: Settings,
    limiter: RateLimiter,
    tenant: str,
    adding: int,
    *,
    resumable: bool,
) -> None:
    """Let a new upload start, or refuse it: quotas first (a refused upload should not use up
    the tenant's rate), then the per-minute rate."""
    check_room(db, settings, tenant, adding, resumable=resumable)
    limiter.upload(tenant)
