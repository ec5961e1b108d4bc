"""When to try again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Transient by nature: a timeout, a held lock (423), a rate limit (429), a checksum that broke
# in transit (460), and every 5xx. Other 4xx say the request is wrong: sending it again is too.
RETRYABLE_STATUSES = frozenset({408, 423, 429, 460})


def retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, counted per run of failures without progress.

    ``attempts`` failures in a row (no byte accepted in between) give up; a ``Retry-After``
    from the server replaces the computed delay, up to ``max_retry_after`` seconds.
    """

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
