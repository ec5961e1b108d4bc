"""The release checklist's integration check, against a running staging stack.

Four stories, each through the real proxy, APIs, workers, clamd, bucket and database:

1. a direct upload through the proxy is inspected, promoted and downloads identically;
2. a tus upload started on one API process is resumed on the other and ends identical;
3. a file carrying the EICAR test signature is rejected by the scanner and never served;
4. the upload of (1) is announced by a signed ``file.clean`` webhook.

One line per story (ok/FAIL and seconds); exit 1 on any failure.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from tests.support.clamd import EICAR
from tests.support.receiver import Receiver, webhook_receiver

TIMEOUT = 120.0
PATCH_SIZE = 5 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


class CheckFailed(Exception):
    pass


def _cli(env: Mapping[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - argv built here, no shell
        [sys.executable, "-m", "filegate", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise CheckFailed(f"filegate {' '.join(args)}: {result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def _decided(client: httpx.Client, file_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/v1/files/{file_id}").raise_for_status().json()
        if record["state"] != "quarantined":
            return record
        time.sleep(0.25)
    raise CheckFailed(f"{file_id} was not inspected within {TIMEOUT:g} s")


def _payload(size: int, seed: str) -> bytes:
    line = f"staging check {seed}: a line of plain text\n".encode()
    return (line * (size // len(line) + 1))[:size]


def _uploaded_and_decided(
    proxy: httpx.Client, name: str, data: bytes
) -> tuple[str, dict[str, Any]]:
    """A direct upload through the proxy, and its record once inspection decided it."""
    posted = proxy.post("/v1/files", files={"file": (name, data, "text/plain")})
    if posted.status_code != 202:
        raise CheckFailed(f"upload answered {posted.status_code}: {posted.text[:300]}")
    file_id = str(posted.json()["id"])
    return file_id, _decided(proxy, file_id)


def direct_upload(proxy: httpx.Client, _apis: list[httpx.Client], _hooks: Receiver) -> str:
    data = _payload(300_000, "direct")
    file_id, record = _uploaded_and_decided(proxy, "notes.txt", data)
    if record["state"] != "clean":
        raise CheckFailed(f"{file_id} is {record['state']}: {record.get('findings')}")
    content = proxy.get(f"/v1/files/{file_id}/content")
    if content.content != data:
        raise CheckFailed("the downloaded bytes differ from the uploaded ones")
    _direct_ids.append(file_id)
    return f"{file_id} clean, downloaded through the proxy identically"


_direct_ids: list[str] = []


def tus_resumed_elsewhere(_proxy: httpx.Client, apis: list[httpx.Client], _hooks: Receiver) -> str:
    first, second = apis
    data = _payload(3 * PATCH_SIZE + 1234, "tus")
    name = base64.b64encode(b"resumed.txt").decode()
    headers = {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"}
    created = first.post("/v1/tus/", headers=headers)
    if created.status_code != 201:
        raise CheckFailed(f"tus create answered {created.status_code}: {created.text[:300]}")
    path = httpx.URL(created.headers["location"]).path
    octet = {**TUS, "Content-Type": "application/offset+octet-stream"}
    answer = first.patch(path, content=data[:PATCH_SIZE], headers={**octet, "Upload-Offset": "0"})
    if answer.status_code != 204:
        raise CheckFailed(f"PATCH on the first API answered {answer.status_code}")
    offset = int(second.head(path, headers=TUS).headers["upload-offset"])
    if offset != PATCH_SIZE:
        raise CheckFailed(f"the second API sees offset {offset}, not {PATCH_SIZE}")
    rest = second.patch(
        path, content=data[offset:], headers={**octet, "Upload-Offset": str(offset)}
    )
    if rest.status_code != 204:
        raise CheckFailed(f"PATCH on the second API answered {rest.status_code}")
    file_id = path.rsplit("/", 1)[1]
    record = _decided(second, file_id)
    if record["state"] != "clean" or record["sha256"] != hashlib.sha256(data).hexdigest():
        raise CheckFailed(f"{file_id} is {record['state']} with sha256 {record['sha256']}")
    return f"{file_id}: {PATCH_SIZE} bytes on one API, the rest on the other, clean and equal"


def eicar_rejected(proxy: httpx.Client, _apis: list[httpx.Client], _hooks: Receiver) -> str:
    file_id, record = _uploaded_and_decided(proxy, "eicar.txt", EICAR)
    if record["state"] != "rejected":
        raise CheckFailed(f"the EICAR file is {record['state']}")
    served = proxy.get(f"/v1/files/{file_id}/content")
    if served.status_code < 400:
        raise CheckFailed(f"the rejected file was served ({served.status_code})")
    return f"{file_id} rejected, download refused ({served.status_code})"


def webhook_received(_proxy: httpx.Client, _apis: list[httpx.Client], hooks: Receiver) -> str:
    if not _direct_ids:
        raise CheckFailed("no direct upload to wait for")
    file_id = _direct_ids[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [d for d in hooks.accepted("file.clean") if d.data.get("file_id") == file_id]
        if found:
            return f"file.clean for {file_id}, signature verified"
        time.sleep(0.25)
    raise CheckFailed(f"no verified file.clean webhook for {file_id} within 60 s")


STORIES: list[tuple[str, Callable[[httpx.Client, list[httpx.Client], Receiver], str]]] = [
    ("direct upload", direct_upload),
    ("tus across APIs", tus_resumed_elsewhere),
    ("EICAR rejected", eicar_rejected),
    ("webhook", webhook_received),
]


def run_checks(ready: Mapping[str, Any], env: Mapping[str, str]) -> int:
    failed = 0
    with webhook_receiver() as hooks:
        key = _cli(env, "keys", "create", "--tenant", "staging-check", "--scopes", "upload,read")
        hooks.secret = _cli(env, "webhooks", "add", "--tenant", "staging-check", "--url", hooks.url)
        auth = {"Authorization": f"Bearer {key}"}
        proxy = httpx.Client(base_url=ready["public_url"], headers=auth, timeout=60)
        apis = [httpx.Client(base_url=url, headers=auth, timeout=60) for url in ready["apis"]]
        try:
            for name, story in STORIES:
                started = time.monotonic()
                try:
                    detail, ok = story(proxy, apis, hooks), True
                except (CheckFailed, httpx.HTTPError) as exc:
                    detail, ok = str(exc) or type(exc).__name__, False
                failed += not ok
                seconds = time.monotonic() - started
                print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail} [{seconds:.1f}s]", flush=True)
        finally:
            proxy.close()
            for api in apis:
                api.close()
    return 1 if failed else 0
