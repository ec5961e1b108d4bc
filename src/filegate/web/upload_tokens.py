"""Upload tokens: minted and revoked by a backend with an upload key, used by browsers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field

from filegate.blocking import run_blocking
from filegate.domain import Principal
from filegate.services import upload_tokens
from filegate.services.runtime import Runtime
from filegate.web.deps import RuntimeDep, Uploader

router = APIRouter(tags=["upload tokens"])


class UploadTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The profile the browser uploads into; absent: the default profile.
    profile: str | None = Field(default=None, max_length=64)
    # Bytes per file; absent: the profile's max_size, which is also the ceiling.
    max_size: int | None = Field(default=None, ge=1)
    max_files: int = Field(default=1, ge=1, le=upload_tokens.MAX_FILES)
    # Values the browser cannot override (tus Upload-Metadata; filename and filetype also on
    # direct uploads).
    metadata: dict[str, str] = Field(default_factory=dict)
    expires_in: int = Field(
        default=upload_tokens.DEFAULT_SECONDS, ge=1, le=upload_tokens.MAX_SECONDS
    )


class UploadTokenOut(BaseModel):
    id: str
    token: str = Field(description="The token itself, shown only in this answer.")
    tenant: str
    profile: str
    max_size: int
    max_files: int
    metadata: dict[str, str]
    expires_at: datetime


@router.post(
    "/v1/upload-tokens",
    status_code=201,
    response_model=UploadTokenOut,
    summary="Mint an upload token for a browser: uploads only, limited, short-lived",
)
async def create_token(
    runtime: RuntimeDep,
    principal: Uploader,
    body: Annotated[UploadTokenIn | None, Body()] = None,
) -> UploadTokenOut:
    wanted = body or UploadTokenIn()
    request = upload_tokens.TokenRequest(
        profile=wanted.profile,
        max_size=wanted.max_size,
        max_files=wanted.max_files,
        metadata=wanted.metadata,
        expires_in=wanted.expires_in,
    )
    record, raw = await run_blocking(
        upload_tokens.create_token, runtime.db, runtime.settings, principal, request
    )
    grant = record.grant
    return UploadTokenOut(
        id=record.id,
        token=raw,
        tenant=record.tenant,
        profile=grant.profile,
        max_size=grant.max_size,
        max_files=grant.max_files,
        metadata=grant.fixed_metadata,
        expires_at=grant.expires_at,
    )


@router.delete("/v1/upload-tokens/{token_id}", status_code=204, summary="Revoke an upload token")
async def revoke_token(token_id: str, runtime: RuntimeDep, principal: Uploader) -> Response:
    await run_blocking(upload_tokens.revoke_token, runtime.db, principal, token_id)
    return Response(status_code=204)


@asynccontextmanager
async def counted_upload(runtime: Runtime, principal: Principal) -> AsyncIterator[None]:
    """Count a new upload against an upload token's ``max_files``, giving the count back if
    the upload fails before it is created (a crash in between loses that count: it fails
    closed). An API key has nothing to count."""
    if principal.grant is None:
        yield
        return
    await run_blocking(upload_tokens.take_upload, runtime.db, principal)
    try:
        yield
    except BaseException:
        await run_blocking(upload_tokens.give_back, runtime.db, principal)
        raise
