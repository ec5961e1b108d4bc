"""Reading request bodies as a stream, with an idle timeout, a minimum rate and a clear error
on disconnect or shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.requests import ClientDisconnect

from filegate.errors import ErrorCode, FilegateError

# Set in the request scope's state by the HTTP protocol when the server stops mid-body
# (protocol.py).
SERVER_STOPPING = "filegate.server_stopping"


class _MinimumRate:
    """Cuts off a body that averages under ``bytes_per_second`` over each ``window`` seconds
    spent waiting for the client. Only waiting counts: time this server spends writing a
    chunk (and so not reading) is never held against the client."""

    def __init__(self, window: float, bytes_per_second: int) -> None:
        self.window = window
        self.bytes_per_second = bytes_per_second
        self.waited = 0.0
        self.received = 0

    def add(self, size: int, waited: float) -> None:
        self.waited += waited
        self.received += size
        if self.waited < self.window:
            return
        if self.received < self.bytes_per_second * self.waited:
            raise FilegateError(
                ErrorCode.UPLOAD_TIMEOUT,
                f"The body arrived at {self.received / self.waited:.0f} bytes/s; "
                f"the minimum is {self.bytes_per_second} bytes/s.",
            )
        self.waited, self.received = 0.0, 0


async def body_chunks(
    request: Request, idle_seconds: float, min_bytes_per_second: int = 0
) -> AsyncIterator[bytes]:
    """The body's chunks; a client silent for ``idle_seconds``, or slower than
    ``min_bytes_per_second`` over that long, is cut off."""
    stream = request.stream().__aiter__()
    rate = _MinimumRate(idle_seconds, min_bytes_per_second)
    while True:
        started = time.monotonic()
        try:
            async with asyncio.timeout(idle_seconds):
                chunk = await anext(stream)
        except StopAsyncIteration:
            _check_stopping(request)
            return
        except TimeoutError:
            raise FilegateError(
                ErrorCode.UPLOAD_TIMEOUT, f"No data received for {idle_seconds:g} seconds."
            ) from None
        except ClientDisconnect:
            raise FilegateError(
                ErrorCode.UPLOAD_INCOMPLETE, "The client went away mid-upload."
            ) from None
        rate.add(len(chunk), time.monotonic() - started)
        if chunk:
            yield chunk


def _check_stopping(request: Request) -> None:
    if request.scope.get("state", {}).get(SERVER_STOPPING):
        raise FilegateError(
            ErrorCode.SERVER_STOPPING,
            "The server is shutting down. A resumable upload keeps the bytes received so far "
            "(HEAD gives the offset); retry in a few seconds.",
        )
