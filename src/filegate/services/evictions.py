"""Purging shared caches when a file stops being servable: deleted, rejected, a link revoked.

Responses a cache may keep carry ``Surrogate-Key: file-<id> link-<id>`` (docs/caching.md).
When one of those stops being true, an ``evict`` job for the key sends a purge to every
``cache.purge_urls`` (Varnish: ``BAN`` with the key in ``Surrogate-Key``; a CDN's hook: the
method it wants), retried with backoff until every one acknowledged with a 2xx. The job's
subject is the key, so a purge already queued for it is not queued twice.
"""

from __future__ import annotations

import httpx
import structlog

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Jobs
from filegate.domain import JobKind
from filegate.jobs.base import ExpectedJobFailure, JobQueue

log = structlog.get_logger(__name__)

PURGE_SECONDS = 10.0
# Cache keys are ours: file-<ULID> or link-<ULID>; nothing else is ever sent in the header.
KEY_PREFIXES = ("file-", "link-")


def request(db: Database, queue: JobQueue, settings: Settings, keys: list[str]) -> None:
    """Queue a purge of each key, when caches to purge are configured."""
    if not settings.cache.purge_urls:
        return
    with db.session() as session:
        jobs = [job for key in keys if (job := Jobs(session).want(JobKind.EVICT, key))]
    queue.dispatch(jobs)


def evict(settings: Settings, key: str) -> str:
    """Send the purge of ``key`` to every cache; fail (and so retry) unless all said 2xx."""
    if not key.startswith(KEY_PREFIXES):
        return "nothing_to_do"
    refused = []
    with httpx.Client(timeout=PURGE_SECONDS, follow_redirects=False) as client:
        for url in settings.cache.purge_urls:
            try:
                answer = client.request(
                    settings.cache.purge_method, url, headers={"Surrogate-Key": key}
                )
            except httpx.HTTPError as exc:
                refused.append(f"{url}: {type(exc).__name__}")
                continue
            if not answer.is_success:
                refused.append(f"{url}: {answer.status_code}")
    if refused:
        raise ExpectedJobFailure(f"purge of {key} not acknowledged by {', '.join(refused)}")
    log.info("cache.evicted", key=key, caches=len(settings.cache.purge_urls))
    return "evicted"
