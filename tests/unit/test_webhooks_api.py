"""Managing webhook endpoints: the admin API (/v1/webhooks) and `filegate webhooks`."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from filegate.cli import app
from filegate.db import migrate
from filegate.db.engine import Database
from filegate.domain import EventType, Scope
from filegate.services.keys import create_key
from filegate.services.webhooks import (
    MAX_ENDPOINTS_PER_TENANT,
    create_endpoint,
    list_endpoints,
)
from tests.conftest import Api

pytestmark = pytest.mark.usefixtures("keep_logging")

PUBLIC = "http://93.184.215.14/hook"
SECRET_LINE = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
ALL_EVENTS = sorted(e.value for e in EventType)


@pytest.fixture
def admin(api: Api) -> Api:
    """``api`` with admin keys for both tenants: "admin-a" and "admin-b"."""
    for who, tenant in (("admin-a", "tenant-a"), ("admin-b", "tenant-b")):
        _, raw = create_key(api.runtime.db, tenant=tenant, scopes=frozenset({Scope.ADMIN}))
        api.keys[who] = raw
    return api


def add(api: Api, who: str = "admin-a", **body: object) -> dict[str, object]:
    response = api.client.post("/v1/webhooks", json={"url": PUBLIC, **body}, headers=api.auth(who))
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def listed(api: Api, who: str = "admin-a") -> list[dict[str, object]]:
    response = api.client.get("/v1/webhooks", headers=api.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_create_returns_the_secret_once(admin: Api) -> None:
    created = add(admin, events=["file.rejected", "file.clean"])

    assert set(created) == {"id", "url", "events", "created_at", "secret"}
    assert created["url"] == PUBLIC
    assert created["events"] == ["file.clean", "file.rejected"]
    secret = str(created["secret"])
    assert SECRET_LINE.match(secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24

    response = admin.client.get("/v1/webhooks", headers=admin.auth("admin-a"))
    assert [item["id"] for item in response.json()["items"]] == [created["id"]]
    assert "secret" not in response.json()["items"][0]
    assert secret not in response.text
    assert secret.removeprefix("whsec_") not in response.text


def test_events_default_to_all(admin: Api) -> None:
    assert add(admin)["events"] == ALL_EVENTS
    assert add(admin, events=None)["events"] == ALL_EVENTS


@pytest.mark.parametrize(
    ("events", "detail"),
    [
        (["file.clean", "file.deleted"], "Unknown event type 'file.deleted'"),
        ([], "at least one event type"),
    ],
)
def test_unknown_or_no_events_are_refused(admin: Api, events: list[str], detail: str) -> None:
    response = admin.client.post(
        "/v1/webhooks", json={"url": PUBLIC, "events": events}, headers=admin.auth("admin-a")
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert detail in response.json()["detail"]
    assert listed(admin) == []


def test_delete_removes_the_endpoint(admin: Api) -> None:
    kept, removed = add(admin), add(admin)

    response = admin.client.delete(f"/v1/webhooks/{removed['id']}", headers=admin.auth("admin-a"))

    assert response.status_code == 204
    assert response.content == b""
    assert [item["id"] for item in listed(admin)] == [kept["id"]]
    again = admin.client.delete(f"/v1/webhooks/{removed['id']}", headers=admin.auth("admin-a"))
    assert again.status_code == 404
    assert again.json()["code"] == "webhook_not_found"


@pytest.mark.parametrize("endpoint_id", ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "x" * 300])
def test_deleting_an_unknown_endpoint_is_404(admin: Api, endpoint_id: str) -> None:
    response = admin.client.delete(f"/v1/webhooks/{endpoint_id}", headers=admin.auth("admin-a"))

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "webhook_not_found"


def test_tenants_see_and_remove_only_their_own(admin: Api) -> None:
    theirs = add(admin, who="admin-b")
    ours = add(admin, who="admin-a")

    assert [item["id"] for item in listed(admin, "admin-a")] == [ours["id"]]
    assert [item["id"] for item in listed(admin, "admin-b")] == [theirs["id"]]
    response = admin.client.delete(f"/v1/webhooks/{theirs['id']}", headers=admin.auth("admin-a"))
    assert response.status_code == 404
    assert response.json()["code"] == "webhook_not_found"
    assert [item["id"] for item in listed(admin, "admin-b")] == [theirs["id"]]


def test_the_tenant_comes_from_the_key_never_the_body(admin: Api) -> None:
    response = admin.client.post(
        "/v1/webhooks",
        json={"url": PUBLIC, "tenant": "tenant-b"},
        headers=admin.auth("admin-a"),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert list_endpoints(admin.runtime.db, "tenant-b") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"), ("DELETE", "/v1/webhooks/x")],
)
@pytest.mark.parametrize("who", ["a", "a-read", "a-upload"])
def test_webhooks_need_the_admin_scope(admin: Api, method: str, path: str, who: str) -> None:
    response = admin.client.request(method, path, json={"url": PUBLIC}, headers=admin.auth(who))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "'admin'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"), ("DELETE", "/v1/webhooks/x")],
)
def test_webhooks_need_a_key(admin: Api, method: str, path: str) -> None:
    response = admin.client.request(method, path, json={"url": PUBLIC})

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://127.0.0.1:8080/hook", "not a public address"),
        ("http://169.254.169.254/latest/meta-data/", "not a public address"),
        ("http://localhost/", "localhost resolves to"),
        ("http://2130706433/", "four decimal numbers"),
        ("ftp://93.184.215.14/", "Only http:// and https://"),
        ("http://user:pw@93.184.215.14/", "user name or password"),
        ("http://93.184.215.14/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_a_bad_url_is_a_problem(admin: Api, url: str, detail: str) -> None:
    response = admin.client.post("/v1/webhooks", json={"url": url}, headers=admin.auth("admin-a"))

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "webhook_url_invalid"
    assert detail in body["detail"]
    assert listed(admin) == []


def test_the_number_of_endpoints_is_capped(admin: Api) -> None:
    for _ in range(MAX_ENDPOINTS_PER_TENANT):
        create_endpoint(
            admin.runtime.db, tenant="tenant-a", url=PUBLIC, events=None, allow_internal=False
        )

    response = admin.client.post(
        "/v1/webhooks", json={"url": PUBLIC}, headers=admin.auth("admin-a")
    )

    assert response.status_code == 409
    assert response.json()["code"] == "webhook_limit_reached"
    assert add(admin, who="admin-b")["url"] == PUBLIC


def test_the_openapi_document_lists_the_webhook_routes(admin: Api) -> None:
    spec = admin.client.get("/openapi.json").json()
    assert {"/v1/webhooks", "/v1/webhooks/{endpoint_id}"} <= set(spec["paths"])


# The command line


@pytest.fixture
def database(env: dict[str, str]) -> Iterator[Database]:
    url = env["FILEGATE_DATABASE_URL"]
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def run(env: dict[str, str], *args: str, **extra_env: str) -> Result:
    return CliRunner(env={**env, **extra_env}).invoke(app, list(args))


def test_cli_add_prints_the_secret_alone_on_the_last_line(
    env: dict[str, str], database: Database
) -> None:
    result = run(
        env, "webhooks", "add", "--tenant", "t1", "--url", PUBLIC, "--events", "file.clean"
    )

    assert result.exit_code == 0, result.output
    secret = result.stdout.splitlines()[-1]
    assert SECRET_LINE.match(secret), result.stdout
    [record] = list_endpoints(database, "t1")
    assert record.url == PUBLIC
    assert record.events == {EventType.FILE_CLEAN}


def test_cli_list_prints_json_lines_without_secrets(
    env: dict[str, str], database: Database
) -> None:
    secrets = [
        run(env, "webhooks", "add", "--tenant", t, "--url", PUBLIC).stdout.splitlines()[-1]
        for t in ("t1", "t2")
    ]

    everyone = run(env, "webhooks", "list")
    only_t2 = run(env, "webhooks", "list", "--tenant", "t2")

    assert everyone.exit_code == 0, everyone.output
    lines = [json.loads(line) for line in everyone.stdout.splitlines()]
    assert sorted(line["tenant"] for line in lines) == ["t1", "t2"]
    assert all(line["events"] == ALL_EVENTS and line["url"] == PUBLIC for line in lines)
    assert all(set(line) == {"id", "tenant", "url", "events", "created_at"} for line in lines)
    assert [json.loads(line)["tenant"] for line in only_t2.stdout.splitlines()] == ["t2"]
    for secret in secrets:
        assert secret not in everyone.output
        assert secret.removeprefix("whsec_") not in everyone.output


def test_cli_remove(env: dict[str, str], database: Database) -> None:
    record, _ = create_endpoint(
        database, tenant="t1", url=PUBLIC, events=None, allow_internal=False
    )

    result = run(env, "webhooks", "remove", record.id)

    assert result.exit_code == 0, result.output
    assert list_endpoints(database, "t1") == []
    again = run(env, "webhooks", "remove", record.id)
    assert again.exit_code == 1
    assert "No webhook endpoint" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "t1", "--url", "http://127.0.0.1/"], "not a public address"),
        (["--tenant", "t1", "--url", "http://0x7f.1/"], "four decimal numbers"),
        (["--tenant", "t1", "--url", PUBLIC, "--events", "file.nope"], "Unknown event type"),
        (["--tenant", "Bad Tenant", "--url", PUBLIC], "Tenant names are"),
    ],
)
def test_cli_add_refuses_bad_input(
    env: dict[str, str], database: Database, args: list[str], message: str
) -> None:
    result = run(env, "webhooks", "add", *args)

    assert result.exit_code == 1
    assert message in result.stderr
    assert "whsec_" not in result.output
    assert "Traceback" not in result.output
    assert list_endpoints(database, None) == []


def test_cli_add_allows_internal_targets_when_the_operator_says_so(
    env: dict[str, str], database: Database
) -> None:
    url = "http://127.0.0.1:9000/hook"

    result = run(
        env,
        "webhooks",
        "add",
        "--tenant",
        "t1",
        "--url",
        url,
        FILEGATE_WEBHOOK_ALLOW_INTERNAL="true",
    )

    assert result.exit_code == 0, result.output
    assert [r.url for r in list_endpoints(database, "t1")] == [url]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_large_json_body_is_refused_before_the_key_is_checked(api: Api, declared: bool) -> None:
    body = b'{"url": "https://hooks.example.com/' + b"a" * 100_000 + b'"}'
    content = body if declared else iter([body[:50_000], body[50_000:]])
    response = api.client.post(
        "/v1/webhooks", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_body_too_large"
