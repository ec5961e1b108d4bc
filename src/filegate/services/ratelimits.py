"""Rate limits: requests per key per second and new uploads per tenant per minute.

Counted by the ``limits`` library in Redis when the job queue is on Redis (so every API
process shares the counts), in this process's memory otherwise. A limiter that cannot reach
Redis lets requests through rather than turning a Redis outage into an API outage: the
failure is logged and counted, ``/readyz`` already reports the broker, and the limiter tries
Redis again after ``RETRY_BROKEN_SECONDS``.
"""

from __future__ import annotations

import math
import threading
import time

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from filegate import metrics
from filegate.config import Settings
from filegate.errors import ErrorCode, FilegateError

log = structlog.get_logger(__name__)

# A Redis that does not answer within this costs each request at most this long, once.
REDIS_TIMEOUT_SECONDS = 0.5
# After a Redis failure, limits are skipped this long instead of waiting on every request.
RETRY_BROKEN_SECONDS = 5.0
# Sign-ins to the review console per client address per minute: a person pastes a key a few
# times; a script trying keys (hopeless against 256 random bits anyway) is slowed and counted.
LOGIN_ATTEMPTS_PER_MINUTE = 10


def _storage(settings: Settings) -> Storage:
    if settings.queue_url.startswith(("redis://", "rediss://")):
        return RedisStorage(
            settings.queue_url,
            key_prefix=f"{settings.queue_name}:limits",
            wrap_exceptions=True,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
    return MemoryStorage()


class RateLimiter:
    """The limits of one API process (whose counts may live in a shared Redis)."""

    def __init__(self, settings: Settings) -> None:
        quotas = settings.quotas
        self.shared = settings.queue_url.startswith(("redis://", "rediss://"))
        self._limiter = SlidingWindowCounterRateLimiter(_storage(settings))
        self._requests = _item(RateLimitItemPerSecond, quotas.requests_per_second)
        self._uploads = _item(RateLimitItemPerMinute, quotas.uploads_per_minute)
        self._logins = _item(RateLimitItemPerMinute, LOGIN_ATTEMPTS_PER_MINUTE)
        self._broken_until = 0.0
        self._lock = threading.Lock()

    @property
    def request_waits(self) -> bool:
        """Whether counting a request is network I/O (a limit kept in a shared Redis), which
        must stay off the event loop; an in-process count is not."""
        return self.shared and self._requests is not None

    def request(self, key_id: str) -> None:
        """Count one request by ``key_id``; 429 ``rate_limited`` past the limit."""
        self._hit(self._requests, "key", key_id, what="requests per second for this key")

    def upload(self, tenant: str) -> None:
        """Count one new upload by ``tenant``; 429 ``rate_limited`` past the limit."""
        self._hit(self._uploads, "uploads", tenant, what="new uploads per minute for this tenant")

    def login(self, address: str) -> None:
        """Count one console sign-in attempt from ``address``; 429 past the limit."""
        self._hit(self._logins, "login", address, what="sign-in attempts per minute")

    def uploads_remaining(self, tenant: str) -> int | None:
        """New uploads ``tenant`` may still start in this window (None: no limit, or unknown)."""
        if self._uploads is None or self._is_broken():
            return None
        try:
            stats = self._limiter.get_window_stats(self._uploads, "uploads", tenant)
        except StorageError as exc:
            self._broke(exc)
            return None
        return int(stats.remaining)

    def _hit(self, item: RateLimitItem | None, kind: str, who: str, *, what: str) -> None:
        if item is None or self._is_broken():
            return
        try:
            allowed = self._limiter.hit(item, kind, who)
            if allowed:
                return
            stats = self._limiter.get_window_stats(item, kind, who)
        except StorageError as exc:
            self._broke(exc)
            return
        metrics.RATE_LIMITED.labels(limit=kind).inc()
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise FilegateError(
            ErrorCode.RATE_LIMITED,
            f"Over the limit of {item.amount} {what}; retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            limit=item.amount,
        )

    def _is_broken(self) -> bool:
        return time.monotonic() < self._broken_until

    def _broke(self, exc: StorageError) -> None:
        with self._lock:
            if self._is_broken():
                return
            self._broken_until = time.monotonic() + RETRY_BROKEN_SECONDS
        metrics.RATE_LIMIT_ERRORS.inc()
        log.warning(
            "ratelimit.unavailable",
            error=type(exc.storage_error).__name__,
            retry_in_seconds=RETRY_BROKEN_SECONDS,
        )


def _item(kind: type[RateLimitItem], amount: int) -> RateLimitItem | None:
    return kind(amount) if amount else None
