"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from filegate.services import readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database, storage, job queue and (where required) the scanner are reachable",
    description=f"Probes run at most every {readiness.CACHE_SECONDS:g} s, each with a "
    f"{readiness.PROBE_SECONDS:g} s deadline, on threads of their own.",
    responses={
        503: {"description": "Something this instance needs is unavailable; `checks` says what."}
    },
)
async def readyz(request: Request) -> JSONResponse:
    checker = request.app.state.readiness
    assert isinstance(checker, readiness.Readiness)
    report = await checker.report()
    body = {"status": "ok" if report.ready else "unavailable", "checks": report.checks}
    return JSONResponse(body, status_code=200 if report.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
