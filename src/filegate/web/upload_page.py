"""``GET /upload``: the browser upload page, and its built assets under ``/upload/assets/``.

The HTML is rendered here; its script and stylesheet are built from ``ui/upload/``
(tus-js-client and a little vanilla code, ``make ui``) into ``static/upload/`` and shipped in
the package, so the page loads nothing from anywhere but this server. The upload token comes
from the URL fragment or from the embedding window (docs/upload-page.md), never from here.
"""

from __future__ import annotations

import json
from functools import cache
from html import escape
from os import PathLike, stat_result
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from filegate.config import Settings
from filegate.web.deps import RuntimeDep
from filegate.web.tus import BASE as TUS_BASE

router = APIRouter()

BUILT = Path(__file__).parent / "static" / "upload"
ASSETS = "/upload/assets"
FILES = "/v1/files/"
# Content-hashed names: a new build is a new URL, so browsers may keep these for a year.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@cache
def manifest() -> dict[str, Any]:
    """``make ui``'s manifest: the built ``script`` and ``stylesheet`` names, and more."""
    loaded: dict[str, Any] = json.loads((BUILT / "manifest.json").read_text())
    return loaded


def embedders(settings: Settings) -> list[str]:
    """The origins that may frame the page and hand it a token: the global CORS origins.

    A wildcard is left out: any site could then frame the page and feed it its own token.
    """
    return [origin for origin in settings.cors_origins if origin != "*"]


def page_headers(settings: Settings) -> dict[str, str]:
    ancestors = " ".join(["'self'", *embedders(settings)])
    policy = (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' blob: data:",
        f"frame-ancestors {ancestors}",
        "base-uri 'none'",
        "form-action 'none'",
        # The script builds its DOM with textContent: no HTML string may reach a sink.
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
    return {
        "Content-Security-Policy": "; ".join(policy),
        # The page names the current build's assets: revalidate it, cache them.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@router.get("/upload", include_in_schema=False, response_class=HTMLResponse)
async def upload_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    body = render(root, embedders(runtime.settings))
    return HTMLResponse(body, headers=page_headers(runtime.settings))


def render(root: str, origins: list[str]) -> str:
    built = manifest()
    assets = f"{root}{ASSETS}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upload files · filegate</title>
<link rel="stylesheet" href="{escape(f"{assets}/{built['stylesheet']}")}">
<script type="module" src="{escape(f"{assets}/{built['script']}")}"></script>
</head>
<body data-tus-endpoint="{escape(root + TUS_BASE)}" data-files-endpoint="{escape(root + FILES)}"
 data-embedders="{escape(json.dumps(origins))}">
<main>
<h1>Upload files</h1>
<p id="notice" class="notice" hidden>This page needs an upload token: open it as
<code>/upload#token=…</code>, or embed it in your application (docs/upload-page.md).</p>
<section id="drop" class="drop" aria-label="Drop files here">
<p>Drop files here, or <label class="pick">choose files
<input id="pick" type="file" multiple></label></p>
</section>
<section id="unfinished" hidden><h2>Unfinished uploads</h2>
<p>Drop or choose the same files again to continue where they stopped.</p><ul></ul></section>
<ul id="files" class="files" aria-live="polite"></ul>
<noscript><p class="notice">This page needs JavaScript to upload files.</p></noscript>
</main>
</body></html>
"""


class _Assets(StaticFiles):
    """The built files, with their caching and safety headers."""

    def file_response(
        self,
        full_path: str | PathLike[str],
        stat: stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat, scope, status_code)
        response.headers.update(ASSET_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """``/upload`` and its assets, from the files built into the package."""
    app.mount(ASSETS, _Assets(directory=BUILT / "assets"), name="upload-assets")
    app.include_router(router)
