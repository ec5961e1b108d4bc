"""Request context: a request id on every log line and response, one access line, metrics."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filegate import metrics
from filegate.errors import ErrorCode
from filegate.web.problems import problem

log = structlog.get_logger("filegate.access")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Real clients send a few KiB of headers; more is an attack or a broken proxy.
MAX_REQUEST_HEADER_BYTES = 32 * 1024


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                if _header_bytes(scope) > MAX_REQUEST_HEADER_BYTES:
                    response = problem(
                        ErrorCode.REQUEST_HEADERS_TOO_LARGE,
                        "The request headers are too large.",
                        request_id=request_id,
                    )
                    await response(scope, receive, send_with_id)
                else:
                    await self.app(scope, receive, send_with_id)
            finally:
                _record(scope, status, time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID_RE.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope["headers"])


def _record(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    template = str(getattr(route, "path", "unmatched"))
    metrics.REQUEST_SECONDS.labels(template, scope["method"], str(status)).observe(seconds)
    log.info(
        "request",
        method=scope["method"],
        path=scope["path"],
        route=template,
        status=status,
        duration_ms=round(seconds * 1000, 2),
    )
