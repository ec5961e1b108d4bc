"""Reading request bodies as a stream, with an idle timeout and a clear error on disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.requests import ClientDisconnect

from filegate.errors import ErrorCode, FilegateError


async def body_chunks(request: Request, idle_seconds: float) -> AsyncIterator[bytes]:
    """The body's chunks; a client silent for ``idle_seconds`` is cut off."""
    stream = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise FilegateError(
                ErrorCode.UPLOAD_TIMEOUT, f"No data received for {idle_seconds:g} seconds."
            ) from None
        except ClientDisconnect:
            raise FilegateError(
                ErrorCode.UPLOAD_INCOMPLETE, "The client went away mid-upload."
            ) from None
        if chunk:
            yield chunk
