"""Request context: a request id on every log line and response, one access line, metrics."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filegate import metrics, signals
from filegate.errors import ErrorCode
from filegate.web.problems import problem

log = structlog.get_logger("filegate.access")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Real clients send a few KiB of headers; more is an attack or a broken proxy.
MAX_REQUEST_HEADER_BYTES = 32 * 1024
# Bodies other than uploads are small JSON documents (a webhook endpoint is a URL and a few
# event names); FastAPI parses a body before any dependency checks the key, so an
# unauthenticated client could otherwise make the API hold hundreds of MB.
MAX_BODY_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """Refuse a body over ``MAX_BODY_BYTES`` on every route but the upload routes, before it
    is read when Content-Length says so, and as soon as it passes the limit otherwise.
    ``upload_paths`` are exact paths, or prefixes when they end with a slash."""

    def __init__(self, app: ASGIApp, *, upload_paths: tuple[str, ...]) -> None:
        self.app = app
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_upload(scope["path"], self.upload_paths):
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > MAX_BODY_BYTES:
            await _too_large(scope, receive, send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            # Past the limit the client gets its 413 at once, and the application is told the
            # client went away (an exception here would become FastAPI's 400 "parse error").
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES and not refused:
                refused = True
                await _too_large(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise  # the application's own failure; the error handlers deal with it


def _is_upload(path: str, upload_paths: tuple[str, ...]) -> bool:
    """``path`` is one of ``upload_paths``, or under one of them that ends with a slash."""
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in upload_paths)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # malformed: the server refuses it
    return 0


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    detail = f"Request bodies on this route are limited to {MAX_BODY_BYTES} bytes."
    response = problem(
        ErrorCode.REQUEST_BODY_TOO_LARGE,
        detail,
        request_id=scope.get("state", {}).get("request_id"),
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


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
        first_byte: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter() - started
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = shared_cache_guard(scope, status, headers)
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
                _record(scope, status, time.perf_counter() - started, first_byte)


# Directives that keep a shared cache from storing an answer.
_PRIVATE = (b"private", b"no-store")


def shared_cache_guard(
    scope: Scope, status: int, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The last word on caching, whatever a route said: an answer without ``Cache-Control``,
    and every error, is ``no-store``; an answer to a request with credentials that a shared
    cache could keep becomes ``private, no-store``. Only the cache rules' answers (share links,
    asked without credentials) are ever public."""
    control = next((v for k, v in headers if k.lower() == b"cache-control"), None)
    credentials = any(name == b"authorization" for name, _ in scope["headers"])
    if status >= 400 or control is None:
        wanted = b"private, no-store" if credentials else b"no-store"
    elif credentials and (
        not any(d in control.lower() for d in _PRIVATE) or b"public" in control.lower()
    ):
        wanted = b"private, no-store"
    else:
        return headers
    kept = [(k, v) for k, v in headers if k.lower() not in (b"cache-control", b"surrogate-key")]
    return [*kept, (b"cache-control", wanted)]


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID_RE.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope["headers"])


# A load balancer or Prometheus polls these every few seconds; a line each would bury the log.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# Not traffic: probes, scrapes and the status page watching the traffic.
NOT_TRAFFIC = QUIET_ROUTES | {"/status", "/v1/status"}
DOWNLOAD_ROUTE = "/v1/files/{file_id}/content"


def _record(scope: Scope, status: int, seconds: float, first_byte: float | None) -> None:
    route = scope.get("route")
    template = str(getattr(route, "path", "unmatched"))
    metrics.REQUEST_SECONDS.labels(template, scope["method"], str(status)).observe(seconds)
    if template not in NOT_TRAFFIC:
        signals.count(signals.REQUESTS, f"{status // 100}xx")
        if template == DOWNLOAD_ROUTE and status in (200, 206) and first_byte is not None:
            signals.observe(signals.FIRST_BYTE_SECONDS, first_byte)
    quiet = template in QUIET_ROUTES and status < 400
    # The file a route names (a tus upload becomes the file of the same id), or the one a
    # handler created (it says so in the request state).
    params = scope.get("path_params", {})
    file_id = (
        scope.get("state", {}).get("file_id") or params.get("file_id") or params.get("upload_id")
    )
    (log.debug if quiet else log.info)(
        "request",
        method=scope["method"],
        path=scope["path"],
        route=template,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        **({"file_id": file_id} if file_id else {}),
    )
