"""Upload tokens: minted by a backend, used by browsers, held to their grant on every route;
and CORS per tenant, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from filegate.cli import app
from filegate.config import Quotas, Settings
from filegate.db.models import FileRow, UploadRow, UploadTokenRow
from filegate.domain import Scope
from filegate.errors import FilegateError
from filegate.inspect.sandbox import Sandbox
from filegate.services import upload_tokens
from filegate.services.keys import create_key, revoke_key
from filegate.web.problems import _endpoints
from tests.conftest import Api, running_api
from tests.e2e.live import LiveServer
from tests.support.services import without_filegate_env

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
TEXT = b"a plain note\n"
ULID = "01JE0000000000000000000000"
# The routes an upload token may call; every other route refuses it.
TOKEN_ROUTES = {
    ("POST", "/v1/files"),
    ("POST", "/v1/tus/"),
    ("HEAD", "/v1/tus/{upload_id}"),
    ("PATCH", "/v1/tus/{upload_id}"),
    ("DELETE", "/v1/tus/{upload_id}"),
    ("GET", "/v1/files/{file_id}"),
    ("GET", "/v1/files/{file_id}/content"),
    ("HEAD", "/v1/files/{file_id}/content"),
}


def mint(api: Api, who: str = "a", **body: Any) -> dict[str, Any]:
    answer = api.client.post("/v1/upload-tokens", json=body, headers=api.auth(who))
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def bearer(token: dict[str, Any] | str) -> dict[str, str]:
    raw = token if isinstance(token, str) else token["token"]
    return {"Authorization": f"Bearer {raw}"}


def upload(api: Api, token: dict[str, Any], data: bytes = TEXT, **form: str) -> httpx.Response:
    files = {"file": ("note.txt", data, "text/plain")}
    return api.client.post("/v1/files", files=files, data=form, headers=bearer(token))


def tus_create(
    api: Api,
    token: dict[str, Any] | None,
    length: int = len(TEXT),
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    auth = bearer(token) if token else api.auth()
    headers = {**TUS, **auth, "Upload-Length": str(length), **(extra or {})}
    return api.client.post("/v1/tus/", headers=headers)


def upload_id(created: httpx.Response) -> str:
    assert created.status_code == 201, created.text
    return str(created.headers["location"]).rsplit("/", 1)[1]


def tus_metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def problem(answer: httpx.Response) -> dict[str, Any]:
    """The problem without its request id, to compare two refusals."""
    body: dict[str, Any] = answer.json()
    body.pop("request_id", None)
    return body


# --- minting ----------------------------------------------------------------------------------


def test_a_minted_token_answers_the_contract_and_is_stored_as_a_digest(api: Api) -> None:
    made = mint(api)

    assert set(made) == {
        "id",
        "token",
        "tenant",
        "profile",
        "max_size",
        "max_files",
        "metadata",
        "expires_at",
    }
    assert re.fullmatch(r"fgt_[A-Za-z0-9_-]{43}", made["token"])
    assert made["tenant"] == "tenant-a"
    assert made["profile"] == "default"
    assert made["max_size"] == api.runtime.settings.profile("default").max_size
    assert (made["max_files"], made["metadata"]) == (1, {})
    with api.runtime.db.session() as session:
        row = session.scalars(select(UploadTokenRow)).one()
        assert row.token_hash == hashlib.sha256(made["token"].encode()).hexdigest()
        lifetime = (row.expires_at - row.created_at).total_seconds()
    assert lifetime == upload_tokens.DEFAULT_SECONDS


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"profile": "nope"}, "unknown_profile"),
        ({"max_size": 100 * 1024 * 1024 + 1}, "invalid_request"),
        ({"max_size": 0}, "invalid_request"),
        ({"max_files": 0}, "invalid_request"),
        ({"max_files": 1001}, "invalid_request"),
        ({"expires_in": 0}, "invalid_request"),
        ({"expires_in": 86_401}, "invalid_request"),
        ({"metadata": {"profile": "images"}}, "invalid_request"),
        ({"metadata": {"bad key": "x"}}, "invalid_request"),
        ({"metadata": {"n": 1}}, "invalid_request"),
        ({"metadata": {"big": "x" * 2000}}, "invalid_request"),
        ({"unknown": 1}, "invalid_request"),
    ],
)
def test_minting_refuses_what_the_grant_cannot_be(
    api: Api, body: dict[str, Any], code: str
) -> None:
    answer = api.client.post("/v1/upload-tokens", json=body, headers=api.auth())

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code


def test_only_upload_keys_mint_and_an_upload_token_cannot(api: Api) -> None:
    token = mint(api, max_files=5)

    by_reader = api.client.post("/v1/upload-tokens", json={}, headers=api.auth("a-read"))
    by_uploader = api.client.post("/v1/upload-tokens", json={}, headers=api.auth("a-upload"))
    by_token = api.client.post("/v1/upload-tokens", json={}, headers=bearer(token))

    assert by_reader.status_code == 403
    assert by_uploader.status_code == 201
    assert by_token.status_code == 403
    assert by_token.json()["code"] == "forbidden"
    assert "upload token" in by_token.json()["detail"]


# --- the authorization matrix -----------------------------------------------------------------


def _filled(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def test_every_route_refuses_a_token_unless_it_is_an_upload_route(api: Api) -> None:
    """Walks the app's routes, so a route added later is checked without being listed here.
    A route that answers without credentials (health, metrics, the API description, share
    links, pages) gives a token nothing it would not give anyone."""
    token = mint(api, max_files=50)
    file_id = upload(api, token).json()["id"]
    seen = set()
    for endpoint in _endpoints(api.client.app.router.routes):  # type: ignore[attr-defined]
        for method in sorted(endpoint.methods):
            route = (method, endpoint.path)
            if route in TOKEN_ROUTES or method == "OPTIONS":
                continue
            path = _filled(endpoint.path, file_id)
            anyone = api.client.request(method, path, json={} if method != "GET" else None)
            if anyone.status_code != 401:
                continue  # open to everyone
            answer = api.client.request(method, path, headers=bearer(token), json={})
            seen.add(route)
            assert answer.status_code == 403, (route, answer.text)
            if path.startswith("/v1/"):
                assert answer.json()["code"] == "forbidden", route
    # The ones a token must not reach are among those checked.
    assert {
        ("GET", "/v1/files"),
        ("DELETE", "/v1/files/{file_id}"),
        ("POST", "/v1/files/{file_id}/links"),
        ("DELETE", "/v1/files/{file_id}/links/{link_id}"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/usage"),
        ("GET", "/v1/status"),
        ("POST", "/v1/upload-tokens"),
        ("DELETE", "/v1/upload-tokens/{token_id}"),
    } <= seen


def test_every_token_route_exists(api: Api) -> None:
    routes = {
        (method, endpoint.path)
        for endpoint in _endpoints(api.client.app.router.routes)  # type: ignore[attr-defined]
        for method in endpoint.methods
    }

    assert routes >= TOKEN_ROUTES


def test_a_token_reads_its_own_files_and_no_one_elses(api: Api) -> None:
    mine, theirs = mint(api, max_files=5), mint(api, max_files=5)
    own = upload(api, mine).json()["id"]
    other = upload(api, theirs).json()["id"]
    by_key = api.upload(TEXT, "note.txt").json()["id"]
    api.inspect()

    reads = [("GET", "/v1/files/{}"), ("GET", "/v1/files/{}/content")]
    for method, path in [*reads, ("HEAD", "/v1/files/{}/content")]:
        allowed = api.client.request(method, path.format(own), headers=bearer(mine))
        assert allowed.status_code == 200, (method, path)
        for stranger in (other, by_key):
            refused = api.client.request(method, path.format(stranger), headers=bearer(mine))
            assert refused.status_code == 404, (method, path)
    assert api.client.get(f"/v1/files/{own}/content", headers=bearer(mine)).content == TEXT
    # The tenant's keys see every file, whoever uploaded it.
    assert api.client.get(f"/v1/files/{own}", headers=api.auth()).status_code == 200


def test_a_token_continues_only_the_tus_uploads_it_created(api: Api) -> None:
    mine, theirs = mint(api, max_files=5), mint(api, max_files=5)
    own = upload_id(tus_create(api, mine))
    other = upload_id(tus_create(api, theirs))
    by_key = upload_id(tus_create(api, None))

    for stranger in (other, by_key):
        head = api.client.head(f"/v1/tus/{stranger}", headers={**TUS, **bearer(mine)})
        patch = api.client.patch(
            f"/v1/tus/{stranger}",
            headers={**TUS, **OCTET, **bearer(mine), "Upload-Offset": "0"},
            content=TEXT,
        )
        delete = api.client.delete(f"/v1/tus/{stranger}", headers={**TUS, **bearer(mine)})
        assert (head.status_code, patch.status_code, delete.status_code) == (404, 404, 404)
    assert api.client.head(f"/v1/tus/{other}", headers={**TUS, **bearer(theirs)}).status_code == 200

    head = api.client.head(f"/v1/tus/{own}", headers={**TUS, **bearer(mine)})
    assert head.status_code == 200
    patch = api.client.patch(
        f"/v1/tus/{own}",
        headers={**TUS, **OCTET, **bearer(mine), "Upload-Offset": "0"},
        content=TEXT,
    )
    assert patch.status_code == 204, patch.text
    # The tus upload id is the file id.
    assert api.client.get(f"/v1/files/{own}", headers=bearer(mine)).status_code == 200
    assert api.client.delete(f"/v1/tus/{own}", headers={**TUS, **bearer(mine)}).status_code == 204


def test_files_and_uploads_record_who_uploaded_them(api: Api) -> None:
    key, raw = create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.UPLOAD}))
    api.keys["mine"] = raw
    token = mint(api, "mine", max_files=2)
    by_token = upload(api, token).json()["id"]
    by_tus = upload_id(tus_create(api, token))
    by_key = api.upload(TEXT, "note.txt", who="mine").json()["id"]

    with api.runtime.db.session() as session:
        files = {row.id: row.uploaded_by for row in session.scalars(select(FileRow))}
        uploads = {row.id: row.uploaded_by for row in session.scalars(select(UploadRow))}
        minted_by = session.scalars(select(UploadTokenRow.key_id)).one()
    assert files == {by_token: token["id"], by_key: key.id}
    assert uploads == {by_tus: token["id"]}
    assert minted_by == key.id


# --- limits -----------------------------------------------------------------------------------


def test_a_declared_size_over_the_tokens_max_size_is_refused_before_any_byte(api: Api) -> None:
    token = mint(api, max_size=10, max_files=5)

    tus = tus_create(api, token, length=11)
    raw = api.client.post(
        "/v1/files",
        headers={
            **bearer(token),
            "Content-Disposition": 'attachment; filename="a.txt"',
            "Content-Type": "text/plain",
        },
        content=b"x" * 11,
    )

    assert (tus.status_code, tus.json()["code"]) == (413, "file_too_large")
    assert (raw.status_code, raw.json()["code"]) == (413, "file_too_large")
    assert tus_create(api, token, length=10).status_code == 201


def test_a_streamed_body_over_the_tokens_max_size_is_cut(api: Api) -> None:
    token = mint(api, max_size=10, max_files=5)

    def chunks() -> Iterator[bytes]:
        yield b"x" * 8
        yield b"x" * 8

    chunked = api.client.post(
        "/v1/files",
        headers={**bearer(token), "Content-Disposition": 'attachment; filename="a.txt"'},
        content=chunks(),
    )
    form = upload(api, token, b"x" * 11)  # the form's length passes; the file's does not

    assert (chunked.status_code, chunked.json()["code"]) == (413, "file_too_large")
    assert (form.status_code, form.json()["code"]) == (413, "file_too_large")
    assert upload(api, token, b"x" * 10).status_code == 202
    # Deferring the length would let the stream decide the size: a token must declare it.
    deferred = api.client.post(
        "/v1/tus/", headers={**TUS, **bearer(token), "Upload-Defer-Length": "1"}
    )
    assert (deferred.status_code, deferred.json()["code"]) == (400, "tus_length_required")


def test_max_files_counts_every_upload_created_and_failures_are_given_back(api: Api) -> None:
    token = mint(api, max_files=2, max_size=10)

    assert upload(api, token, b"x" * 11).status_code == 413  # never created: not counted
    assert upload(api, token, b"x" * 5).status_code == 202
    assert tus_create(api, token, length=5).status_code == 201
    over = upload(api, token, b"x" * 5)
    over_tus = tus_create(api, token, length=5)

    assert (over.status_code, over.json()["code"]) == (403, "upload_token_used_up")
    assert over.json()["max_files"] == 2
    assert (over_tus.status_code, over_tus.json()["code"]) == (403, "upload_token_used_up")
    # Reading back still works once the uploads are used up.
    assert api.client.get("/v1/usage", headers=api.auth()).status_code == 200


def test_parallel_creates_never_pass_max_files(api: Api) -> None:
    token = mint(api, max_files=3)
    start = threading.Barrier(10)

    def create(_: int) -> int:
        start.wait()
        return tus_create(api, token).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(create, range(10)))

    assert statuses == [201] * 3 + [403] * 7
    with api.runtime.db.session() as session:
        assert session.scalars(select(UploadTokenRow.files_created)).one() == 3


def test_parallel_counts_in_the_database_never_pass_max_files(api: Api) -> None:
    """The guarded UPDATE itself, from threads with their own connections: no lost update."""
    token = mint(api, max_files=7)
    principal = upload_tokens.authenticate_token(api.runtime.db, token["token"])
    assert principal is not None
    start = threading.Barrier(16)

    def take(_: int) -> str:
        start.wait()
        try:
            upload_tokens.take_upload(api.runtime.db, principal)
        except FilegateError as exc:
            return exc.code.value
        return "taken"

    with ThreadPoolExecutor(16) as pool:
        outcomes = sorted(pool.map(take, range(16)))

    assert outcomes == ["taken"] * 7 + ["upload_token_used_up"] * 9


def test_a_token_uploads_into_its_own_profile_only(api: Api) -> None:
    token = mint(api, profile="default", max_files=10)

    by_query = api.client.post(
        "/v1/files?profile=documents",
        files={"file": ("n.txt", TEXT, "text/plain")},
        headers=bearer(token),
    )
    by_field = upload(api, token, profile="documents")
    by_tus = tus_create(api, token, extra={"Upload-Metadata": tus_metadata(profile="documents")})

    for answer in (by_query, by_field, by_tus):
        assert answer.status_code == 403, answer.text
        assert answer.json()["code"] == "forbidden"
        assert "'default' profile only" in answer.json()["detail"]
    assert upload(api, token, profile="default").status_code == 202
    same = tus_create(api, token, extra={"Upload-Metadata": tus_metadata(profile="default")})
    assert same.status_code == 201
    # Neither counted the refused uploads.
    with api.runtime.db.session() as session:
        assert session.scalars(select(UploadTokenRow.files_created)).one() == 2


def test_the_tokens_metadata_wins_over_the_browsers(api: Api) -> None:
    fixed = {"filename": "invoice.pdf", "user": "42"}
    token = mint(api, metadata=fixed, max_files=5, profile="documents")
    header = tus_metadata(filename="evil.exe", user="1", note="hi")

    created = upload_id(tus_create(api, token, extra={"Upload-Metadata": header}))
    head = api.client.head(f"/v1/tus/{created}", headers={**TUS, **bearer(token)})
    direct = upload(api, token)

    pairs = dict(item.split(" ") for item in head.headers["upload-metadata"].split(","))
    decoded = {k: base64.b64decode(v).decode() for k, v in pairs.items()}
    assert decoded == {"filename": "invoice.pdf", "user": "42", "note": "hi"}
    assert direct.json()["name"] == "invoice.pdf"
    with api.runtime.db.session() as session:
        assert session.get(UploadRow, created).filename == "invoice.pdf"  # type: ignore[union-attr]


def test_a_token_cannot_concatenate_uploads(api: Api) -> None:
    token = mint(api, max_files=5)

    partial = tus_create(api, token, extra={"Upload-Concat": "partial"})

    assert (partial.status_code, partial.json()["code"]) == (403, "forbidden")


def test_an_expired_token_gets_the_bad_key_answer(api: Api) -> None:
    token = mint(api, expires_in=1, max_files=5)
    assert upload(api, token).status_code == 202
    time.sleep(1.1)

    expired = upload(api, token)
    bad_key = api.client.post("/v1/files", headers=bearer("fgk_" + "A" * 43))

    assert expired.status_code == 401
    assert problem(expired) == problem(bad_key)


def test_a_revoked_token_gets_the_bad_key_answer(api: Api) -> None:
    token = mint(api, max_files=5)
    upload_of = upload_id(tus_create(api, token))

    stranger = api.client.delete(f"/v1/upload-tokens/{token['id']}", headers=api.auth("b"))
    revoked = api.client.delete(f"/v1/upload-tokens/{token['id']}", headers=api.auth())
    again = api.client.delete(f"/v1/upload-tokens/{token['id']}", headers=api.auth())
    patch = api.client.patch(
        f"/v1/tus/{upload_of}",
        headers={**TUS, **OCTET, **bearer(token), "Upload-Offset": "0"},
        content=TEXT,
    )

    assert (stranger.status_code, stranger.json()["code"]) == (404, "upload_token_not_found")
    assert revoked.status_code == 204
    assert (again.status_code, again.json()["code"]) == (404, "upload_token_not_found")
    assert patch.status_code == 401
    assert problem(patch) == problem(api.client.post("/v1/files", headers=bearer("nope")))


def test_revoking_the_minting_key_revokes_its_tokens(api: Api) -> None:
    key, raw = create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.UPLOAD}))
    api.keys["doomed"] = raw
    token = mint(api, "doomed", max_files=5)
    assert upload(api, token).status_code == 202

    revoke_key(api.runtime.db, key.id)

    assert upload(api, token).status_code == 401


@pytest.mark.parametrize(
    "raw",
    [
        "fgt_" + "A" * 43,  # well formed, never issued
        "fgt_short",
        "fgt_" + "A" * 42 + "!",
        "fgt_" + "A" * 44,
        "fgt_",
        "fgk_" + "A" * 43,
        "garbage",
    ],
)
def test_wrong_tokens_get_the_same_401_as_bad_keys(api: Api, raw: str) -> None:
    bad_key = problem(api.client.post("/v1/files", headers=bearer("fgk_" + "B" * 43)))

    for answer in (
        api.client.post("/v1/files", headers=bearer(raw)),
        api.client.post("/v1/tus/", headers={**TUS, **bearer(raw), "Upload-Length": "1"}),
        api.client.get(f"/v1/files/{ULID}", headers=bearer(raw)),
    ):
        assert answer.status_code == 401
        assert problem(answer) == bad_key


def test_a_token_counts_against_the_tenants_quotas_and_has_its_own_rate(
    settings: Settings, sandbox: Sandbox
) -> None:
    quotas = Quotas(stored_files=2, requests_per_second=3)
    with running_api(settings.model_copy(update={"quotas": quotas}), sandbox) as api:
        api.upload(TEXT, "note.txt")
        token = mint(api, max_files=5)
        assert upload(api, token).status_code == 202
        over = upload(api, token)
        assert (over.status_code, over.json()["code"]) == (413, "quota_exceeded")
        statuses = [
            api.client.get(f"/v1/files/{ULID}", headers=bearer(token)).status_code for _ in range(6)
        ]
        assert 429 in statuses
        # The rate is the token's own: the key that minted it is not slowed down.
        assert api.client.get("/v1/usage", headers=api.auth()).status_code == 200
        with api.runtime.db.session() as session:
            # The upload the quota refused was never created: not counted.
            assert session.scalars(select(UploadTokenRow.files_created)).one() == 1


# --- CORS per tenant, over real HTTP ----------------------------------------------------------

SHARED, APP_A, APP_B = "https://shared.example", "https://a.example", "https://b.example"
TUS_REQUEST_HEADERS = (
    "upload-offset, upload-length, tus-resumable, upload-metadata, authorization, "
    "content-type, upload-checksum"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``filegate serve`` with one origin for every tenant and one more for each of two."""
    root = tmp_path_factory.mktemp("cors")
    env = {
        "FILEGATE_CORS_ORIGINS": json.dumps([SHARED]),
        "FILEGATE_TENANTS": json.dumps(
            {"tenant-a": {"cors_origins": [APP_A]}, "tenant-b": {"cors_origins": [APP_B]}}
        ),
    }
    with LiveServer(root, f"sqlite:///{root / 'filegate.db'}", env) as live:
        yield live


def _list(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


@pytest.mark.parametrize("origin", [SHARED, APP_A, APP_B])
@pytest.mark.parametrize("method", ["POST", "PATCH", "HEAD", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/tus/", f"/v1/tus/{ULID}"])
def test_a_tus_preflight_is_answered_for_every_configured_origin(
    server: LiveServer, origin: str, method: str, path: str
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        answer = client.options(
            path,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": TUS_REQUEST_HEADERS,
            },
        )

    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == origin
    assert method.lower() in _list(answer.headers["access-control-allow-methods"])
    assert _list(TUS_REQUEST_HEADERS) <= _list(answer.headers["access-control-allow-headers"])
    assert "access-control-allow-credentials" not in answer.headers


def test_a_preflight_from_an_unknown_origin_gets_no_cors_headers(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        answer = client.options(
            "/v1/tus/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )

    assert "access-control-allow-origin" not in answer.headers


def test_an_actual_request_is_refused_from_another_tenants_origin(server: LiveServer) -> None:
    key_a, key_b = server.create_key("tenant-a"), server.create_key("tenant-b")
    with httpx.Client(base_url=server.base_url) as client:
        token = client.post("/v1/upload-tokens", json={}, headers=bearer(key_a)).json()

        def create(auth: str, origin: str) -> httpx.Response:
            headers = {**TUS, **bearer(auth), "Upload-Length": "5", "Origin": origin}
            return client.post("/v1/tus/", headers=headers)

        own = create(token["token"], APP_A)
        shared = create(key_a, SHARED)
        foreign = create(token["token"], APP_B)
        foreign_key = create(key_b, APP_A)
        no_cors = create(key_a, "https://not-configured.example")  # no browser: not ours to judge

    assert own.status_code == 201, own.text
    assert own.headers["access-control-allow-origin"] == APP_A
    exposed = _list(own.headers["access-control-expose-headers"])
    assert {"location", "upload-offset", "upload-expires", "tus-resumable"} <= exposed
    assert shared.status_code == 201
    for refused in (foreign, foreign_key):
        assert refused.status_code == 403
        assert refused.json()["code"] == "origin_not_allowed"
        # The browser may read the refusal: it names the origin it came from.
        assert refused.headers["access-control-allow-origin"] in (APP_A, APP_B)
    assert no_cors.status_code == 201


def test_check_config_reports_a_tenant_origin_that_is_not_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_filegate_env(monkeypatch, tmp_path)
    (tmp_path / "filegate.toml").write_text(
        '[tenants.acme]\ncors_origins = ["https://app.acme.example/upload"]\n'
    )

    result = CliRunner().invoke(app, ["--config", "filegate.toml", "check-config"])

    assert result.exit_code != 0
    assert "tenants.acme.cors_origins" in result.output
    assert "is not an origin" in result.output


def test_tenant_cors_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        Settings(tenants={"t": {"cors_origins": ["https://a.example/"]}})
    with pytest.raises(ValueError, match="not an origin"):
        Settings(tenants={"t": {"cors_origins": ["*"]}})
    with pytest.raises(ValueError, match="tenant names"):
        Settings(tenants={"Bad Name": {"cors_origins": []}})
    settings = Settings(
        cors_origins=[SHARED],
        tenants={"a": {"cors_origins": [APP_A, "http://[::1]:8080"]}},
    )
    assert settings.all_cors_origins == sorted([SHARED, APP_A, "http://[::1]:8080"])
    assert settings.cors_origins_for("b") == {SHARED}
    assert Settings(cors_origins=["*"]).all_cors_origins == ["*"]
