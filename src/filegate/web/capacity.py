"""A per-process cap on uploads being received at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filegate import metrics
from filegate.errors import ErrorCode, FilegateError

# A busy process frees a slot when any upload ends; a second is a fair time to come back.
BUSY_RETRY_AFTER_SECONDS = 1


class UploadSlots:
    """At most ``size`` uploads at once; one more is refused at once (503 ``server_busy``
    with Retry-After), never queued: a queue would hold its connection and memory anyway.
    Used only from the event loop's thread, so a plain counter is enough."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    @contextmanager
    def take(self) -> Iterator[None]:
        if self.taken >= self.size:
            metrics.UPLOADS_BUSY.inc()
            raise FilegateError(
                ErrorCode.SERVER_BUSY,
                f"This server is receiving {self.size} uploads already; retry shortly.",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            )
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1
