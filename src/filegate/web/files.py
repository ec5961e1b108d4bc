"""Reading, listing, downloading and deleting files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from filegate import caching
from filegate.blocking import run_blocking
from filegate.config import Settings
from filegate.domain import Area, FileRecord, FileState, Scope
from filegate.services import evictions, files
from filegate.services.runtime import Runtime
from filegate.web.deps import Reader, RuntimeDep, TokenReader, Uploader
from filegate.web.headers import byte_range, content_disposition, request_facts
from filegate.web.schemas import FileOut, FilePage

router = APIRouter(tags=["files"])

# Served bytes are user content: never rendered, never sniffed, never framed, never scripted.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
FALLBACK_TYPE = "application/octet-stream"


@router.get("/v1/files", response_model=FilePage, summary="List the tenant's files")
async def list_files(
    runtime: RuntimeDep,
    principal: Reader,
    state: FileState | None = None,
    cursor: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=files.MAX_PAGE_SIZE)] = 50,
) -> FilePage:
    page, next_cursor = await run_blocking(
        files.list_files, runtime.db, principal, state=state, cursor=cursor, limit=limit
    )
    return FilePage(items=[FileOut.of(r) for r in page], next_cursor=next_cursor)


@router.get(
    "/v1/files/{file_id}",
    response_model=FileOut,
    summary="A file's record and verdict",
    description="With an admin key, each finding also says where its evidence is and which "
    "profile setting turned it into this verdict.",
)
async def get_file(file_id: str, runtime: RuntimeDep, principal: TokenReader) -> FileOut:
    record = await run_blocking(files.get_file, runtime.db, principal, file_id)
    if Scope.ADMIN not in principal.scopes:
        return FileOut.of(record)
    return FileOut.of(record, files.explain_findings(runtime.settings, record))


@router.head(
    "/v1/files/{file_id}/content",
    summary="A clean file's download headers",
    operation_id="head_content",
    response_class=StreamingResponse,
)
@router.get(
    "/v1/files/{file_id}/content",
    summary="Download a clean file",
    operation_id="get_content",
    response_class=StreamingResponse,
)
async def get_content(
    file_id: str, request: Request, runtime: RuntimeDep, principal: TokenReader
) -> Response:
    record = await run_blocking(files.readable_file, runtime.db, principal, file_id)
    if _redirects(runtime.settings, request, record):
        url = await run_blocking(
            runtime.storage.download_url,
            Area.CLEAN,
            record.id,
            content_type=record.detected_type or FALLBACK_TYPE,
            content_disposition=content_disposition(record.display_name),
        )
        if url is not None and not _etag_matches(request.headers.get("if-none-match"), record):
            # The URL is a bearer credential for a few minutes: nobody may cache the answer.
            headers = {**SAFE_HEADERS, "Cache-Control": "private, no-store", "Location": url}
            return Response(status_code=302, headers=headers)
    return send_file(request, runtime, record, facts=request_facts(request, record))


def send_file(
    request: Request,
    runtime: Runtime,
    record: FileRecord,
    *,
    facts: caching.Facts,
    disposition: str = "attachment",
    embeddable: bool = False,
) -> Response:
    """A clean file's bytes with the safe headers, its cache rule's headers, ETag and Range
    (If-Range, If-None-Match); HEAD gets the headers alone. Shared by the API's download and
    share links."""
    decision = caching.decide(runtime.settings.cache.rules, facts)
    headers = {
        **SAFE_HEADERS,
        **decision.headers,
        "ETag": _etag(record),
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(record.display_name, disposition),
    }
    if embeddable:  # a share link may be an <img> on another site
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if _etag_matches(request.headers.get("if-none-match"), record):
        return Response(status_code=304, headers=headers)
    wanted = None
    if_range = request.headers.get("if-range")
    if if_range is None or if_range == headers["ETag"]:
        wanted = byte_range(request.headers.get("range"), record.size)
    start, end = wanted or (0, record.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{record.size}"
    media_type = record.detected_type or FALLBACK_TYPE
    if request.method == "HEAD" or start == end:
        return Response(status_code=status, headers=headers, media_type=media_type)
    body = files.read_content(runtime.storage, record, start, end)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=media_type)


@router.delete("/v1/files/{file_id}", status_code=204, summary="Delete a file and its bytes")
async def delete_file(file_id: str, runtime: RuntimeDep, principal: Uploader) -> Response:
    await run_blocking(files.delete_file, runtime.db, runtime.storage, principal, file_id)
    # Copies in shared caches (share links) go too: a purge job, retried until acknowledged.
    await run_blocking(
        evictions.request, runtime.db, runtime.queue, runtime.settings, [f"file-{file_id}"]
    )
    return Response(status_code=204)


def _etag(record: FileRecord) -> str:
    return f'"{record.sha256}"'


def _redirects(settings: Settings, request: Request, record: FileRecord) -> bool:
    """Large GETs go to the storage's presigned URL when the operator asked for it."""
    return (
        settings.download_redirect
        and request.method == "GET"
        and record.size >= settings.download_redirect_min_size
    )


def _etag_matches(header: str | None, record: FileRecord) -> bool:
    if not header:
        return False
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or _etag(record) in candidates
