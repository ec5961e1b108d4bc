"""The review console over HTTP, in process, on SQLite and PostgreSQL: signing in, the
session cookie's attributes, CSRF and origin checks, every route refused without a session,
the forms' errors, the preview rules and the CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from filegate.config import Settings
from filegate.domain import FileState, Finding
from filegate.services.keys import list_keys, revoke_key
from filegate.web.admin.session import COOKIE, SESSION_SECONDS
from filegate.web.problems import _endpoints
from tests.conftest import Api
from tests.support.review import EMPTY, SCRIPT, TEXT, new_admin_key, review_settings, stored
from tests.support.samples import png

# Plain HTTP gets a session only on loopback (docs/admin-console.md).
LOCAL = "http://127.0.0.1"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ``api`` fixture (tests/conftest.py) runs on these."""
    return review_settings(tmp_path, database_url, monkeypatch)


@pytest.fixture
def admin_key(api: Api) -> str:
    return new_admin_key(api, "ops")[1]


def sign_in(client: TestClient, key: str, base: str = LOCAL) -> httpx.Response:
    return client.post(f"{base}/admin/login", data={"key": key}, follow_redirects=False)


@pytest.fixture
def console(api: Api, admin_key: str) -> Iterator[TestClient]:
    answer = sign_in(api.client, admin_key)
    assert answer.status_code == 303, answer.text
    yield api.client
    api.client.cookies.clear()


def csrf(client: TestClient, path: str = "/admin") -> str:
    page = client.get(LOCAL + path)
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found is not None
    return found.group(1)


def act(client: TestClient, file_id: str, action: str, **form: str) -> httpx.Response:
    return client.post(f"{LOCAL}/admin/files/{file_id}/{action}", data=form, follow_redirects=False)


# --- signing in -------------------------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie_that_names_no_key(api: Api, admin_key: str) -> None:
    form = api.client.get(LOCAL + "/admin/login")
    assert form.status_code == 200
    policy = form.headers["content-security-policy"]
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    assert "form-action 'self'" in policy
    assert form.headers["cache-control"] == "private, no-store"

    answer = sign_in(api.client, admin_key)

    assert (answer.status_code, answer.headers["location"]) == (303, "/admin")
    cookie = answer.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "path=/admin" in cookie.lower()
    assert f"max-age={SESSION_SECONDS}" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP on loopback
    assert admin_key not in cookie
    assert admin_key.removeprefix("fgk_")[:10] not in cookie
    assert api.client.get(LOCAL + "/admin").status_code == 200


def test_over_https_the_cookie_is_secure_and_plain_http_elsewhere_is_refused(
    api: Api, admin_key: str
) -> None:
    secure = sign_in(api.client, admin_key, base="https://files.example.com")
    assert secure.status_code == 303
    assert "secure" in secure.headers["set-cookie"].lower().split("; ")

    plain = sign_in(api.client, admin_key, base="http://files.example.com")
    assert plain.status_code == 400
    assert "set-cookie" not in plain.headers
    assert "HTTPS" in plain.text


@pytest.mark.parametrize(
    ("key", "status", "text"),
    [
        pytest.param("fgk_" + "A" * 43, 401, "not a valid API key", id="never-issued"),
        pytest.param("", 401, "not a valid API key", id="empty"),
        pytest.param("reader", 403, "lacks the admin scope", id="not-admin"),
    ],
)
def test_sign_in_refuses_a_key_that_is_not_an_admin_key(
    api: Api, key: str, status: int, text: str
) -> None:
    raw = api.keys["a-read"] if key == "reader" else key
    answer = sign_in(api.client, raw)
    assert answer.status_code == status
    assert text in answer.text
    assert "set-cookie" not in answer.headers


def test_sign_in_attempts_are_rate_limited(api: Api) -> None:
    statuses = [sign_in(api.client, "fgk_" + "B" * 43).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]


def test_a_revoked_keys_session_ends_at_once(api: Api, console: TestClient, admin_key: str) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    token = csrf(console)
    db = api.runtime.db
    key_id = next(k.id for k in list_keys(db, "tenant-a") if k.name == "ops")
    revoke_key(db, key_id)

    page = console.get(LOCAL + "/admin", follow_redirects=False)
    posted = act(console, record.id, "release", csrf=token, reason="after revocation")

    assert (page.status_code, page.headers["location"]) == (303, "/admin/login")
    assert posted.status_code == 403
    assert stored_state(api, record.id) is FileState.REJECTED


def stored_state(api: Api, file_id: str) -> FileState | None:
    answer = api.client.get(f"/v1/files/{file_id}", headers=api.auth())
    return FileState(answer.json()["state"]) if answer.status_code == 200 else None


def test_a_tampered_or_foreign_cookie_is_no_session(api: Api, console: TestClient) -> None:
    value = console.cookies.get(COOKIE)
    assert value is not None
    parts = value.split(".")
    parts[2] = parts[2][:-1] + ("A" if parts[2][-1] != "A" else "B")  # another key id
    console.cookies.clear()
    console.cookies.set(COOKIE, ".".join(parts))
    assert console.get(LOCAL + "/admin", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session_in_the_browser(console: TestClient) -> None:
    token = csrf(console)
    answer = console.post(LOCAL + "/admin/logout", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert "max-age=0" in answer.headers["set-cookie"].lower()
    assert console.get(LOCAL + "/admin", follow_redirects=False).status_code == 303


# --- CSRF and origin --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        pytest.param({}, {}, id="no-token"),
        pytest.param({"csrf": "forged"}, {}, id="wrong-token"),
        pytest.param({"csrf": "TOKEN"}, {"Origin": "https://evil.example"}, id="other-origin"),
        pytest.param({"csrf": "TOKEN"}, {"Origin": "null"}, id="null-origin"),
        pytest.param({"csrf": "TOKEN"}, {"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"csrf": "TOKEN"}, {"Sec-Fetch-Site": "same-site"}, id="same-site"),
    ],
)
def test_a_post_without_the_token_or_from_elsewhere_is_refused(
    api: Api, console: TestClient, form: dict[str, str], headers: dict[str, str]
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    token = csrf(console)
    form = {k: token if v == "TOKEN" else v for k, v in form.items()}

    answer = console.post(
        f"{LOCAL}/admin/files/{record.id}/release",
        data={**form, "reason": "looks fine"},
        headers=headers,
        follow_redirects=False,
    )

    assert answer.status_code == 403
    assert stored_state(api, record.id) is FileState.REJECTED


def test_a_token_of_another_session_is_refused(
    api: Api, console: TestClient, admin_key: str
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    old = csrf(console)
    sign_in(console, admin_key)  # a new session, a new token
    answer = act(console, record.id, "release", csrf=old, reason="x")
    assert answer.status_code == 403


def test_the_same_origin_with_its_token_passes(api: Api, console: TestClient) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    answer = console.post(
        f"{LOCAL}/admin/files/{record.id}/release",
        data={"csrf": csrf(console), "reason": "empty is fine here"},
        headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (
        303,
        f"/admin/files/{record.id}?done=release",
    )
    page = console.get(LOCAL + answer.headers["location"])
    assert "Done: release." in page.text
    assert "empty is fine here" in page.text
    assert stored_state(api, record.id) is FileState.CLEAN


def test_every_console_route_needs_a_session(api: Api) -> None:
    file_id = stored(api, FileState.CLEAN).id
    seen = {}
    routes = [
        (method, endpoint.path)
        for endpoint in _endpoints(api.client.app.router.routes)  # type: ignore[attr-defined]
        if endpoint.path.startswith("/admin")
        for method in endpoint.methods - {"HEAD"}
    ]
    assert len(routes) >= 10
    for method, path in routes:
        url = LOCAL + path.replace("{file_id}", file_id).replace("{action}", "delete")
        answer = api.client.request(method, url, follow_redirects=False)
        seen[(method, path)] = answer.status_code
        if path == "/admin/login":
            continue
        assert answer.status_code in (303, 403), (method, path)
        assert "ops" not in answer.text
        if answer.status_code == 303:
            assert answer.headers["location"] == "/admin/login"
    assert stored_state(api, file_id) is FileState.CLEAN


# --- actions and pages ------------------------------------------------------------------------


def test_an_action_without_a_reason_shows_the_form_again_with_the_error(
    api: Api, console: TestClient
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    answer = act(console, record.id, "release", csrf=csrf(console), reason="  ")
    assert answer.status_code == 400
    assert "Every action needs a reason." in answer.text
    assert 'role="alert"' in answer.text
    assert stored_state(api, record.id) is FileState.REJECTED


def test_release_of_an_antivirus_hit_is_not_offered_and_refused(
    api: Api, console: TestClient
) -> None:
    record = stored(api, FileState.REJECTED, (Finding("malware_found", "ClamAV found X"),))
    page = console.get(f"{LOCAL}/admin/files/{record.id}")
    assert 'data-action="release"' not in page.text
    assert "antivirus findings are never released" in page.text
    answer = act(console, record.id, "release", csrf=csrf(console), reason="trust me")
    assert answer.status_code == 409
    assert stored_state(api, record.id) is FileState.REJECTED


def test_the_file_page_shows_findings_evidence_and_escapes_everything(
    api: Api, console: TestClient
) -> None:
    evil = Finding("script", "<script>alert(1)</script>", where="byte <0>")
    record = stored(api, FileState.REJECTED, (evil,))
    page = console.get(f"{LOCAL}/admin/files/{record.id}")
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "byte &lt;0&gt;" in page.text
    assert "profiles.default.overridable does not list script" in page.text
    assert "its bytes are never shown" in page.text
    assert f"/admin/files/{record.id}/preview" not in page.text


def test_previews_only_clean_bytes(api: Api, console: TestClient) -> None:
    clean = stored(api, FileState.CLEAN)
    rejected = stored(api, FileState.REJECTED, (SCRIPT,))
    page = console.get(f"{LOCAL}/admin/files/{clean.id}")
    assert "<pre>line 0 of a note under review" in page.text
    # Images only through the preview route, and only clean images.
    for file_id in (clean.id, rejected.id):
        answer = console.get(f"{LOCAL}/admin/files/{file_id}/preview")
        assert answer.status_code == 404


def test_a_clean_image_is_previewed_with_the_downloads_safe_headers(
    api: Api, console: TestClient
) -> None:
    image = stored(api, FileState.CLEAN, data=png(), detected_type="image/png")
    page = console.get(f"{LOCAL}/admin/files/{image.id}")
    assert f'<img class="preview" src="/admin/files/{image.id}/preview"' in page.text

    answer = console.get(f"{LOCAL}/admin/files/{image.id}/preview")

    assert (answer.status_code, answer.content) == (200, png())
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert answer.headers["cache-control"] == "private, no-store"


def test_the_list_filters_and_refuses_bad_filters(api: Api, console: TestClient) -> None:
    rejected = stored(api, FileState.REJECTED, (SCRIPT,))
    clean = stored(api, FileState.CLEAN)
    listed = console.get(LOCAL + "/admin?state=rejected&code=script")
    assert rejected.id in listed.text
    assert clean.id not in listed.text
    for query in ("state=bogus", "since=yesterday", "code=DROP%20TABLE"):
        assert console.get(f"{LOCAL}/admin?{query}").status_code == 400


def test_keys_and_webhooks_are_listed_without_secrets(api: Api, console: TestClient) -> None:
    page = console.get(LOCAL + "/admin/keys")
    assert page.status_code == 200
    assert "ops" in page.text
    assert api.keys["a"] not in page.text
    assert "whsec_" not in page.text


def test_the_audit_export_is_csv_safe_for_spreadsheets(api: Api, console: TestClient) -> None:
    first = stored(api, FileState.REJECTED, (EMPTY,))
    second = stored(api, FileState.CLEAN)
    token = csrf(console)
    assert act(console, first.id, "release", csrf=token, reason="fine").status_code == 303
    formula = '=HYPERLINK("http://evil.example")'
    assert act(console, second.id, "delete", csrf=token, reason=formula).status_code == 303

    answer = console.get(LOCAL + "/admin/audit.csv")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["action"], r["file_id"], r["before"], r["after"]) for r in rows] == [
        ("release", first.id, "rejected", "clean"),
        ("delete", second.id, "clean", "deleted"),
    ]
    assert rows[1]["reason"] == "'" + formula
    audit_page = console.get(LOCAL + "/admin/audit")
    assert first.id in audit_page.text
    assert second.id in audit_page.text
    assert TEXT.decode()[:10] not in answer.text
