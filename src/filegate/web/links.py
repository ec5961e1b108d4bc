"""Share links: made and revoked with a read key, followed without one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from filegate.blocking import run_blocking
from filegate.services import evictions, links
from filegate.web.deps import Reader, RuntimeDep
from filegate.web.files import send_file
from filegate.web.headers import request_facts
from filegate.web.urls import absolute_url

router = APIRouter(tags=["links"])


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Lifetime; the profile's default when absent, never above its maximum.
    seconds: int | None = Field(default=None, ge=60)
    # inline only for the types the profile shows inline (never HTML or SVG).
    disposition: Literal["attachment", "inline"] = "attachment"
    # 1: a one-time link. Limited links are never kept by shared caches.
    max_downloads: int | None = Field(default=None, ge=1, le=links.MAX_DOWNLOADS)


class LinkOut(BaseModel):
    id: str
    url: str
    expires_at: datetime
    disposition: str
    max_downloads: int | None


@router.post(
    "/v1/files/{file_id}/links",
    status_code=201,
    response_model=LinkOut,
    summary="Share a clean file: a signed URL that needs no API key, until it expires",
)
async def create_link(
    file_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: Reader,
    body: Annotated[LinkIn | None, Body()] = None,
) -> LinkOut:
    wanted = body or LinkIn()
    made = await run_blocking(
        links.create,
        runtime.db,
        runtime.settings,
        principal,
        file_id,
        seconds=wanted.seconds,
        disposition=wanted.disposition,
        max_downloads=wanted.max_downloads,
    )
    return LinkOut(
        id=made.record.id,
        url=absolute_url(request, runtime.settings, made.path),
        expires_at=made.record.expires_at,
        disposition=made.record.disposition,
        max_downloads=made.record.max_downloads,
    )


@router.delete(
    "/v1/files/{file_id}/links/{link_id}",
    status_code=204,
    summary="Revoke a share link (and purge its cached copies)",
)
async def revoke_link(
    file_id: str, link_id: str, runtime: RuntimeDep, principal: Reader
) -> Response:
    await run_blocking(links.revoke, runtime.db, principal, file_id, link_id)
    await run_blocking(
        evictions.request, runtime.db, runtime.queue, runtime.settings, [f"link-{link_id}"]
    )
    return Response(status_code=204)


@router.head(
    "/v1/share/{file_id}/{digest}", summary="A share link's headers", include_in_schema=False
)
@router.get(
    "/v1/share/{file_id}/{digest}",
    summary="Download a shared file (no API key: the link is the credential)",
)
async def follow_link(file_id: str, digest: str, request: Request, runtime: RuntimeDep) -> Response:
    shared = await run_blocking(
        links.resolve,
        runtime.db,
        runtime.settings,
        file_id,
        digest,
        dict(request.query_params),
        download=request.method == "GET",
    )
    disposition = shared.link.disposition
    facts = request_facts(
        request,
        shared.file,
        disposition=disposition,
        limited=shared.link.max_downloads is not None,
        link_id=shared.link.id,
        link_seconds=shared.seconds_left,
    )
    return send_file(
        request, runtime, shared.file, facts=facts, disposition=disposition, embeddable=True
    )
