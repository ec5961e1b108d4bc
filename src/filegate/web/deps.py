"""FastAPI dependencies: the runtime and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from filegate.blocking import run_blocking
from filegate.config import Settings
from filegate.domain import Principal, Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.services.keys import VerifiedKeys
from filegate.services.ratelimits import RateLimiter
from filegate.services.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FilegateError(
            ErrorCode.UNAUTHENTICATED, "Send an API key as 'Authorization: Bearer <key>'."
        )
    return token.strip()


def get_limiter(request: Request) -> RateLimiter:
    limiter = request.app.state.limiter
    assert isinstance(limiter, RateLimiter)
    return limiter


LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]


def get_verified_keys(request: Request) -> VerifiedKeys:
    verified = request.app.state.verified_keys
    assert isinstance(verified, VerifiedKeys)
    return verified


def _authenticate(
    runtime: Runtime, limiter: RateLimiter, verified: VerifiedKeys, token: str
) -> Principal:
    principal = verified.verify(runtime.db, token)
    limiter.request(principal.key_id)
    return principal


async def count_request(limiter: RateLimiter, key_id: str) -> None:
    """Count one request by ``key_id`` (429 past its limit); in a thread when the count is kept
    in a shared Redis, so a slow Redis never holds the event loop."""
    if limiter.request_waits:
        await run_blocking(limiter.request, key_id)
    else:
        limiter.request(key_id)


async def principal_for(
    request: Request, token: str, scope: Scope | None, *, tokens: bool = False
) -> Principal:
    """Authenticate ``token``, count the request against the key's rate limit, check the
    browser's origin against the tenant's CORS origins and check one scope (``None``: any key
    of the tenant will do). An upload token is refused unless ``tokens`` says the route takes
    one (and then the route narrows it to its own uploads)."""
    runtime, limiter, verified = (
        get_runtime(request),
        get_limiter(request),
        get_verified_keys(request),
    )
    # A key verified a moment ago needs no database: only its request is counted.
    principal = verified.recent(token)
    if principal is None:
        principal = await run_blocking(_authenticate, runtime, limiter, verified, token)
    else:
        await count_request(limiter, principal.key_id)
    check_origin(runtime.settings, request.headers.get("origin"), principal.tenant)
    if principal.grant is not None and not tokens:
        raise FilegateError(
            ErrorCode.FORBIDDEN,
            "An upload token may only upload files and read back its own uploads; "
            "this needs an API key.",
        )
    if scope is not None and not principal.can(scope):
        raise FilegateError(ErrorCode.FORBIDDEN, f"This API key lacks the {scope.value!r} scope.")
    return principal


def check_origin(settings: Settings, origin: str | None, tenant: str) -> None:
    """Refuse a browser on a CORS origin configured for other tenants only. An origin that no
    tenant lists passes: no browser could have sent credentials from it cross-origin (the
    preflight fails), so it is the page's own origin or no browser at all."""
    if origin is None or origin not in settings.all_cors_origins:
        return
    if origin not in settings.cors_origins_for(tenant):
        raise FilegateError(
            ErrorCode.ORIGIN_NOT_ALLOWED,
            f"Browsers on {origin[:200]} may not call this API for this tenant.",
        )


def require(
    scope: Scope | None, *, tokens: bool = False
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the bearer key's (or upload token's) principal, as ``principal_for``
    checks it."""

    async def dependency(request: Request) -> Principal:
        return await principal_for(request, bearer_token(request), scope, tokens=tokens)

    return dependency


Uploader = Annotated[Principal, Depends(require(Scope.UPLOAD))]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
# The routes an upload token may call too: uploading, and reading back its own uploads.
TokenUploader = Annotated[Principal, Depends(require(Scope.UPLOAD, tokens=True))]
TokenReader = Annotated[Principal, Depends(require(Scope.READ, tokens=True))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
Member = Annotated[Principal, Depends(require(None))]
