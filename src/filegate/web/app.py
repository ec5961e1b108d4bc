"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from filegate import __version__
from filegate.jobs.base import Background
from filegate.release import current_release
from filegate.services import readiness
from filegate.services.keys import VerifiedKeys
from filegate.services.locks import UploadLocks
from filegate.services.ratelimits import RateLimiter
from filegate.services.runtime import Runtime
from filegate.signals import SignalWriter
from filegate.tus.headers import TUS_VERSION
from filegate.web import (
    admin,
    files,
    health,
    links,
    openapi,
    problems,
    status,
    tus,
    upload_page,
    upload_tokens,
    uploads,
    usage,
    webhooks,
)
from filegate.web.capacity import UploadSlots
from filegate.web.middleware import BodyLimitMiddleware, RequestContextMiddleware
from filegate.web.override import TusMiddleware

# What a browser's tus client must read from our responses, and may send.
TUS_EXPOSED = [
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Defer-Length",
    "Upload-Concat",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "X-Request-ID",
]
TUS_ALLOWED = [
    "Authorization",
    "Content-Type",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Defer-Length",
    "Upload-Concat",
    "Upload-Checksum",
    "Tus-Resumable",
    "X-HTTP-Method-Override",
    "X-Request-ID",
]


# Threads for blocking work (database, fsync, file opens), for anyio and the loop's executor.
# Few on purpose: they all share one GIL, and more (anyio's default is 40) only add hand-overs.
# 200 uploads of 1 MiB at 16 clients, alternating A/B: 4-8% less server CPU per upload with 8
# than with 40 (docs/decisions.md).
BLOCKING_THREADS = 8


def _bound_blocking_threads() -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = BLOCKING_THREADS
    executor = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="filegate-io")
    asyncio.get_running_loop().set_default_executor(executor)


def create_app(runtime: Runtime, background: Background | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _bound_blocking_threads()
        app.state.readiness = readiness.for_runtime(runtime)  # its lock belongs to this loop
        writer = SignalWriter(
            runtime.db,
            current_release(runtime.settings.release),
            "api" if background is None else "api+worker",
        )
        writer.start()
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()
            writer.stop()
            app.state.readiness.close()
            app.state.tus.locks.close()

    app = FastAPI(
        title="filegate",
        version=__version__,
        summary="Quarantine, inspect and serve uploaded files.",
        lifespan=lifespan,
        docs_url=None,  # served from the package's own assets (openapi.install_docs)
        redoc_url=None,
    )
    app.state.runtime = runtime
    settings = runtime.settings
    locks = UploadLocks(runtime.db, settings.tus_lock_wait_seconds, settings.max_concurrent_uploads)
    app.state.tus = tus.TusState(locks)
    app.state.limiter = RateLimiter(runtime.settings)
    app.state.verified_keys = VerifiedKeys()
    app.state.upload_slots = UploadSlots(runtime.settings.max_concurrent_uploads)
    problems.install(app)
    openapi.install(app)
    openapi.install_docs(app)
    upload_page.install(app)
    app.include_router(uploads.router)
    app.include_router(files.router)
    app.include_router(links.router)
    app.include_router(tus.router)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(upload_tokens.router)
    app.include_router(usage.router)
    app.include_router(status.router)
    app.include_router(admin.router)
    app.add_middleware(TusMiddleware, prefix=tus.BASE, version=TUS_VERSION)
    # Uploads enforce their profile's size while they stream; every other body is small.
    app.add_middleware(BodyLimitMiddleware, upload_paths=(uploads.PATH, tus.BASE))
    # Preflights are answered for every tenant's origins (a preflight carries no credentials,
    # so no tenant); a credentialed request from another tenant's origin is refused in
    # web/deps.py (origin_not_allowed).
    if runtime.settings.all_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=runtime.settings.all_cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=TUS_ALLOWED,
            expose_headers=TUS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    return app
