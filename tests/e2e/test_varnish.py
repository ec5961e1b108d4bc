"""filegate behind a real Varnish with deploy/varnish/filegate.vcl: share links are cached and
served from the cache (whole, in ranges, conditionally), nothing asked with credentials is
stored, a deleted file's cached copy is purged by the first attempt of its evict job, and the
built-in cache rules' examples agree with what Varnish did."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from filegate import caching
from filegate.config import builtin_rules
from filegate.db.engine import Database
from filegate.db.repository import Jobs
from filegate.domain import JobKind, JobRecord, JobState
from tests.e2e.live import LiveServer, free_port, inspected, wait_for
from tests.support.samples import png
from tests.support.services import require_service, stop_process

VCL = Path(__file__).resolve().parents[2] / "deploy" / "varnish" / "filegate.vcl"
IMAGE = png(64, 48)


def _varnishd(_: str) -> None:
    if shutil.which("varnishd") is None and not Path("/usr/sbin/varnishd").exists():
        raise FileNotFoundError("varnishd is not installed (Debian: varnish)")


@dataclass(frozen=True)
class Cache:
    url: str

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Cache]]:
    """filegate (embedded worker, purging into Varnish) and Varnish in front of it, shared by
    the tests here (each works on files of its own)."""
    require_service("Varnish", "varnishd", _varnishd)
    tmp_path = tmp_path_factory.mktemp("varnish-stack")
    port = free_port()
    env = {
        "FILEGATE_LINK_KEYS": "k1=" + "v" * 32,
        "FILEGATE_CACHE__PURGE_URLS": json.dumps([f"http://127.0.0.1:{port}/"]),
        "FILEGATE_JOB_RETRY_SECONDS": "1",
    }
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server:
        vcl = VCL.read_text()
        vcl = vcl.replace('.host = "proxy";', '.host = "127.0.0.1";')
        vcl = vcl.replace('.port = "80";', f'.port = "{server.port}";')
        (tmp_path / "filegate.vcl").write_text(vcl)
        log = (tmp_path / "varnish.log").open("wb")
        process = subprocess.Popen(
            [
                shutil.which("varnishd") or "/usr/sbin/varnishd",
                "-F",
                "-j",
                "none",
                "-a",
                f"127.0.0.1:{port}",
                "-n",
                str(tmp_path / "varnish"),
                "-f",
                str(tmp_path / "filegate.vcl"),
                "-s",
                "malloc,64m",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        cache = Cache(f"http://127.0.0.1:{port}")
        try:
            wait_for(lambda: _answers(cache), 60, "Varnish to answer")
            yield server, cache
        finally:
            stop_process(process, 15)
            log.close()


def _answers(cache: Cache) -> bool:
    try:
        return cache.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def clean_file(server: LiveServer, key: str, data: bytes = IMAGE, name: str = "dot.png") -> str:
    with server.client(key) as client:
        posted = client.post("/v1/files", files={"file": (name, data, "image/png")})
        assert posted.status_code == 202, posted.text
        file_id: str = posted.json()["id"]
        assert inspected(client, file_id)["state"] == "clean"
    return file_id


def share(server: LiveServer, key: str, file_id: str, **body: object) -> str:
    with server.client(key) as client:
        made = client.post(f"/v1/files/{file_id}/links", json=body or None)
        assert made.status_code == 201, made.text
        url = urlsplit(made.json()["url"])
    return f"{url.path}?{url.query}"


def test_share_links_through_varnish(stack: tuple[LiveServer, Cache]) -> None:
    server, cache = stack
    key = server.create_key("demo", "upload,read")
    file_id = clean_file(server, key)
    link = share(server, key, file_id)

    first, second = cache.get(link), cache.get(link)
    assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
    assert (second.status_code, second.headers["x-cache"]) == (200, "HIT")
    assert second.content == first.content
    assert "surrogate-key" not in second.headers

    part = cache.get(link, Range="bytes=10-19")
    assert (part.status_code, part.headers["x-cache"]) == (206, "HIT")
    assert part.content == first.content[10:20]
    conditional = cache.get(link, **{"If-None-Match": first.headers["etag"]})
    assert (conditional.status_code, conditional.headers["x-cache"]) == (304, "HIT")

    # Credentials: straight through, every time, and never stored for the next caller.
    auth = {"Authorization": f"Bearer {key}"}
    for path in (link, f"/v1/files/{file_id}/content", f"/v1/files/{file_id}"):
        answers = [cache.get(path, **auth) for _ in range(2)]
        assert [a.headers["x-cache"] for a in answers] == ["MISS", "MISS"], path
        assert all("private" in a.headers["cache-control"] for a in answers), path
    assert cache.get(f"/v1/files/{file_id}/content").status_code == 401

    # Deleted: the evict job's first attempt bans every cached copy.
    with server.client(key) as client:
        assert client.delete(f"/v1/files/{file_id}").status_code == 204
    db = Database(server.database_url)
    try:
        wait_for(
            lambda: (job := _job(db, f"file-{file_id}")) is not None and job.state is JobState.DONE,
            30,
            "the evict job",
        )
        job = _job(db, f"file-{file_id}")
        assert job is not None
        assert job.attempts == 1
    finally:
        db.dispose()
    gone = cache.get(link)
    assert (gone.status_code, gone.headers["x-cache"]) == (404, "MISS")
    assert gone.json()["code"] == "link_gone"


def _job(db: Database, key: str) -> JobRecord | None:
    with db.session() as session:
        return Jobs(session).get(JobKind.EVICT, key)


def test_the_built_in_examples_agree_with_varnish(stack: tuple[LiveServer, Cache]) -> None:
    """Every example of the built-in rules, sent twice through Varnish: a cached example is a
    HIT the second time, an uncached one never is."""
    server, cache = stack
    key = server.create_key("demo", "upload,read")
    file_id = clean_file(server, key)
    checked = 0
    for name, rule in builtin_rules().items():
        for want, examples in ((True, rule.cached), (False, rule.not_cached)):
            for example in examples:
                body: dict[str, object] = {"disposition": example.disposition}
                if example.limited:
                    body["max_downloads"] = 100
                link = share(server, key, file_id, **body)
                facts = caching.example_facts(example, file_id, link)
                path = facts.path + (
                    f"?{urlsplit(link).query}" if "{share}" in example.request else ""
                )
                headers = {
                    k: (f"Bearer {key}" if k.lower() == "authorization" else v)
                    for k, v in example.headers.items()
                }
                answers = [cache.get(path, **headers) for _ in range(2)]
                hit = answers[1].headers["x-cache"] == "HIT"
                assert hit == want, (
                    f"{name}: {example.request} {example.headers}: {answers[1].headers}"
                )
                checked += 1
    assert checked == sum(len(r.cached) + len(r.not_cached) for r in builtin_rules().values())
