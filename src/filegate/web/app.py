"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from filegate import __version__
from filegate.jobs.base import Background
from filegate.services.runtime import Runtime
from filegate.web import files, health, problems, uploads
from filegate.web.middleware import RequestContextMiddleware


def create_app(runtime: Runtime, background: Background | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()

    app = FastAPI(
        title="filegate",
        version=__version__,
        summary="Quarantine, inspect and serve uploaded files.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    problems.install(app)
    app.include_router(uploads.router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.add_middleware(RequestContextMiddleware)
    return app
