"""The authorization matrix: every API route against every kind of caller.

Callers: no key, a malformed header, a well-formed key never issued, a revoked key, a key
without the route's scope, a key of another tenant, an admin-only key of the owner's tenant
(``admin`` includes ``upload`` and ``read``, docs/api.md "Scopes"), and the right key. A new
route fails ``test_every_api_route_is_in_the_matrix`` until it is added here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from filegate.domain import Scope
from filegate.services.keys import create_key, revoke_key
from filegate.web.problems import _endpoints
from tests.conftest import Api

TUS = {"Tus-Resumable": "1.0.0"}
TEXT = b"a plain note\n"
PUBLIC_HOOK = "http://93.184.215.14/hook"
NEVER_ISSUED = "fgk_" + "A" * 43

Call = Callable[[Api, dict[str, str], str], httpx.Response]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    scope: Scope | None  # None: any key of the tenant
    owned: str | None  # the kind of resource the path names: file, upload, webhook
    call: Call
    ok: int


def _file(api: Api) -> str:
    answer = api.upload(TEXT, "note.txt")
    assert answer.status_code == 202, answer.text
    api.inspect()
    return str(answer.json()["id"])


def _upload(api: Api) -> str:
    answer = api.client.post(
        "/v1/tus/", headers={**TUS, **api.auth(), "Upload-Length": str(len(TEXT))}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.headers["location"]).rsplit("/", 1)[1]


def _webhook(api: Api) -> str:
    answer = api.client.post("/v1/webhooks", json={"url": PUBLIC_HOOK}, headers=api.auth("admin"))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _link(api: Api) -> str:
    """A file's share link, as the rest of its revocation path: <file id>/links/<link id>."""
    file_id = _file(api)
    answer = api.client.post(f"/v1/files/{file_id}/links", headers=api.auth())
    assert answer.status_code == 201, answer.text
    return f"{file_id}/links/{answer.json()['id']}"


def _upload_token(api: Api) -> str:
    answer = api.client.post("/v1/upload-tokens", json={}, headers=api.auth())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


MAKERS = {
    "file": _file,
    "upload": _upload,
    "webhook": _webhook,
    "link": _link,
    "upload token": _upload_token,
}


def _post_file(api: Api, headers: dict[str, str], _: str) -> httpx.Response:
    files = {"file": ("note.txt", TEXT, "text/plain")}
    return api.client.post("/v1/files", files=files, headers=headers)


def _tus_create(api: Api, headers: dict[str, str], _: str) -> httpx.Response:
    extra = {**TUS, "Upload-Length": "5"}
    return api.client.post("/v1/tus/", headers={**headers, **extra})


def _tus_patch(api: Api, headers: dict[str, str], upload_id: str) -> httpx.Response:
    extra = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    return api.client.patch(f"/v1/tus/{upload_id}", headers={**headers, **extra}, content=TEXT)


def _simple(method: str, template: str, body: object = None, tus: bool = False) -> Call:
    def call(api: Api, headers: dict[str, str], owned: str) -> httpx.Response:
        path = template.replace("{id}", owned)
        sent = {**headers, **TUS} if tus else headers
        return api.client.request(method, path, headers=sent, json=body)

    return call


ROUTES = [
    Route("POST", "/v1/files", Scope.UPLOAD, None, _post_file, 202),
    Route("GET", "/v1/files", Scope.READ, None, _simple("GET", "/v1/files"), 200),
    Route("GET", "/v1/files/{file_id}", Scope.READ, "file", _simple("GET", "/v1/files/{id}"), 200),
    Route(
        "GET",
        "/v1/files/{file_id}/content",
        Scope.READ,
        "file",
        _simple("GET", "/v1/files/{id}/content"),
        200,
    ),
    Route(
        "HEAD",
        "/v1/files/{file_id}/content",
        Scope.READ,
        "file",
        _simple("HEAD", "/v1/files/{id}/content"),
        200,
    ),
    Route(
        "DELETE",
        "/v1/files/{file_id}",
        Scope.UPLOAD,
        "file",
        _simple("DELETE", "/v1/files/{id}"),
        204,
    ),
    Route(
        "POST",
        "/v1/files/{file_id}/links",
        Scope.READ,
        "file",
        _simple("POST", "/v1/files/{id}/links"),
        201,
    ),
    Route(
        "DELETE",
        "/v1/files/{file_id}/links/{link_id}",
        Scope.READ,
        "link",
        _simple("DELETE", "/v1/files/{id}"),
        204,
    ),
    Route("POST", "/v1/tus/", Scope.UPLOAD, None, _tus_create, 201),
    Route(
        "HEAD",
        "/v1/tus/{upload_id}",
        Scope.UPLOAD,
        "upload",
        _simple("HEAD", "/v1/tus/{id}", tus=True),
        200,
    ),
    Route("PATCH", "/v1/tus/{upload_id}", Scope.UPLOAD, "upload", _tus_patch, 204),
    Route(
        "DELETE",
        "/v1/tus/{upload_id}",
        Scope.UPLOAD,
        "upload",
        _simple("DELETE", "/v1/tus/{id}", tus=True),
        204,
    ),
    Route(
        "POST",
        "/v1/webhooks",
        Scope.ADMIN,
        None,
        _simple("POST", "/v1/webhooks", {"url": PUBLIC_HOOK}),
        201,
    ),
    Route("GET", "/v1/webhooks", Scope.ADMIN, None, _simple("GET", "/v1/webhooks"), 200),
    Route(
        "DELETE",
        "/v1/webhooks/{endpoint_id}",
        Scope.ADMIN,
        "webhook",
        _simple("DELETE", "/v1/webhooks/{id}"),
        204,
    ),
    Route(
        "POST",
        "/v1/upload-tokens",
        Scope.UPLOAD,
        None,
        _simple("POST", "/v1/upload-tokens", {}),
        201,
    ),
    Route(
        "DELETE",
        "/v1/upload-tokens/{token_id}",
        Scope.UPLOAD,
        "upload token",
        _simple("DELETE", "/v1/upload-tokens/{id}"),
        204,
    ),
    Route("GET", "/v1/usage", None, None, _simple("GET", "/v1/usage"), 200),
    Route("GET", "/v1/status", Scope.ADMIN, None, _simple("GET", "/v1/status"), 200),
    Route("GET", "/status", Scope.ADMIN, None, _simple("GET", "/status"), 200),
]
# Open on purpose: probes, metrics, the tus capabilities (OPTIONS) and the API description.
OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    # The upload page holds no data: its token comes from the fragment or the embedding app.
    "/upload",
    "/v1/tus/",
    "/v1/tus/{upload_id}",
    # A share link is its own credential (tests/unit/test_share_links.py).
    "/v1/share/{file_id}/{digest}",
}

WRONG_SCOPE = {
    Scope.UPLOAD: frozenset({Scope.READ}),
    Scope.READ: frozenset({Scope.UPLOAD}),
    Scope.ADMIN: frozenset({Scope.UPLOAD, Scope.READ}),
}


def _keys(api: Api, route: Route) -> dict[str, str]:
    """Every kind of caller, as the Authorization header it sends."""
    db = api.runtime.db
    needed = frozenset({route.scope}) if route.scope else frozenset({Scope.READ})
    right = create_key(db, tenant="tenant-a", scopes=needed)[1]
    other = create_key(db, tenant="tenant-b", scopes=needed)[1]
    admin = create_key(db, tenant="tenant-a", scopes=frozenset({Scope.ADMIN}))[1]
    record, revoked = create_key(db, tenant="tenant-a", scopes=needed)
    revoke_key(db, record.id)
    callers = {
        "no key": "",
        "malformed": "Bearer " + base64.b64encode(b"user:pass").decode(),
        "never issued": f"Bearer {NEVER_ISSUED}",
        "revoked": f"Bearer {revoked}",
        "other tenant": f"Bearer {other}",
        "admin only": f"Bearer {admin}",
        "right key": f"Bearer {right}",
    }
    if route.scope is not None:
        wrong = create_key(db, tenant="tenant-a", scopes=WRONG_SCOPE[route.scope])[1]
        callers["wrong scope"] = f"Bearer {wrong}"
    return callers


def _expected(route: Route, caller: str) -> int:
    if caller in ("no key", "malformed", "never issued", "revoked"):
        return 401
    if caller == "wrong scope":
        return 403
    if caller == "other tenant" and route.owned is not None:
        return 404  # another tenant's resource answers as if it did not exist
    return route.ok


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_authorization_matrix(api: Api, route: Route) -> None:
    api.keys["admin"] = create_key(
        api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.ADMIN})
    )[1]
    seen: dict[str, int] = {}
    for caller, header in _keys(api, route).items():
        owned = MAKERS[route.owned](api) if route.owned else ""
        headers = {"Authorization": header} if header else {}
        answer = route.call(api, headers, owned)
        seen[caller] = answer.status_code
        if answer.status_code >= 400 and route.method != "HEAD":
            assert answer.headers["content-type"] == "application/problem+json", caller
    expected = {caller: _expected(route, caller) for caller in seen}
    assert seen == expected


def test_another_tenants_list_shows_none_of_the_owners_files(api: Api) -> None:
    file_id = _file(api)
    listed = api.client.get("/v1/files", headers=api.auth("b")).json()["items"]
    assert file_id not in [item["id"] for item in listed]


def test_every_api_route_is_in_the_matrix(api: Api) -> None:
    covered = {(route.method, route.path) for route in ROUTES}
    for endpoint in _endpoints(api.client.app.router.routes):  # type: ignore[attr-defined]
        if endpoint.path.startswith("/admin"):
            continue  # a session cookie, not a key: test_admin_console.py covers every route
        for method in endpoint.methods - {"HEAD"} or {"HEAD"}:
            share = endpoint.path.startswith("/v1/share/")
            if endpoint.path in OPEN and (method in ("GET", "OPTIONS") or share):
                continue
            assert (method, endpoint.path) in covered, f"{method} {endpoint.path}"
