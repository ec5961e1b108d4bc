"""The status page: ``GET /v1/status`` (JSON, admin key) and ``GET /status`` (the same as HTML).

The HTML is rendered here, without JavaScript: four cards (up, slow, jobs, deploy), a small
SVG chart of the last hour's traffic, and the releases, processes, failed jobs and failing
webhook endpoints behind the verdicts. Every value is escaped; the page loads nothing else.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from filegate.blocking import run_blocking
from filegate.domain import Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.release import current_release
from filegate.services import readiness
from filegate.services import status as status_service
from filegate.web.deps import Admin, RuntimeDep, principal_for

router = APIRouter(tags=["operations"])

QUESTIONS = (
    ("up", "Is it up?"),
    ("slow", "Is it slow?"),
    ("jobs", "Are jobs failing?"),
    ("deploy", "Did the last deploy change anything?"),
)
# No scripts, no outside resources: inline styles and inline SVG only.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
REFRESH_SECONDS = 30


async def _report(request: Request, viewer: str | None) -> dict[str, Any]:
    runtime = request.app.state.runtime
    checker = request.app.state.readiness
    assert isinstance(checker, readiness.Readiness)
    live = await checker.report()
    signatures = live.facts.get("scanner")  # the date clamd's signatures were published
    return await run_blocking(
        status_service.status,
        runtime.db,
        runtime.settings,
        current_release(runtime.settings.release),
        live.checks,
        signatures_at=signatures if isinstance(signatures, datetime) else None,
        viewer=viewer,
    )


@router.get(
    "/v1/status",
    summary="Up? Slow? Jobs failing? Did the last deploy change anything?",
    description="Each of `up`, `slow`, `jobs` and `deploy` has a `verdict` (`ok`, `warn` or "
    "`bad`), a one-sentence `summary` and the numbers behind it. Needs an admin key. "
    "docs/operations.md explains every verdict.",
)
async def get_status(request: Request, principal: Admin) -> JSONResponse:
    report = await _report(request, principal.tenant)
    return JSONResponse(report, headers={"Cache-Control": "private, no-store"})


@router.get("/status", include_in_schema=False, response_class=HTMLResponse)
async def status_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    viewer = None if runtime.settings.status_public else await _page_admin(request)
    return HTMLResponse(render(await _report(request, viewer)), headers=PAGE_HEADERS)


# A browser cannot send a bearer key, but it asks for a password when challenged with Basic:
# the admin key is the password (any user name). Scripts may send the bearer key as usual.
BASIC_CHALLENGE = 'Basic realm="filegate status", charset="UTF-8"'


async def _page_admin(request: Request) -> str:
    """The tenant of the admin key the page was opened with."""
    token = _page_token(request.headers.get("authorization", ""))
    try:
        if not token:
            raise FilegateError(ErrorCode.UNAUTHENTICATED, "No API key.")
        return (await principal_for(request, token, Scope.ADMIN)).tenant
    except FilegateError as exc:
        if exc.code is not ErrorCode.UNAUTHENTICATED:
            raise
        raise FilegateError(
            ErrorCode.UNAUTHENTICATED,
            "The status page needs an admin API key: as the password when the browser asks "
            "(any user name), or as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": BASIC_CHALLENGE},
        ) from None


def _page_token(header: str) -> str:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2].strip()


def render(report: dict[str, Any]) -> str:
    cards = "\n".join(_card(key, question, report[key]) for key, question in QUESTIONS)
    worst = status_service.worst(*(report[key]["verdict"] for key, _ in QUESTIONS))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{worst.upper()} · filegate status</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>filegate status</h1>
<p>Release <code>{escape(report["release"])}</code> · {_when(report["generated_at"])} ·
refreshes every {REFRESH_SECONDS} s</p></header>
<main>
<div class="cards">
{cards}
</div>
<section><h2>Traffic, last hour</h2>{_chart(report["traffic"])}</section>
{_given_up(report["jobs"]["given_up"])}
{_endpoints(report["jobs"]["failing_webhook_endpoints"])}
<section><h2>Releases</h2>{_releases(report["releases"])}</section>
<section><h2>Processes seen in the last minute</h2>{_processes(report["processes"])}</section>
</main></body></html>
"""


def _card(key: str, question: str, answer: dict[str, Any]) -> str:
    verdict = answer["verdict"]
    return (
        f'<section class="card {verdict}" data-question="{key}" data-verdict="{verdict}">'
        f'<h2>{escape(question)}</h2><p class="verdict">{verdict.upper()}</p>'
        f'<p class="summary">{escape(answer["summary"])}</p>'
        f"{_numbers(key, answer)}</section>"
    )


def _numbers(key: str, answer: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    if key == "up":
        rows += [(name, state) for name, state in answer["checks"].items()]
        rows.append(("workers seen", str(answer["workers_seen"])))
        if answer["signatures_age_hours"] is not None:
            rows.append(("signatures age", f"{answer['signatures_age_hours']} h"))
    elif key == "slow":
        for name, windows in answer.items():
            if isinstance(windows, dict) and "last_5_minutes" in windows:
                recent, usual = windows["last_5_minutes"], windows["previous_24_hours"]
                rows.append(
                    (
                        name.replace("_", " "),
                        f"p95 {_p95(recent)} last 5 min · {_p95(usual)} the 24 h before",
                    )
                )
    elif key == "jobs":
        for name, row in answer["per_job"].items():
            if row["runs_last_hour"] or row["oldest_waiting_seconds"] is not None:
                rows.append(
                    (
                        name,
                        f"{row['failures_last_hour']}/{row['runs_last_hour']} failed"
                        + (
                            f" · oldest waiting {row['oldest_waiting_seconds']} s"
                            if row["oldest_waiting_seconds"] is not None
                            else ""
                        ),
                    )
                )
    elif key == "deploy":
        rows.append(("previous", answer["previous_release"] or "none"))
        for side in ("current", "previous"):
            numbers = answer.get(side)
            if numbers:
                rate = numbers["error_rate"]
                rows.append(
                    (
                        side,
                        f"{numbers['requests']} requests · errors "
                        f"{'-' if rate is None else f'{rate:.1%}'} · verdict p95 "
                        f"{_seconds(numbers['verdict_p95_seconds'])}",
                    )
                )
    if not rows:
        return ""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _seconds(value: float | None) -> str:
    """A bucket estimate, with no more digits than it deserves."""
    return "-" if value is None else f"{value:.2g} s"


def _p95(window: dict[str, Any]) -> str:
    n = window["samples"]
    return "no samples" if not n else f"{_seconds(window['p95_seconds'])} (n={n})"


def _when(iso: str) -> str:
    """``2026-12-02 04:28:30 UTC`` from an ISO timestamp in UTC."""
    return escape(iso[:19].replace("T", " ") + " UTC")


def _chart(traffic: list[dict[str, Any]]) -> str:
    """Bars per minute, oldest left: requests in grey, server errors in red over them."""
    width, height, bar = 600, 80, 10
    top = max((row["requests"] for row in traffic), default=0) or 1
    bars = []
    for index, row in enumerate(traffic):
        x = index * bar
        for value, css in ((row["requests"], "req"), (row["errors"], "err")):
            if value:
                h = max(round(value / top * height), 1)
                bars.append(
                    f'<rect class="{css}" x="{x}" y="{height - h}" width="{bar - 2}" '
                    f'height="{h}"><title>{_when(row["minute"])}: {value}</title></rect>'
                )
    total = sum(row["requests"] for row in traffic)
    errors = sum(row["errors"] for row in traffic)
    return (
        f'<figure><svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{total} requests, {errors} server errors in the last hour">'
        f"{''.join(bars)}</svg><figcaption><span>60 min ago</span><span>peak {top}/min"
        f"</span><span>now</span></figcaption></figure>"
        f"<p>{total} requests, {errors} server errors (probes and this page not counted).</p>"
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of cells already rendered (escaped) by the caller."""
    header = "".join(f"<th>{escape(name)}</th>" for name in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _given_up(jobs: list[dict[str, Any]]) -> str:
    if not jobs:
        return ""
    rows = (
        (
            escape(job["job"]),
            _code(job.get("subject", "")),
            escape(job.get("error") or ""),
            _log_link(job["log_query"]) if "log_query" in job else "",
        )
        for job in jobs
    )
    table = _table(("job", "subject", "last error", "logs"), rows)
    return f"<section><h2>Jobs that gave up (24 h)</h2>{table}</section>"


def _log_link(query: dict[str, str]) -> str:
    text = _code(query["query"])
    url = query.get("url")
    if url and url.startswith(("https://", "http://")):
        return f'<a href="{escape(url)}" rel="noreferrer">{text}</a>'
    return text


def _endpoints(endpoints: list[dict[str, Any]]) -> str:
    if not endpoints:
        return ""
    rows = (
        (
            escape(e["host"] or "another tenant"),
            _code(e.get("endpoint_id", "")),
            str(e["failing_events"]),
            str(e["given_up"]),
            escape(e.get("last_error", "")),
        )
        for e in endpoints
    )
    head = ("host", "endpoint", "failing events", "given up", "last error")
    return f"<section><h2>Webhook endpoints failing (24 h)</h2>{_table(head, rows)}</section>"


def _releases(releases: list[dict[str, Any]]) -> str:
    rows = (
        (_code(r["release"]), _when(r["first_started_at"]), _when(r["last_seen_at"]))
        for r in reversed(releases)
    )
    return _table(("release", "first started", "last seen"), rows)


def _processes(processes: list[dict[str, Any]]) -> str:
    rows = (
        (escape(p["role"]), _code(p["release"]), escape(_process_name(p)), _when(p["started_at"]))
        for p in processes
    )
    return _table(("role", "release", "process", "started"), rows)


def _process_name(process: dict[str, Any]) -> str:
    """host:pid, for an admin; nothing on a public page."""
    return f"{process['host']}:{process['pid']}" if "host" in process else ""


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{padding:16px 24px;background:#1b1f24;color:#fff}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1d9}main{padding:16px 24px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:16px}
.card{background:#fff;border-radius:8px;padding:12px 16px;border-left:8px solid #999}
.card.ok{border-color:#2da44e}.card.warn{border-color:#d4a72c}.card.bad{border-color:#cf222e}
.card h2{font-size:16px;margin:0}.verdict{font-weight:700;font-size:22px;margin:4px 0}
.ok .verdict{color:#1a7f37}.warn .verdict{color:#9a6700}.bad .verdict{color:#cf222e}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{text-align:left;padding:2px 8px 2px 0;vertical-align:top}th{color:#57606a;font-weight:500}
section{margin-top:16px}section>h2{font-size:16px}
figure{margin:0;max-width:600px}svg{display:block;width:100%;height:80px;background:#fff;
border-radius:4px}.req{fill:#8c959f}.err{fill:#cf222e}
figcaption{display:flex;justify-content:space-between;font-size:12px;color:#57606a}
code{overflow-wrap:anywhere}td{overflow-wrap:anywhere}
"""
