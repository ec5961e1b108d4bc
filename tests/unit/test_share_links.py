"""Share links: no key needed, signed over every part, limited, revocable, gone with the file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from filegate.config import Settings, load_settings
from filegate.db import migrate
from filegate.domain import utcnow
from filegate.inspect.sandbox import Sandbox
from filegate.services import links
from tests.conftest import Api, running_api
from tests.support.samples import png
from tests.support.services import without_filegate_env

TEXT = b"".join(b"line %d of a shared note\n" % i for i in range(50))
KEYS = "k1=" + "a" * 32


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    without_filegate_env(monkeypatch, tmp_path)
    migrate.upgrade(database_url)
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, link_keys=KEYS)


def clean(api: Api, data: bytes = TEXT, name: str = "notes.txt") -> str:
    file_id: str = api.upload(data, name).json()["id"]
    api.inspect()
    return file_id


def share(api: Api, file_id: str, **body: object) -> str:
    answer = api.client.post(f"/v1/files/{file_id}/links", headers=api.auth(), json=body or None)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert set(made) == {"id", "url", "expires_at", "disposition", "max_downloads"}
    url: str = made["url"]
    return url.removeprefix("http://testserver")


def edited(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?{urlencode(query)}"


def test_a_link_serves_the_clean_file_without_a_key_and_may_be_cached(api: Api) -> None:
    file_id = clean(api)
    url = share(api, file_id)
    answer = api.client.get(url)
    assert answer.status_code == 200
    assert answer.content == TEXT
    headers = answer.headers
    assert headers["cache-control"].startswith("public, max-age=")
    assert headers["cache-control"].endswith(", immutable")
    assert 3500 < int(headers["cache-control"].split("max-age=")[1].split(",")[0]) <= 3600
    assert headers["surrogate-key"].startswith(f"file-{file_id} link-")
    assert headers["content-disposition"].startswith("attachment;")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    part = api.client.get(url, headers={"Range": "bytes=5-9"})
    assert (part.status_code, part.content) == (206, TEXT[5:10])
    assert api.client.get(url, headers={"If-None-Match": headers["etag"]}).status_code == 304
    # With credentials, never for a shared cache.
    private = api.client.get(url, headers=api.auth())
    assert private.headers["cache-control"] == "private, no-store"
    assert "surrogate-key" not in private.headers


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("id", id="another-file-id"),
        pytest.param("hash", id="another-hash"),
        pytest.param("e", id="a-later-expiry"),
        pytest.param("k", id="another-key-id"),
        pytest.param("s", id="another-signature"),
        pytest.param("d", id="inline-instead-of-attachment"),
        pytest.param("l", id="another-link"),
    ],
)
def test_a_changed_link_is_refused_without_a_word_about_the_file(api: Api, change: str) -> None:
    file_id = clean(api)
    other = clean(api, TEXT + b"more\n", "other.txt")
    url = share(api, file_id)
    path = urlsplit(url).path
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    changes = {
        "e": str(int(query["e"]) + 3600),
        "k": "k2",
        "s": query["s"][:-2] + ("AA" if not query["s"].endswith("AA") else "BB"),
        "d": "i",
        "l": links.new_id(),
    }
    if change == "id":
        tampered = edited(url).replace(file_id, other)
    elif change == "hash":
        digest = path.rsplit("/", 1)[1]
        tampered = edited(url).replace(digest, "0" * len(digest))
    else:
        tampered = edited(url, **{change: changes[change]})
    answer = api.client.get(tampered)
    assert answer.status_code == 403
    assert answer.json()["code"] == "link_invalid"
    assert file_id not in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_a_link_expires(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    url = share(api, clean(api), seconds=120)
    assert api.client.get(url).status_code == 200
    later = utcnow() + timedelta(seconds=121)
    monkeypatch.setattr(links, "utcnow", lambda: later)
    assert api.client.get(url).json()["code"] == "link_invalid"


def test_limits_of_the_profile(api: Api) -> None:
    text_id = clean(api)
    too_long = api.client.post(
        f"/v1/files/{text_id}/links", headers=api.auth(), json={"seconds": 8 * 24 * 3600}
    )
    assert too_long.json()["code"] == "link_not_allowed"
    inline_text = api.client.post(
        f"/v1/files/{text_id}/links", headers=api.auth(), json={"disposition": "inline"}
    )
    assert (inline_text.status_code, inline_text.json()["code"]) == (400, "link_not_allowed")
    image_id = clean(api, png(8, 8), "dot.png")
    inline = api.client.get(share(api, image_id, disposition="inline"))
    assert inline.headers["content-disposition"].startswith("inline;")
    assert inline.headers["content-type"] == "image/png"


def test_a_one_time_link_works_once_and_is_never_cached(api: Api) -> None:
    url = share(api, clean(api), max_downloads=1)
    assert api.client.head(url).status_code == 200  # a HEAD is not a download
    first = api.client.get(url)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-store"
    assert api.client.get(url).json()["code"] == "link_invalid"


def test_a_link_stops_with_its_file_its_revocation_or_its_key(
    api: Api, settings: Settings, sandbox: Sandbox
) -> None:
    file_id = clean(api)
    url = share(api, file_id)
    revoked = share(api, file_id)
    link_id = parse_qs(urlsplit(revoked).query)["l"][0]
    gone = api.client.delete(f"/v1/files/{file_id}/links/{link_id}", headers=api.auth())
    assert gone.status_code == 204
    assert api.client.get(revoked).json()["code"] == "link_invalid"
    assert api.client.get(url).status_code == 200
    assert api.client.delete(f"/v1/files/{file_id}", headers=api.auth()).status_code == 204
    deleted = api.client.get(url)
    assert (deleted.status_code, deleted.json()["code"]) == (404, "link_gone")

    # Rotating keys: a new signing key keeps old links while the old key is listed.
    kept = share(api, clean(api))
    rotated = settings.model_copy(
        update={"link_keys": settings.link_keys.__class__(f"k2={'b' * 32},{KEYS}")}
    )
    with running_api(rotated, sandbox) as after:
        assert after.client.get(kept).status_code == 200
    retired = settings.model_copy(
        update={"link_keys": settings.link_keys.__class__(f"k2={'b' * 32}")}
    )
    with running_api(retired, sandbox) as after:
        assert after.client.get(kept).json()["code"] == "link_invalid"


def test_only_clean_files_are_shared(api: Api) -> None:
    rejected: str = api.upload(b"<html><script>x</script></html>", "page.html").json()["id"]
    api.inspect()
    answer = api.client.post(f"/v1/files/{rejected}/links", headers=api.auth())
    assert answer.status_code == 409
    assert api.client.post(f"/v1/files/{rejected}/links", headers=api.auth("b")).status_code == 404
