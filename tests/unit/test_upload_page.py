"""``/upload``: the page names built assets that exist and are served, its CSP allows nothing
but this origin, and the committed build matches its sources (``make ui``)."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

from filegate.config import Settings
from filegate.web import upload_page
from tests.conftest import Api

UI = Path(__file__).parents[2] / "ui" / "upload"
# What ui/upload/build.mjs hashes into manifest.json's source_sha256.
UI_SOURCES = ("package.json", "package-lock.json", "build.mjs", "src")
# The whole page, script and stylesheet: the page must stay light (tus-js-client is ~60 KiB).
MAX_ASSET_BYTES = 120_000


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "script":
            self.script_text += data.strip()


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def test_the_page_allows_only_its_own_origin(api: Api) -> None:
    response = api.client.get("/upload")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    for name in ("script-src", "style-src", "connect-src", "frame-ancestors"):
        assert policy[name] == ["'self'"], name
    assert policy["img-src"] == ["'self'", "blob:", "data:"]
    assert policy["require-trusted-types-for"] == ["'script'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"


def test_the_page_has_no_inline_script_or_style(api: Api) -> None:
    page = parse(api.client.get("/upload").text)
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts
    assert all(attrs.get("src") for attrs in scripts)
    assert page.script_text == ""
    assert "style" not in {tag for tag, _ in page.tags}
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag


def test_the_page_links_the_built_assets_and_they_are_served(api: Api) -> None:
    built = upload_page.manifest()
    page = parse(api.client.get("/upload").text)
    links = {attrs["src"] for tag, attrs in page.tags if tag == "script"}
    links |= {attrs["href"] for tag, attrs in page.tags if tag == "link"}
    assert links == {
        f"/upload/assets/{built['script']}",
        f"/upload/assets/{built['stylesheet']}",
    }
    types = {".js": "text/javascript", ".css": "text/css"}
    for link in sorted(links):
        response = api.client.get(str(link))
        assert response.status_code == 200, link
        assert response.headers["content-type"].startswith(types[Path(str(link)).suffix])
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in response.headers["cache-control"]
        assert len(response.content) < MAX_ASSET_BYTES
    assert api.client.get("/upload/assets/../manifest.json").status_code == 404
    assert api.client.get("/upload/assets/upload.000000000000.js").status_code == 404


def test_embedding_origins_may_frame_the_page_but_a_wildcard_may_not() -> None:
    settings = Settings(cors_origins=["https://app.example", "*"])
    policy = directives(upload_page.page_headers(settings)["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'self'", "https://app.example"]
    page = parse(upload_page.render("", upload_page.embedders(settings)))
    body = next(attrs for tag, attrs in page.tags if tag == "body")
    assert json.loads(str(body["data-embedders"])) == ["https://app.example"]


def test_the_committed_build_matches_its_sources() -> None:
    """Edited ui/upload/ without `make ui`? The assets in the package would be stale."""
    built = upload_page.manifest()
    assert built["source_sha256"] == source_digest(), "run `make ui` and commit the result"
    names = sorted(p.name for p in (upload_page.BUILT / "assets").iterdir())
    assert names == sorted([built["script"], built["stylesheet"]])
    for name in names:
        content = (upload_page.BUILT / "assets" / name).read_bytes()
        # The name carries the content's hash: a changed file is a new URL for every cache.
        assert name.split(".")[1] == hashlib.sha256(content).hexdigest()[:12]
    assert (upload_page.BUILT / "THIRD_PARTY_LICENSES.txt").read_text().count("tus-js-client")


def source_digest() -> str:
    """ui/upload/build.mjs's sourceDigest(), in Python."""
    digest = hashlib.sha256()
    paths = []
    for name in UI_SOURCES:
        path = UI / name
        paths += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in sorted(paths, key=lambda p: p.relative_to(UI).as_posix()):
        digest.update(path.relative_to(UI).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
