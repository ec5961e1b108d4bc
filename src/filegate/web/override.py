"""Middleware for the tus endpoint: ``X-HTTP-Method-Override`` and ``Tus-Resumable`` on every
response, including the ones the auth dependency and the router answer before our code runs."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

OVERRIDABLE = {b"PATCH", b"DELETE", b"HEAD"}


class TusMiddleware:
    def __init__(self, app: ASGIApp, prefix: str, version: str) -> None:
        self.app = app
        self.prefix = prefix
        self.version = version.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            # For clients behind proxies that only pass GET and POST.
            for name, value in scope["headers"]:
                if name == b"x-http-method-override" and value.upper() in OVERRIDABLE:
                    scope = {**scope, "method": value.upper().decode()}
                    break

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(name.lower() == b"tus-resumable" for name, _ in headers):
                    headers.append((b"tus-resumable", self.version))
            await send(message)

        await self.app(scope, receive, send_with_version)
