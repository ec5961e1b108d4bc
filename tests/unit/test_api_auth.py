"""Authentication, scopes, problem details and the operational endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from filegate.db.engine import Database
from filegate.domain import Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.inspect.pipeline import FINDING_CODES
from filegate.services.keys import (
    VERIFIED_KEY_SECONDS,
    VerifiedKeys,
    authenticate,
    create_key,
    revoke_key,
)
from filegate.web.problems import STATUS
from tests.conftest import Api
from tests.support.samples import png


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer fgk_wrong",
        "Bearer fgk_" + "A" * 43,
        "Bearer " + "x" * 5000,
    ],
)
def test_bad_credentials_are_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = api.client.get("/v1/files", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthenticated"


def test_scopes_are_enforced(api: Api) -> None:
    read_only = api.client.post(
        "/v1/files", files={"file": ("a.png", png())}, headers=api.auth("a-read")
    )
    assert read_only.status_code == 403
    assert read_only.json()["code"] == "forbidden"
    upload_only = api.client.get("/v1/files", headers=api.auth("a-upload"))
    assert upload_only.status_code == 403


def test_revoked_key_stops_working_once_the_verified_window_passes(api: Api) -> None:
    now = [0.0]
    api.client.app.state.verified_keys = VerifiedKeys(clock=lambda: now[0])
    assert api.client.get("/v1/files", headers=api.auth()).status_code == 200
    principal = authenticate(api.runtime.db, api.keys["a"])
    revoke_key(api.runtime.db, principal.key_id)
    now[0] += VERIFIED_KEY_SECONDS
    assert api.client.get("/v1/files", headers=api.auth()).status_code == 401
    # A key never verified in this process is refused at once, window or not.
    _, other = create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.READ}))
    other_id = authenticate(api.runtime.db, other).key_id
    revoke_key(api.runtime.db, other_id)
    assert (
        api.client.get("/v1/files", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    )


def test_verified_keys_are_kept_for_the_window_only_and_bounded(api: Api) -> None:
    db = api.runtime.db
    now = [100.0]
    verified = VerifiedKeys(seconds=0.5, kept=2, clock=lambda: now[0])
    raws = [create_key(db, tenant="t", scopes=frozenset({Scope.READ}))[1] for _ in range(3)]
    first = verified.verify(db, raws[0])
    now[0] += 0.49
    assert verified.recent(raws[0]) == first
    now[0] += 0.01
    assert verified.recent(raws[0]) is None
    for raw in raws:
        verified.verify(db, raw)
    assert verified.recent(raws[0]) is None  # the oldest made room
    assert verified.recent(raws[2]) is not None
    wrong = "fgk_" + "x" * 43
    with pytest.raises(FilegateError):
        verified.verify(db, wrong)
    assert verified.recent(wrong) is None  # a wrong key is asked about every time


def test_every_error_code_has_a_status() -> None:
    assert set(STATUS) == set(ErrorCode)


def test_unknown_route_and_method_are_problems(api: Api) -> None:
    missing = api.client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong = api.client.put("/v1/files", headers=api.auth())
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_a_storage_failure_is_a_503_to_retry_without_internals(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk answered 503 with errno, the storage area and the object key in the body.
    def full(*args: object, **kwargs: object) -> None:
        raise FilegateError(
            ErrorCode.STORAGE_ERROR,
            "cannot create a temp file in quarantine",
            reason="No space left on device",
            errno=28,
            area="quarantine",
            key="01J0000000000000000000000A",
        )

    monkeypatch.setattr(api.runtime.storage, "writer", full)
    response = api.upload(png())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["code"] == "storage_error"
    assert set(body) == {"type", "title", "status", "detail", "code", "request_id"}


def test_crash_is_a_500_problem_without_internals(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail at /srv/filegate/db.py")

    monkeypatch.setattr("filegate.services.files.list_files", boom)
    response = api.client.get("/v1/files", headers=api.auth())
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text
    assert "/srv" not in response.text
    assert "Traceback" not in response.text


def test_request_id_is_echoed_or_replaced(api: Api) -> None:
    echoed = api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    replaced = api.client.get("/healthz", headers={"X-Request-ID": "bad id\n<script>"})
    assert replaced.headers["x-request-id"] != "bad id\n<script>"
    assert len(replaced.headers["x-request-id"]) == 32


def test_oversized_request_headers_are_431(api: Api) -> None:
    headers = {f"X-Filler-{i}": "y" * 1000 for i in range(40)}
    response = api.client.get("/healthz", headers=headers)
    assert response.status_code == 431
    assert response.json()["code"] == "request_headers_too_large"


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "storage": "ok",
        "queue": "ok",
        "scanner": "off",
    }
    api.upload(png())
    metrics = api.client.get("/metrics").text
    assert 'filegate_uploads_total{outcome="accepted"}' in metrics


def test_readiness_fails_when_storage_is_gone(api: Api) -> None:
    import shutil

    root = api.runtime.settings.resolved_storage_dir
    shutil.rmtree(root / "clean")
    (root / "clean").write_text("not a directory")
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == "failing"


def test_openapi_documents_the_api(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert {"/v1/files", "/v1/files/{file_id}", "/v1/files/{file_id}/content"} <= set(spec["paths"])
    body = spec["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


def test_every_error_code_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in text]
    assert missing == []


def test_every_finding_code_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "inspection.md").read_text()
    missing = [code for code in FINDING_CODES if f"`{code}`" not in text]
    assert missing == []


def test_admin_includes_upload_and_read_within_its_tenant(api: Api) -> None:
    # Documented in docs/api.md ("Scopes"): an operator's key does everything in its tenant.
    _, admin = create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.ADMIN}))
    api.keys["admin"] = admin
    uploaded = api.upload(png(), who="admin")
    assert uploaded.status_code == 202
    file_id = uploaded.json()["id"]
    assert api.client.get(f"/v1/files/{file_id}", headers=api.auth("admin")).status_code == 200
    other = api.upload(png(), who="b").json()["id"]
    assert api.client.get(f"/v1/files/{other}", headers=api.auth("admin")).status_code == 404


def test_a_database_that_is_down_is_a_503_to_retry(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every call answered 500 with PostgreSQL down (nothing listens on port 1 here).
    down = Database("postgresql://filegate@127.0.0.1:1/filegate")
    monkeypatch.setattr(api.runtime.db, "_sessions", down._sessions)
    try:
        response = api.client.get("/v1/files", headers=api.auth())
    finally:
        down.dispose()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
    assert "127.0.0.1" not in response.text
