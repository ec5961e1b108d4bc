"""FastAPI dependencies: the runtime and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from filegate.domain import Principal, Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.services.keys import authenticate
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


def _authenticate(runtime: Runtime, limiter: RateLimiter, token: str) -> Principal:
    principal = authenticate(runtime.db, token)
    limiter.request(principal.key_id)
    return principal


async def principal_for(request: Request, token: str, scope: Scope | None) -> Principal:
    """Authenticate ``token``, count the request against the key's rate limit and check one
    scope (``None``: any key of the tenant will do)."""
    runtime, limiter = get_runtime(request), get_limiter(request)
    principal = await run_in_threadpool(_authenticate, runtime, limiter, token)
    if scope is not None and not principal.can(scope):
        raise FilegateError(ErrorCode.FORBIDDEN, f"This API key lacks the {scope.value!r} scope.")
    return principal


def require(scope: Scope | None) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the bearer key's principal, as ``principal_for`` checks it."""

    async def dependency(request: Request) -> Principal:
        return await principal_for(request, bearer_token(request), scope)

    return dependency


Uploader = Annotated[Principal, Depends(require(Scope.UPLOAD))]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
Member = Annotated[Principal, Depends(require(None))]
