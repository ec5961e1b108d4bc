"""RFC 9457 problem details: the only place where error codes become HTTP statuses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from filegate.errors import ErrorCode, FilegateError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_FILE_ID: 400,
    ErrorCode.INVALID_CURSOR: 400,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.MULTIPART_MALFORMED: 400,
    ErrorCode.MULTIPART_BOUNDARY_MISSING: 400,
    ErrorCode.MULTIPART_HEADERS_TOO_LARGE: 400,
    ErrorCode.MULTIPART_FILE_MISSING: 400,
    ErrorCode.MULTIPART_TOO_MANY_FILES: 400,
    ErrorCode.MULTIPART_FIELD_TOO_LARGE: 400,
    ErrorCode.FILENAME_MISSING: 400,
    ErrorCode.CONTENT_LENGTH_INVALID: 400,
    ErrorCode.UPLOAD_INCOMPLETE: 400,
    ErrorCode.UPLOAD_TIMEOUT: 408,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.REQUEST_HEADERS_TOO_LARGE: 431,
    ErrorCode.REQUEST_BODY_TOO_LARGE: 413,
    ErrorCode.UNKNOWN_PROFILE: 400,
    ErrorCode.TUS_VERSION_UNSUPPORTED: 412,
    ErrorCode.TUS_INVALID_HEADER: 400,
    ErrorCode.TUS_CONTENT_TYPE: 415,
    ErrorCode.TUS_OFFSET_MISMATCH: 409,
    ErrorCode.TUS_CHECKSUM_ALGORITHM: 400,
    ErrorCode.TUS_CHECKSUM_MISMATCH: 460,
    ErrorCode.TUS_LENGTH_REQUIRED: 400,
    ErrorCode.TUS_LENGTH_MISMATCH: 400,
    ErrorCode.TUS_FINAL_IMMUTABLE: 403,
    ErrorCode.TUS_CONCAT_INVALID: 400,
    ErrorCode.TUS_UPLOAD_NOT_FOUND: 404,
    ErrorCode.TUS_UPLOAD_GONE: 410,
    ErrorCode.TUS_UPLOAD_STOPPED: 400,
    ErrorCode.TUS_UPLOAD_LOCKED: 423,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.LINK_INVALID: 403,
    ErrorCode.LINK_GONE: 404,
    ErrorCode.LINK_NOT_ALLOWED: 400,
    ErrorCode.UPLOAD_TOKEN_USED_UP: 403,
    ErrorCode.UPLOAD_TOKEN_NOT_FOUND: 404,
    ErrorCode.ORIGIN_NOT_ALLOWED: 403,
    ErrorCode.FILE_NOT_FOUND: 404,
    ErrorCode.FILE_NOT_READY: 409,
    ErrorCode.FILE_REJECTED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.QUOTA_EXCEEDED: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_READY: 503,
    ErrorCode.SERVER_BUSY: 503,
    ErrorCode.SERVER_STOPPING: 503,
    ErrorCode.STORAGE_ERROR: 503,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.CONFIG_INVALID: 500,
    ErrorCode.KEY_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_URL_INVALID: 400,
    ErrorCode.WEBHOOK_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_LIMIT_REACHED: 409,
    ErrorCode.REVIEW_REFUSED: 409,
}

_TITLES = {code: code.value.replace("_", " ").capitalize() for code in ErrorCode}


def problem(
    code: ErrorCode,
    detail: str,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    status = STATUS[code]
    body: dict[str, Any] = {
        "type": f"urn:filegate:problem:{code.value}",
        "title": _TITLES[code],
        "status": status,
        "detail": detail,
        "code": code.value,
        **extra,
    }
    if request_id:
        body["request_id"] = request_id
    all_headers = dict(headers or {})
    if code is ErrorCode.UNAUTHENTICATED:
        all_headers.setdefault("WWW-Authenticate", 'Bearer realm="filegate"')
    return JSONResponse(body, status_code=status, headers=all_headers, media_type=PROBLEM_JSON)


# A dependency that fails is usually back within seconds (a restart, a failover).
RETRY_AFTER_SECONDS = 5


def _our_fault(code: ErrorCode) -> bool:
    """A failure on the server's side: its details stay in the log."""
    return STATUS[code] >= 500


def problem_for(exc: FilegateError, request_id: str | None = None) -> JSONResponse:
    """The problem for ``exc``. A failure on our side keeps its details (errno, storage keys,
    areas) for the log: the client gets the code, the message and when to retry."""
    given = exc.extra.get("headers")
    headers = dict(given) if isinstance(given, dict) else {}
    extra = {k: v for k, v in exc.extra.items() if k != "headers"}
    if _our_fault(exc.code):
        extra = {}
        if STATUS[exc.code] == 503:
            headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return problem(exc.code, exc.message, request_id=request_id, headers=headers, **extra)


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


async def _filegate_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FilegateError)
    if _our_fault(exc.code):
        extra = {k: v for k, v in exc.extra.items() if k != "headers"}
        log.error("request.failed", code=exc.code.value, detail=exc.message, **extra)
    return problem_for(exc, _request_id(request))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.INVALID_REQUEST
    )
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        # RFC 9110 requires Allow; Starlette's names only the first route on the path.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(code, str(exc.detail), request_id=_request_id(request), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route on the request's path answers."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in _endpoints(request.app.router.routes):
        if route.path_regex.fullmatch(path):
            methods |= set(route.methods or ())
    return sorted(methods)


def _endpoints(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes with methods, through included routers (FastAPI wraps each) and mounts."""
    for route in routes:
        if getattr(route, "methods", None) is not None and hasattr(route, "path_regex"):
            yield route
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        inner = inner if inner is not None else getattr(route, "routes", None)
        if inner is not None:
            yield from _endpoints(inner)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    return problem(
        ErrorCode.INVALID_REQUEST,
        "The request's parameters are not valid.",
        request_id=_request_id(request),
        errors=errors,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log with the request id; the client learns nothing internal.
    log.exception("request.crashed", exc_info=exc)
    return problem(
        ErrorCode.INTERNAL_ERROR,
        "Something went wrong on our side; quote the request id when reporting it.",
        request_id=_request_id(request),
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # Connection refused, reset or timed out, a full disk, a statement over its time limit:
    # the database, not the request, is at fault, and it is usually back soon.
    log.error("request.database_unavailable", error=type(exc).__name__, detail=str(exc)[:300])
    return problem_for(
        FilegateError(ErrorCode.DATABASE_UNAVAILABLE, "The database cannot be reached right now."),
        _request_id(request),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(FilegateError, _filegate_error)
    # OperationalError: the database's own failures (not a bug in a statement); InterfaceError:
    # the driver lost its connection; TimeoutError: no pooled connection came free in time.
    for database_error in (OperationalError, InterfaceError, SQLAlchemyTimeoutError):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
