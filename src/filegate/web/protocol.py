"""uvicorn's httptools protocol with a cap on the request head and on the time it may take,
and a shutdown that ends uploads at once instead of waiting for them.

httptools sets no limit on a request line or headers: uvicorn buffers whatever arrives until
the blank line, so a 100 MB header block from an unauthenticated client stalled the event
loop (``/healthz`` took 6-8 s) before any middleware could look at it. Here the bytes of the
head are counted as they are received, and past ``MAX_HEAD_BYTES`` the connection gets a 431
and is closed. The middleware's own, lower limit (32 KiB, a problem+json 431) still answers
the heads that fit under this one.

uvicorn also sets no deadline on a head: a client that connects and sends nothing, or a
header a minute, held its connection forever. Here a head must be complete within
``head_timeout`` seconds of the connection or of its first byte (408, then closed).

On shutdown uvicorn waits for running requests; a large upload would take the whole grace
period and then be cancelled (500 and a traceback). Here a request whose body is still
arriving is told the body ended: the handler keeps what arrived and answers 503
``server_stopping``, and the connection closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from filegate.web.body import SERVER_STOPPING

# Twice the middleware's limit: real heads are a few KiB; what passes this is cut off here.
MAX_HEAD_BYTES = 64 * 1024
_END_OF_HEAD = b"\r\n\r\n"
_REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"The request head is too large.\r\n"
)
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 34\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"The request head took too long.\r\n"
)
# Real clients send their head in milliseconds; a slow mobile link, in a second or two.
DEFAULT_HEAD_TIMEOUT = 10.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    head_timeout = DEFAULT_HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._reading_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            if self._head_timer is None:
                self._arm_head_timer()
            end = data.find(_END_OF_HEAD)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(_REFUSAL)
                self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True  # a keep-alive connection's next request starts here

    def shutdown(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and cycle.more_body:
            # The scope's state is the same dict the application's request reads.
            self.scope.setdefault("state", {})[SERVER_STOPPING] = True
            cycle.more_body = False
            cycle.keep_alive = False
            cycle.message_event.set()
        super().shutdown()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()


def bounded_protocol(head_timeout: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with ``head_timeout`` (uvicorn builds one instance per connection)."""
    return type("BoundedHttpTools", (BoundedHttpToolsProtocol,), {"head_timeout": head_timeout})
