"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from filegate.web.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and storage are reachable")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks = {
        "database": await _check(runtime.db.ping),
        "storage": await _check(runtime.storage.check),
        "scanner": await run_in_threadpool(runtime.scanner_status),
    }
    # A scanner that is off is only a failure where the configuration requires one.
    required = runtime.settings.scanner_required
    ready = all(v == "ok" or (k == "scanner" and not required) for k, v in checks.items())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _check(probe: object) -> str:
    assert callable(probe)
    try:
        await run_in_threadpool(probe)
    except Exception:
        # The reason goes to the log; the readiness body only says which part failed.
        return "failing"
    return "ok"
