"""The console's HTML: the status page's look (its style and table helper), forms instead of
scripts. Every value is escaped here; callers pass plain data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from filegate.domain import (
    Action,
    ApiKeyRecord,
    AuditRecord,
    FileRecord,
    FileState,
    Finding,
    ReviewAction,
    WebhookEndpointRecord,
)
from filegate.web.status import _STYLE as STATUS_STYLE
from filegate.web.status import PAGE_HEADERS
from filegate.web.status import _code as code
from filegate.web.status import _table as table

# The status page's policy, plus what forms and the preview need: posting to this origin and
# images from it. Still no script of any kind. "same-origin", not "no-referrer": under
# no-referrer a browser sends "Origin: null" with a form's POST, and the origin check needs
# the real one; other sites still get no Referer.
HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
STYLE = (
    STATUS_STYLE
    + """
nav a,nav button{color:#fff;margin-right:16px;background:none;border:0;font:inherit;
cursor:pointer;padding:0;text-decoration:underline}nav form{display:inline}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;background:#fff;padding:8px;
border-radius:8px}label{display:flex;flex-direction:column;font-size:12px;color:#57606a}
.state-clean{color:#1a7f37}.state-rejected{color:#cf222e}.state-quarantined{color:#9a6700}
.error{background:#ffebe9;border-left:6px solid #cf222e;padding:8px 12px}
.notice{background:#dafbe1;border-left:6px solid #2da44e;padding:8px 12px}
.actions{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px}
.actions form{background:#fff;border-radius:8px;padding:8px 12px}
textarea{width:100%;box-sizing:border-box}pre{background:#fff;padding:8px;overflow:auto;
max-height:320px}img.preview{max-width:480px;max-height:320px;background:#fff}
table{background:#fff}
"""
)
ACTION_TEXT = {
    ReviewAction.RELEASE: ("Release to clean", "Serve it despite its findings."),
    ReviewAction.REJECT: ("Reject", "Stop serving it; it stays aside for review."),
    ReviewAction.DELETE: ("Delete", "Remove the file and its bytes for good."),
    ReviewAction.REINSPECT: ("Inspect again", "Back to quarantine for a new verdict."),
}


def when(moment: datetime | None) -> str:
    return "" if moment is None else escape(moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def state(value: FileState | None) -> str:
    if value is None:
        return "deleted"
    return f'<span class="state-{value.value}">{value.value}</span>'


def layout(title: str, body: str, *, csrf: str | None = None, who: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · filegate review</title>
<style>{STYLE}</style></head>
<body>
<header><h1>filegate review</h1>{_nav(csrf, who)}</header>
<main>
{body}
</main></body></html>
"""


def _nav(csrf: str | None, who: str) -> str:
    if csrf is None:
        return "<p>Quarantine review console</p>"
    return (
        f"<p>Signed in with {escape(who)}</p><nav>"
        '<a href="/admin">Files</a><a href="/admin/audit">Audit log</a>'
        '<a href="/admin/keys">Keys and webhooks</a>'
        f'<form method="post" action="/admin/logout">{hidden_csrf(csrf)}'
        '<button type="submit">Sign out</button></form></nav>'
    )


def hidden_csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token)}">'


def messages(error: str | None = None, notice: str | None = None) -> str:
    parts = []
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    if notice:
        parts.append(f'<p class="notice" role="status">{escape(notice)}</p>')
    return "".join(parts)


def login(error: str | None = None) -> str:
    body = f"""{messages(error)}
<section><h2>Sign in</h2>
<p>Paste an API key with the <code>admin</code> scope. The key is checked and forgotten: the
session cookie names the key, never holds it, and ends when the key is revoked.</p>
<form method="post" action="/admin/login">
<label>Admin API key <input type="password" name="key" autocomplete="off" required
size="60"></label>
<p><button type="submit">Sign in</button></p></form></section>"""
    return layout("Sign in", body)


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's filters as the form shows them (the strings the query string held)."""

    state: str = ""
    profile: str = ""
    code: str = ""
    since: str = ""
    until: str = ""

    def query(self, **more: str) -> str:
        values = {k: getattr(self, k) for k in ("state", "profile", "code", "since", "until")}
        return urlencode({k: v for k, v in {**values, **more}.items() if v})


@dataclass(frozen=True, slots=True)
class FileList:
    files: Sequence[FileRecord]
    next_cursor: str | None
    profiles: Sequence[str]
    filters: Filters = field(default_factory=Filters)


def files(listing: FileList, *, csrf: str, who: str, error: str | None = None) -> str:
    rows = (
        (
            f'<a href="/admin/files/{r.id}">{code(r.id)}</a>',
            escape(r.display_name),
            state(r.state),
            escape(r.profile),
            " ".join(code(f.code) for f in r.findings),
            f"{r.size:,}",
            when(r.created_at),
        )
        for r in listing.files
    )
    head = ("id", "name", "state", "profile", "findings", "bytes", "uploaded")
    more = ""
    if listing.next_cursor:
        query = listing.filters.query(cursor=listing.next_cursor)
        more = f'<p><a href="/admin?{escape(query)}" rel="next">Older files</a></p>'
    body = (
        f"{messages(error)}<section><h2>Files</h2>{_filter_form(listing)}"
        f"{table(head, rows) if listing.files else '<p>No file matches.</p>'}{more}</section>"
    )
    return layout("Files", body, csrf=csrf, who=who)


def _filter_form(listing: FileList) -> str:
    chosen = listing.filters
    states = _options(["", *(s.value for s in FileState)], chosen.state, "any state")
    profiles = _options(["", *listing.profiles], chosen.profile, "any profile")
    return f"""<form class="filters" method="get" action="/admin">
<label>State <select name="state">{states}</select></label>
<label>Profile <select name="profile">{profiles}</select></label>
<label>Finding code <input name="code" value="{escape(chosen.code)}" size="24"></label>
<label>Uploaded on or after <input type="date" name="since" value="{escape(chosen.since)}"></label>
<label>and on or before <input type="date" name="until" value="{escape(chosen.until)}"></label>
<button type="submit">Filter</button></form>"""


def _options(values: Iterable[str], chosen: str, blank: str) -> str:
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>'
        f"{escape(v or blank)}</option>"
        for v in values
    )


@dataclass(frozen=True, slots=True)
class FileView:
    record: FileRecord
    explained: Sequence[tuple[Finding, Action, str]]
    audit: Sequence[AuditRecord]
    # Why release is not offered (None: it is); a release's form is shown only when allowed.
    release_refusal: str | None
    preview: str  # HTML already escaped: an <img>, a <pre>, or a sentence why not


def file_page(
    view: FileView, *, csrf: str, who: str, error: str | None = None, notice: str | None = None
) -> str:
    record = view.record
    body = (
        f"{messages(error, notice)}<section><h2>{escape(record.display_name)}</h2>"
        f"{_metadata(record)}</section>"
        f"<section><h2>Findings</h2>{_overridden(view)}{_findings(view.explained)}</section>"
        f"<section><h2>Preview</h2>{view.preview}</section>"
        f"<section><h2>Actions</h2>{_actions(view, csrf)}</section>"
        f"<section><h2>Audit log</h2>{audit_table(view.audit, with_file=False)}</section>"
    )
    return layout(record.display_name, body, csrf=csrf, who=who)


def _metadata(record: FileRecord) -> str:
    rows = [
        ("id", code(record.id)),
        ("state", state(record.state)),
        ("tenant", escape(record.tenant)),
        ("profile", escape(record.profile)),
        ("original name", escape(record.original_name or "")),
        ("declared type", escape(record.declared_type or "")),
        ("detected type", escape(record.detected_type or "")),
        ("bytes served", f"{record.size:,}"),
        ("sha256 served", code(record.sha256)),
        ("bytes received", f"{record.received_size or record.size:,}"),
        ("sha256 received", code(record.received_sha256 or record.sha256)),
        ("sanitised", escape("; ".join(record.sanitized) or "no")),
        ("uploaded", when(record.created_at)),
        ("inspected", when(record.inspected_at)),
        ("updated", when(record.updated_at)),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f"<table>{body}</table>"


def _overridden(view: FileView) -> str:
    """A clean file with findings that reject was released by a reviewer: say so."""
    rejecting = any(action is Action.REJECT for _, action, _ in view.explained)
    if view.record.state is not FileState.CLEAN or not rejecting:
        return ""
    return "<p>A reviewer released this file despite these findings; the audit log says why.</p>"


def _findings(explained: Sequence[tuple[Finding, Action, str]]) -> str:
    if not explained:
        return "<p>No findings.</p>"
    rows = (
        (code(f.code), escape(f.message), code(f.where or ""), escape(action.value), code(why))
        for f, action, why in explained
    )
    return table(("code", "message", "evidence at", "action", "decided by"), rows)


def _actions(view: FileView, csrf: str) -> str:
    offered = {
        FileState.REJECTED: [ReviewAction.RELEASE, ReviewAction.REINSPECT, ReviewAction.DELETE],
        FileState.CLEAN: [ReviewAction.REJECT, ReviewAction.REINSPECT, ReviewAction.DELETE],
        FileState.QUARANTINED: [ReviewAction.DELETE],
    }[view.record.state]
    forms = []
    for action in offered:
        if action is ReviewAction.RELEASE and view.release_refusal:
            forms.append(
                f"<form><h3>{ACTION_TEXT[action][0]}</h3><p>Not possible: "
                f"{escape(view.release_refusal)}.</p></form>"
            )
            continue
        forms.append(_action_form(view.record.id, action, csrf))
    return f'<div class="actions">{"".join(forms)}</div>'


def _action_form(file_id: str, action: ReviewAction, csrf: str) -> str:
    title, hint = ACTION_TEXT[action]
    return f"""<form method="post" action="/admin/files/{file_id}/{action.value}"
data-action="{action.value}"><h3>{title}</h3><p>{hint}</p>{hidden_csrf(csrf)}
<label>Reason (required) <textarea name="reason" rows="2" maxlength="2000"></textarea></label>
<p><button type="submit">{title}</button></p></form>"""


def audit_table(rows: Sequence[AuditRecord], *, with_file: bool) -> str:
    if not rows:
        return "<p>No review actions yet.</p>"
    head = ["when", "who", "action", "before", "after", "reason"]
    if with_file:
        head.insert(1, "file")
    cells = []
    for row in rows:
        line = [
            when(row.at),
            escape(row.actor),
            escape(row.action.value),
            state(row.before),
            state(row.after),
            escape(row.reason),
        ]
        if with_file:
            line.insert(1, f'<a href="/admin/files/{row.file_id}">{code(row.file_id)}</a>')
        cells.append(line)
    return table(head, cells)


def audit_page(
    rows: Sequence[AuditRecord], *, csrf: str, who: str, notice: str | None = None
) -> str:
    body = (
        f"{messages(notice=notice)}<section><h2>Audit log</h2>"
        "<p>The newest review actions of this tenant. "
        '<a href="/admin/audit.csv">Export all as CSV</a></p>'
        f"{audit_table(rows, with_file=True)}</section>"
    )
    return layout("Audit log", body, csrf=csrf, who=who)


def keys_page(
    keys: Sequence[ApiKeyRecord],
    endpoints: Sequence[WebhookEndpointRecord],
    *,
    csrf: str,
    who: str,
) -> str:
    key_rows = (
        (
            escape(k.name),
            code(k.prefix + "…"),
            escape(", ".join(sorted(s.value for s in k.scopes))),
            when(k.created_at),
            when(k.revoked_at) or "active",
        )
        for k in keys
    )
    hook_rows = (
        (
            code(e.id),
            escape(e.url),
            escape(", ".join(sorted(t.value for t in e.events))),
            when(e.created_at),
        )
        for e in endpoints
    )
    body = (
        "<section><h2>API keys</h2><p>Created and revoked with <code>filegate keys</code>.</p>"
        f"{table(('name', 'prefix', 'scopes', 'created', 'revoked'), key_rows)}</section>"
        "<section><h2>Webhook endpoints</h2><p>Managed through <code>/v1/webhooks</code>.</p>"
        f"{table(('id', 'url', 'events', 'created'), hook_rows)}</section>"
    )
    return layout("Keys and webhooks", body, csrf=csrf, who=who)


def problem_page(title: str, message: str) -> str:
    body = f'{messages(message)}<p><a href="/admin">Back to the console</a></p>'
    return layout(title, body)
