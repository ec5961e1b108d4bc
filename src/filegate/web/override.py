"""``X-HTTP-Method-Override`` for tus clients behind proxies that only pass GET and POST."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

OVERRIDABLE = {b"PATCH", b"DELETE", b"HEAD"}


class MethodOverrideMiddleware:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith(self.prefix)
        ):
            for name, value in scope["headers"]:
                if name == b"x-http-method-override" and value.upper() in OVERRIDABLE:
                    scope = {**scope, "method": value.upper().decode()}
                    break
        await self.app(scope, receive, send)
