"""The OpenAPI document as the API really answers: problem+json errors with their statuses
(400, never FastAPI's 422), the bearer key as a security scheme, and the tus headers.

FastAPI derives the document from the routes, which know their success answer only; the
errors come from ``web/problems.py`` and the tus headers are read by hand. This module adds
both, from one table, so a client generated from the document handles what it will get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from filegate.errors import ErrorCode
from filegate.tus.headers import TUS_VERSION
from filegate.web.problems import STATUS

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable (docs/api.md lists every one).",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(code.value for code in ErrorCode)},
        "request_id": {"type": "string"},
    },
}
_REASONS = {
    400: "The request is malformed (see `code`)",
    401: "No, malformed, unknown or revoked API key or upload token",
    403: "The key lacks the scope, an upload token may not do this, or the file was rejected",
    404: "No such resource for this tenant",
    405: "Method not allowed",
    408: "The client was too slow sending the body",
    409: "A conflict with the resource's state (see `code`)",
    410: "The upload was terminated or expired",
    412: "Tus-Resumable is missing or not 1.0.0",
    413: "Larger than the profile allows, or over a tenant quota",
    415: "Unsupported content type",
    416: "The range lies outside the file",
    423: "Another request holds the upload",
    429: "Over a rate limit; retry after Retry-After",
    431: "The request headers are too large",
    460: "The chunk does not match Upload-Checksum",
    503: "A dependency is unavailable, or the server is busy or stopping; retry after Retry-After",
}
# Every authenticated route can answer these (problems.py, deps.py, middleware).
_AUTHENTICATED = (400, 401, 403, 429, 503)
# What each route adds, by (method, path).
_EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/v1/files"): (408, 413, 415),
    ("get", "/v1/files"): (),
    ("get", "/v1/files/{file_id}"): (404,),
    ("delete", "/v1/files/{file_id}"): (404,),
    ("get", "/v1/files/{file_id}/content"): (404, 409, 416),
    ("head", "/v1/files/{file_id}/content"): (404, 409, 416),
    ("post", "/v1/tus/"): (408, 412, 413, 415),
    ("head", "/v1/tus/{upload_id}"): (404, 410, 412),
    ("patch", "/v1/tus/{upload_id}"): (404, 408, 409, 410, 412, 413, 415, 423, 460),
    ("delete", "/v1/tus/{upload_id}"): (404, 410, 412, 423),
    ("post", "/v1/webhooks"): (409, 413),
    ("get", "/v1/webhooks"): (),
    ("delete", "/v1/webhooks/{endpoint_id}"): (404,),
    ("get", "/v1/usage"): (),
    ("get", "/v1/status"): (),
    ("post", "/v1/files/{file_id}/links"): (404, 409),
    ("delete", "/v1/files/{file_id}/links/{link_id}"): (404,),
    ("post", "/v1/upload-tokens"): (413,),
    ("delete", "/v1/upload-tokens/{token_id}"): (404,),
}
# Routes without an API key that still answer problems: a share link is its own credential.
_OPEN: dict[tuple[str, str], tuple[int, ...]] = {
    ("get", "/v1/share/{file_id}/{digest}"): (403, 404, 416, 503),
}


def _header(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> Any:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    }


_TUS_RESUMABLE = _header(
    "Tus-Resumable", "The tus version.", {"type": "string", "enum": [TUS_VERSION]}, required=True
)
_UPLOAD_LENGTH = _header(
    "Upload-Length", "The upload's size in bytes.", {"type": "integer", "minimum": 0}
)
_UPLOAD_CHECKSUM = _header(
    "Upload-Checksum",
    "`sha1|md5|crc32 <base64 digest>` of this request's body.",
    {"type": "string"},
)
_TUS_HEADERS: dict[tuple[str, str], list[Any]] = {
    ("post", "/v1/tus/"): [
        _TUS_RESUMABLE,
        _UPLOAD_LENGTH,
        _header(
            "Upload-Defer-Length", "1: the length comes later.", {"type": "string", "enum": ["1"]}
        ),
        _header(
            "Upload-Metadata",
            "Comma-separated `key base64value` pairs: filename, filetype, profile.",
            {"type": "string"},
        ),
        _header("Upload-Concat", "`partial`, or `final;<url> <url>...`.", {"type": "string"}),
        _UPLOAD_CHECKSUM,
    ],
    ("head", "/v1/tus/{upload_id}"): [_TUS_RESUMABLE],
    ("patch", "/v1/tus/{upload_id}"): [
        _TUS_RESUMABLE,
        _header(
            "Upload-Offset",
            "Where this body starts; must equal the upload's offset.",
            {"type": "integer", "minimum": 0},
            required=True,
        ),
        _UPLOAD_LENGTH,
        _UPLOAD_CHECKSUM,
    ],
    ("delete", "/v1/tus/{upload_id}"): [_TUS_RESUMABLE],
}
_PATCH_BODY = {
    "required": True,
    "content": {
        "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
    },
}


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`fgk_...`) from `filegate keys create`.",
        }
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _complete(method, path, operation)
    return document


def _complete(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    extra = _EXTRA.get((method, path))
    if extra is None:
        for status in _OPEN.get((method, path), ()):  # probes and metrics have none
            responses[str(status)] = _problem_response(status)
        return
    operation["security"] = [{"apiKey": []}]
    for status in sorted({*_AUTHENTICATED, *extra}):
        responses[str(status)] = _problem_response(status)
    headers = _TUS_HEADERS.get((method, path))
    if headers is not None:
        operation.setdefault("parameters", []).extend(headers)
        for status, answer in responses.items():
            if status.startswith("2"):
                answer.pop("content", None)  # tus answers carry headers, never a body
    if (method, path) == ("patch", "/v1/tus/{upload_id}"):
        operation["requestBody"] = _PATCH_BODY


def _problem_response(status: int) -> dict[str, Any]:
    codes = sorted(code.value for code, known in STATUS.items() if known == status)
    description = _REASONS.get(status, "An error")
    if codes:
        description += " (" + ", ".join(f"`{c}`" for c in codes) + ")"
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


# Swagger UI ships inside the package (tools/vendor_swagger_ui.sh): /docs works offline and
# loads nothing from a CDN.
SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"
DOCS_ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI for ``/openapi.json``, from the bundled assets."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )
