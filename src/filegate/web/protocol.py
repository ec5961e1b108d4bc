"""uvicorn's httptools protocol with a cap on the request head, enforced while it arrives.

httptools sets no limit on a request line or headers: uvicorn buffers whatever arrives until
the blank line, so a 100 MB header block from an unauthenticated client stalled the event
loop (``/healthz`` took 6-8 s) before any middleware could look at it. Here the bytes of the
head are counted as they are received, and past ``MAX_HEAD_BYTES`` the connection gets a 431
and is closed. The middleware's own, lower limit (32 KiB, a problem+json 431) still answers
the heads that fit under this one.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._reading_head = True

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            end = data.find(_END_OF_HEAD)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(_REFUSAL)
                self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True  # a keep-alive connection's next request starts here
