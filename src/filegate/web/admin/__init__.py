"""The quarantine review console, ``/admin``: server-rendered pages and forms, no JavaScript.

An operator signs in with an admin key (``POST /admin/login``) and gets a signed session
cookie (``session.py``); every POST carries a CSRF token bound to the session and must come
from this origin. What the actions do is ``services/review.py``; docs/admin-console.md is the
operator's guide.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from filegate.blocking import run_blocking
from filegate.config import Settings
from filegate.domain import FileFilter, FileRecord, FileState, ReviewAction, Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.services import files as files_service
from filegate.services import keys as keys_service
from filegate.services import review, webhooks
from filegate.services.review import Reviewer
from filegate.web.admin import export, pages
from filegate.web.admin.session import (
    COOKIE,
    SESSION_SECONDS,
    Session,
    csrf_token,
    csrf_valid,
    issue,
    read,
)
from filegate.web.deps import count_request, get_limiter, get_runtime
from filegate.web.files import send_file
from filegate.web.headers import request_facts
from filegate.web.problems import STATUS
from filegate.web.urls import absolute_url

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/admin", include_in_schema=False)

# Raster types a browser decodes without running anything; SVG (script) never.
PREVIEW_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PREVIEW_TEXT = "text/plain"
PREVIEW_TEXT_BYTES = 4096
_CODE_RE = re.compile(r"[a-z0-9_]{1,64}")
# A plain-http session cookie is only for the machine itself (the README's `make run`).
_LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True, slots=True)
class Console:
    """A signed-in request: the reviewer, the session and the session's CSRF token."""

    who: Reviewer
    session: Session
    csrf: str


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=pages.HEADERS)


def _see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=pages.HEADERS)


async def _console(request: Request) -> Console | None:
    """The signed-in reviewer, checked against the database now, or None."""
    runtime = get_runtime(request)
    session = read(runtime.settings, request.cookies.get(COOKIE))
    if session is None:
        return None
    try:
        who = await run_blocking(review.reviewer, runtime.db, session.key_id)
    except FilegateError:
        return None
    await count_request(get_limiter(request), who.key_id)
    return Console(who, session, csrf_token(runtime.settings, session))


def _same_origin(request: Request, settings: Settings) -> bool:
    """What the browser says about where a POST came from, when it says it: from here."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    own = urlsplit(absolute_url(request, settings, "/"))
    return origin is None or origin == f"{own.scheme}://{own.netloc}"


def _forbidden(message: str) -> HTMLResponse:
    return _html(pages.problem_page("Refused", message), 403)


async def _posted(request: Request) -> tuple[Console, dict[str, str]] | Response:
    """A console POST: from this origin, signed in, with the session's CSRF token."""
    settings = get_runtime(request).settings
    if not _same_origin(request, settings):
        return _forbidden("This form was sent from another site.")
    console = await _console(request)
    if console is None:
        return _forbidden("Sign in first (or again: the session ended).")
    form = await _form(request)
    if not csrf_valid(settings, console.session, form.get("csrf", "")):
        return _forbidden("The form's security token is missing or stale; reload the page.")
    return console, form


async def _form(request: Request) -> dict[str, str]:
    try:
        data = await request.form(max_files=0, max_fields=10)
    except Exception:  # any body that does not parse is simply an empty form
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)}


# --- signing in and out ---------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await _console(request) is not None:
        return _see_other("/admin")
    return _html(pages.login())


@router.post("/login")
async def login(request: Request) -> Response:
    runtime = get_runtime(request)
    if not _same_origin(request, runtime.settings):
        return _forbidden("This form was sent from another site.")
    secure = _cookie_secure(request, runtime.settings)
    if secure is None:
        message = "Sign in over HTTPS (plain HTTP is only for 127.0.0.1 and localhost)."
        return _html(pages.login(message), 400)
    address = request.client.host if request.client else "unknown"
    try:
        # Kept in Redis when the limits are shared: off the event loop, like every count.
        await run_blocking(get_limiter(request).login, address)
        key = (await _form(request)).get("key", "").strip()
        principal = await run_blocking(keys_service.authenticate, runtime.db, key)
    except FilegateError as exc:
        log.warning("review.sign_in_refused", reason=exc.code.value, address=address)
        message = "That is not a valid API key." if exc.code is ErrorCode.UNAUTHENTICATED else ""
        return _html(pages.login(message or exc.message), STATUS[exc.code])
    if Scope.ADMIN not in principal.scopes:
        log.warning("review.sign_in_refused", reason="not_admin", key_id=principal.key_id)
        return _html(pages.login("This API key lacks the admin scope."), 403)
    value, _ = issue(runtime.settings, principal.key_id)
    log.info("review.signed_in", key_id=principal.key_id, tenant=principal.tenant)
    response = _see_other("/admin")
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path="/admin",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


def _cookie_secure(request: Request, settings: Settings) -> bool | None:
    """Secure over HTTPS; not over plain HTTP to this machine; None (refuse) otherwise."""
    origin = urlsplit(absolute_url(request, settings, "/"))
    if origin.scheme == "https":
        return True
    host = origin.hostname or ""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return False
    try:
        return False if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


@router.post("/logout")
async def logout(request: Request) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    response = _see_other("/admin/login")
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict")
    return response


# --- pages ----------------------------------------------------------------------------------


@router.get("")
async def file_list(request: Request) -> Response:
    console = await _console(request)
    if console is None:
        return _see_other("/admin/login")
    runtime = get_runtime(request)
    params = request.query_params
    shown = pages.Filters(**{k: params.get(k, "").strip() for k in pages.Filters.__slots__})
    profiles = sorted(runtime.settings.profiles)
    try:
        wanted = _filter(console.who.tenant, shown)
        page, cursor = await run_blocking(
            review.list_files, runtime.db, wanted, params.get("cursor") or None
        )
    except FilegateError as exc:
        listing = pages.FileList([], None, profiles, shown)
        body = pages.files(listing, csrf=console.csrf, who=console.who.name, error=exc.message)
        return _html(body, STATUS[exc.code])
    listing = pages.FileList(page, cursor, profiles, shown)
    return _html(pages.files(listing, csrf=console.csrf, who=console.who.name))


def _filter(tenant: str, shown: pages.Filters) -> FileFilter:
    try:
        state = FileState(shown.state) if shown.state else None
        since = _day(shown.since)
        until = _day(shown.until)
    except ValueError:
        raise FilegateError(
            ErrorCode.INVALID_REQUEST, "Dates are YYYY-MM-DD; states are the ones listed."
        ) from None
    if shown.code and not _CODE_RE.fullmatch(shown.code):
        raise FilegateError(ErrorCode.INVALID_REQUEST, "Finding codes are a-z, 0-9 and _.")
    return FileFilter(
        tenant=tenant,
        state=state,
        profile=shown.profile or None,
        code=shown.code or None,
        since=since,
        until=until + timedelta(days=1) if until else None,
    )


def _day(text: str) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC) if text else None


@router.get("/files/{file_id}")
async def file_page(request: Request, file_id: str) -> Response:
    console = await _console(request)
    if console is None:
        return _see_other("/admin/login")
    done = request.query_params.get("done", "")
    notice = f"Done: {done}." if done in set(ReviewAction) else None  # a fixed word, not input
    return await _file_response(request, console, file_id, notice=notice)


async def _file_response(
    request: Request,
    console: Console,
    file_id: str,
    *,
    error: FilegateError | None = None,
    notice: str | None = None,
) -> Response:
    try:
        view = await run_blocking(_file_view, request, console.who, file_id)
    except FilegateError as exc:
        return _html(pages.problem_page("Not found", exc.message), STATUS[exc.code])
    body = pages.file_page(
        view,
        csrf=console.csrf,
        who=console.who.name,
        error=error.message if error else None,
        notice=notice,
    )
    return _html(body, STATUS[error.code] if error else 200)


def _file_view(request: Request, who: Reviewer, file_id: str) -> pages.FileView:
    runtime = get_runtime(request)
    record, audit = review.get_file(runtime.db, who, file_id)
    return pages.FileView(
        record=record,
        explained=files_service.explain_findings(runtime.settings, record),
        audit=audit,
        release_refusal=review.release_refusal(runtime.settings, record),
        preview=_preview(request, record),
    )


def _preview(request: Request, record: FileRecord) -> str:
    """Only clean bytes are ever shown: an image through the download's safe headers, the
    start of a text file escaped into the page; quarantined and rejected bytes never."""
    if record.state is not FileState.CLEAN:
        return f"<p>No preview: the file is {record.state.value}; its bytes are never shown.</p>"
    if record.detected_type in PREVIEW_IMAGES:
        return f'<img class="preview" src="/admin/files/{record.id}/preview" alt="preview">'
    if record.detected_type == PREVIEW_TEXT:
        storage = get_runtime(request).storage
        end = min(record.size, PREVIEW_TEXT_BYTES)
        text = b"".join(files_service.read_content(storage, record, 0, end))
        more = "" if end == record.size else f"<p>The first {end:,} bytes.</p>"
        return f"<pre>{escape(text.decode('utf-8', errors='replace'))}</pre>{more}"
    return f"<p>No preview for {escape(record.detected_type or 'this type')}.</p>"


@router.get("/files/{file_id}/preview")
async def preview(request: Request, file_id: str) -> Response:
    console = await _console(request)
    if console is None:
        return _forbidden("Sign in first.")
    runtime = get_runtime(request)
    try:
        record, _ = await run_blocking(review.get_file, runtime.db, console.who, file_id)
    except FilegateError as exc:
        return _html(pages.problem_page("Not found", exc.message), STATUS[exc.code])
    if record.state is not FileState.CLEAN or record.detected_type not in PREVIEW_IMAGES:
        return _html(pages.problem_page("No preview", "This file has no preview."), 404)
    return send_file(request, runtime, record, facts=request_facts(request, record))


@router.post("/files/{file_id}/{action}")
async def act(request: Request, file_id: str, action: str) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    console, form = posted
    if action not in set(ReviewAction):
        return _html(pages.problem_page("Not found", "No such action."), 404)
    runtime = get_runtime(request)
    services = review.Services(runtime.db, runtime.storage, runtime.queue, runtime.settings)
    try:
        await run_blocking(
            review.act, services, console.who, ReviewAction(action), file_id, form.get("reason", "")
        )
    except FilegateError as exc:
        return await _file_response(request, console, file_id, error=exc)
    if action == ReviewAction.DELETE:
        return _see_other("/admin/audit?done=delete")
    return _see_other(f"/admin/files/{file_id}?done={action}")


@router.get("/audit")
async def audit(request: Request) -> Response:
    console = await _console(request)
    if console is None:
        return _see_other("/admin/login")
    rows = await run_blocking(review.recent, get_runtime(request).db, console.who.tenant)
    notice = "Done: delete." if request.query_params.get("done") == ReviewAction.DELETE else None
    return _html(pages.audit_page(rows, csrf=console.csrf, who=console.who.name, notice=notice))


@router.get("/audit.csv")
async def audit_csv(request: Request) -> Response:
    console = await _console(request)
    if console is None:
        return _forbidden("Sign in first.")
    rows = review.export(get_runtime(request).db, console.who.tenant)
    name = f"filegate-audit-{console.who.tenant}.csv"  # tenant names are [a-z0-9_-]
    headers = {**pages.HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(
        export.csv_lines(rows), media_type="text/csv; charset=utf-8", headers=headers
    )


@router.get("/keys")
async def keys_and_webhooks(request: Request) -> Response:
    console = await _console(request)
    if console is None:
        return _see_other("/admin/login")
    db, tenant = get_runtime(request).db, console.who.tenant
    keys = await run_blocking(keys_service.list_keys, db, tenant)
    endpoints = await run_blocking(webhooks.list_endpoints, db, tenant)
    return _html(pages.keys_page(keys, endpoints, csrf=console.csrf, who=console.who.name))
