"""Real audio and video through both upload channels, and what the file record says about
sanitised copies and about each finding."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from prometheus_client import REGISTRY

from filegate.domain import Scope
from filegate.services.keys import create_key
from tests.conftest import Api
from tests.unit.test_inspect_images import jpeg_with_exif
from tests.unit.test_inspect_media import RECIPES, encode, zip_bytes

REALWORLD = Path(__file__).parent.parent / "realworld" / "files"
MEDIA = [REALWORLD / "video" / "sample.mp4", REALWORLD / "audio" / "no-tags.mp3"]
TUS = {"Tus-Resumable": "1.0.0"}


def direct(api: Api, name: str, data: bytes, profile: str) -> str:
    response = api.upload(data, name, profile=profile)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def resumable(api: Api, name: str, data: bytes, profile: str) -> str:
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"filename": name, "profile": profile}.items()
    )
    headers = {**api.auth(), **TUS, "Upload-Length": str(len(data)), "Upload-Metadata": metadata}
    created = api.client.post("/v1/tus/", headers=headers)
    assert created.status_code == 201, created.text
    upload_id = created.headers["location"].rsplit("/", 1)[1]
    patch = {
        **api.auth(),
        **TUS,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    sent = api.client.patch(f"/v1/tus/{upload_id}", headers=patch, content=data)
    assert sent.status_code == 204, sent.text
    return upload_id


CHANNELS: dict[str, Callable[[Api, str, bytes, str], str]] = {
    "direct": direct,
    "tus": resumable,
}


def record(api: Api, file_id: str, who: str = "a") -> dict[str, object]:
    api.inspect()
    response = api.client.get(f"/v1/files/{file_id}", headers=api.auth(who))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("path", MEDIA, ids=[path.name for path in MEDIA])
@pytest.mark.parametrize("profile", ["media", "default"])
@pytest.mark.parametrize("channel", list(CHANNELS))
def test_real_media_ends_clean(api: Api, path: Path, profile: str, channel: str) -> None:
    file_id = CHANNELS[channel](api, path.name, path.read_bytes(), profile)
    body = record(api, file_id)
    assert body["state"] == "clean", body["findings"]
    assert str(body["detected_type"]).split("/")[0] in {"audio", "video"}


def test_a_media_polyglot_is_rejected(api: Api) -> None:
    data = MEDIA[0].read_bytes() + zip_bytes()
    body = record(api, direct(api, "clip.mp4", data, "media"))
    assert body["state"] == "rejected"
    assert {"media_polyglot", "media_trailing_data"} <= {f["code"] for f in body["findings"]}  # type: ignore[attr-defined]


def test_a_matroska_attachment_is_rejected(api: Api, tmp_path: Path) -> None:
    data = encode(tmp_path / "with-font.mkv", RECIPES["mkv-attachment"]).read_bytes()
    body = record(api, CHANNELS["tus"](api, "episode.mkv", data, "default"))
    assert body["state"] == "rejected"
    assert "media_attachment" in {f["code"] for f in body["findings"]}  # type: ignore[attr-defined]


# --- what the record says about the served bytes ----------------------------------------------


def test_a_sanitised_photo_shows_received_and_served_digests(api: Api) -> None:
    data = jpeg_with_exif(orientation=6)
    body = record(api, direct(api, "photo.jpg", data, "default"))
    assert body["state"] == "clean"
    assert body["received_sha256"] == hashlib.sha256(data).hexdigest()
    assert body["received_size"] == len(data)
    assert body["sanitized"] is True
    assert "removed: EXIF" in body["sanitize_changes"]  # type: ignore[operator]
    served = api.client.get(f"/v1/files/{body['id']}/content", headers=api.auth()).content
    assert body["sha256"] == hashlib.sha256(served).hexdigest() != body["received_sha256"]
    assert body["size"] == len(served)


def test_when_needed_serves_a_plain_png_byte_identical(api: Api) -> None:
    image = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 200)).save(image, format="PNG")
    data = image.getvalue()
    body = record(api, direct(api, "plain.png", data, "default"))
    assert (body["state"], body["sanitized"], body["sanitize_changes"]) == ("clean", False, [])
    assert body["sha256"] == body["received_sha256"] == hashlib.sha256(data).hexdigest()
    served = api.client.get(f"/v1/files/{body['id']}/content", headers=api.auth()).content
    assert served == data


def test_an_admin_sees_evidence_and_rule_for_each_finding(api: Api) -> None:
    data = MEDIA[0].read_bytes() + zip_bytes()
    file_id = direct(api, "clip.mp4", data, "default")
    _, admin_key = create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.ADMIN}))
    api.keys["admin"] = admin_key

    plain = record(api, file_id)
    assert all(set(f) == {"code", "message"} for f in plain["findings"])  # type: ignore[attr-defined]

    explained = record(api, file_id, who="admin")
    (polyglot,) = [f for f in explained["findings"] if f["code"] == "media_polyglot"]  # type: ignore[attr-defined]
    assert polyglot["where"] == f"byte {len(MEDIA[0].read_bytes())}"
    assert polyglot["action"] == "reject"
    assert polyglot["rule"].startswith("built-in default: every finding rejects")
    assert 'profiles.default.actions.media_polyglot = "accept"' in polyglot["rule"]


def test_uploaded_bytes_are_counted_for_every_channel(api: Api) -> None:
    # Only direct uploads were counted; tus and import were missing.
    def counted(channel: str) -> float:
        return REGISTRY.get_sample_value("filegate_upload_bytes_total", {"channel": channel}) or 0

    data = MEDIA[1].read_bytes()
    before = {channel: counted(channel) for channel in ("direct", "tus")}
    direct(api, "song.mp3", data, "media")
    resumable(api, "song.mp3", data, "media")
    assert counted("direct") - before["direct"] == len(data)
    assert counted("tus") - before["tus"] == len(data)
