"""A webhook receiver on 127.0.0.1 that checks Standard Webhooks signatures like a real one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    type: str
    data: dict[str, Any]
    verified: bool
    status: int


@dataclass
class Receiver:
    """Answers each request with the next status in ``script`` (then 204), recording it."""

    url: str = ""
    secret: str | None = None
    script: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except Exception:
                verified = False
        payload = json.loads(body or b"{}")
        with self.lock:
            status = self.script.pop(0) if self.script else 204
            if not verified:
                status = 401
            self.deliveries.append(
                Delivery(
                    webhook_id=headers.get("webhook-id", ""),
                    type=payload.get("type", ""),
                    data=payload.get("data", {}),
                    verified=verified,
                    status=status,
                )
            )
        return status

    def accepted(self, type_: str | None = None) -> list[Delivery]:
        with self.lock:
            return [
                d
                for d in self.deliveries
                if 200 <= d.status < 300 and (type_ is None or d.type == type_)
            ]

    def all(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(body, headers)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
