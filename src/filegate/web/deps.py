"""FastAPI dependencies: the runtime and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from filegate.domain import Principal, Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.services.keys import authenticate
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


def require(scope: Scope) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks one scope."""

    async def dependency(request: Request) -> Principal:
        token = bearer_token(request)
        principal = await run_in_threadpool(authenticate, get_runtime(request).db, token)
        if not principal.can(scope):
            raise FilegateError(
                ErrorCode.FORBIDDEN, f"This API key lacks the {scope.value!r} scope."
            )
        return principal

    return dependency


Uploader = Annotated[Principal, Depends(require(Scope.UPLOAD))]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
