"""The status page's answers: each verdict from its numbers, the signals that feed them (real
SQLite and PostgreSQL), the deploy history, and the endpoints' access rules and escaping."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from filegate import signals
from filegate.config import Settings, load_settings
from filegate.db import migrate
from filegate.db.engine import Database
from filegate.db.repository import Jobs, Processes, Signals, WebhookEndpoints, WebhookEvents
from filegate.domain import EventType, JobKind, Scope, WebhookEndpointRecord, new_id
from filegate.inspect.sandbox import Sandbox
from filegate.services import maintenance, status
from filegate.services.keys import create_key
from filegate.signals import Recorder, SignalWriter
from filegate.storage.local import LocalStorage
from tests.conftest import Api, running_api
from tests.support.services import without_filegate_env

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
OK_CHECKS = {"database": "ok", "storage": "ok", "queue": "ok", "scanner": "ok"}


def histogram(signal: str, seconds: list[float]) -> dict[tuple[str, str], tuple[int, float]]:
    recorder = Recorder()
    for value in seconds:
        recorder.observe(signal, value)
    rows: dict[tuple[str, str], tuple[int, float]] = {}
    for (_, name, label), (n, total) in recorder.take().items():
        rows[(name, label)] = (int(n), total)
    return rows


def window(*parts: dict[tuple[str, str], tuple[int, float]]) -> status.Window:
    merged: dict[tuple[str, str], tuple[int, float]] = {}
    for part in parts:
        for key, (n, total) in part.items():
            old = merged.get(key, (0, 0.0))
            merged[key] = (old[0] + n, old[1] + total)
    return status.Window(merged)


def counts(signal: str, **by_label: int) -> dict[tuple[str, str], tuple[int, float]]:
    return {(signal, label): (n, 0.0) for label, n in by_label.items()}


def requests(ok: int, errors: int) -> dict[tuple[str, str], tuple[int, float]]:
    return {(signals.REQUESTS, "2xx"): (ok, 0.0), (signals.REQUESTS, "5xx"): (errors, 0.0)}


# --- quantiles --------------------------------------------------------------------------------


def test_quantiles_interpolate_within_a_bucket_as_prometheus_does() -> None:
    # 10 values in (0.1, 0.25]: the median is half-way through that bucket.
    w = window(histogram(signals.UPLOAD_SECONDS, [0.2] * 10))
    assert w.quantile(signals.UPLOAD_SECONDS, 0.5) == pytest.approx(0.175)
    assert w.quantile(signals.UPLOAD_SECONDS, 1.0) == pytest.approx(0.25)
    assert w.quantile(signals.VERDICT_SECONDS, 0.5) is None  # no samples


def test_a_quantile_past_the_last_bound_is_that_bound() -> None:
    w = window(histogram(signals.VERDICT_SECONDS, [5000.0, 6000.0]))
    assert w.quantile(signals.VERDICT_SECONDS, 0.95) == 900.0


# --- up ---------------------------------------------------------------------------------------


def up(checks: dict[str, str], **kwargs: object) -> status.Answer:
    defaults: dict[str, object] = {
        "scanner_required": True,
        "signatures_at": NOW - timedelta(hours=5),
        "workers_seen": 1,
        "api_seen": 1,
        "now": NOW,
    }
    return status.assess_up(checks, **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_up_is_ok_when_everything_answers_and_a_worker_is_alive() -> None:
    answer = up(OK_CHECKS)
    assert (answer.verdict, answer.summary) == (
        "ok",
        "Up: every dependency answers; 1 worker seen in the last minute.",
    )
    assert answer.numbers["signatures_age_hours"] == 5.0


def test_up_is_bad_when_a_required_dependency_fails() -> None:
    answer = up({**OK_CHECKS, "database": "failing", "queue": "failing"})
    assert answer.verdict == "bad"
    assert answer.summary.startswith("The database and the queue broker are unreachable")


def test_a_required_scanner_down_is_bad_an_optional_one_is_a_warning() -> None:
    checks = {**OK_CHECKS, "scanner": "failing"}
    assert up(checks).summary == "The virus scanner is unreachable."
    assert up(checks).verdict == "bad"
    relaxed = up(checks, scanner_required=False)
    assert relaxed.verdict == "warn"
    assert "virus scanner does not answer" in relaxed.summary


def test_up_warns_without_a_scanner_and_on_stale_signatures() -> None:
    off = up({**OK_CHECKS, "scanner": "off"}, scanner_required=False, signatures_at=None)
    assert off.verdict == "warn"
    assert "no virus scanner is configured" in off.summary
    stale = up(OK_CHECKS, signatures_at=NOW - timedelta(days=9))
    assert stale.verdict == "warn"
    assert "signatures are 9 days old" in stale.summary


def test_up_is_bad_when_no_worker_was_seen() -> None:
    answer = up(OK_CHECKS, workers_seen=0)
    assert answer.verdict == "bad"
    assert "no worker has been seen" in answer.summary.lower()


# --- slow -------------------------------------------------------------------------------------


def test_slow_is_ok_when_quiet_or_as_usual() -> None:
    quiet = status.assess_slow(window(), window())
    assert (quiet.verdict, quiet.summary) == (
        "ok",
        "No uploads, downloads or verdicts in the last 5 minutes.",
    )
    usual = histogram(signals.UPLOAD_SECONDS, [0.2] * 20)
    same = status.assess_slow(window(usual), window(usual, usual))
    assert (same.verdict, same.summary) == (
        "ok",
        "Upload acceptance is as fast as over the 24 hours before.",
    )
    assert same.numbers["upload_acceptance"]["last_5_minutes"]["samples"] == 20
    # A new install has no day behind it: it says so rather than "as fast as".
    fresh = status.assess_slow(window(usual), window())
    assert fresh.summary.startswith("Too little traffic to compare with the 24 hours before")


def test_slow_says_which_latency_grew_and_by_how_much() -> None:
    day = histogram(signals.VERDICT_SECONDS, [0.4] * 200)
    recent = histogram(signals.VERDICT_SECONDS, [20.0] * 10)
    answer = status.assess_slow(window(recent), window(day, recent))
    assert answer.verdict == "bad"
    assert answer.summary.startswith("Time to verdict is slow: p95 ")
    mild = histogram(signals.VERDICT_SECONDS, [1.5] * 10)
    assert status.assess_slow(window(mild), window(day, mild)).verdict == "warn"


def test_slow_ignores_a_handful_of_samples() -> None:
    day = histogram(signals.UPLOAD_SECONDS, [0.1] * 100)
    recent = histogram(signals.UPLOAD_SECONDS, [50.0] * (status.MIN_SLOW_SAMPLES - 1))
    assert status.assess_slow(window(recent), window(day)).verdict == "ok"


# --- jobs -------------------------------------------------------------------------------------


def facts(**kwargs: object) -> status.JobFacts:
    defaults: dict[str, object] = {
        "runs": {},
        "failures": {},
        "oldest_waiting": {},
        "given_up": [],
        "failing_endpoints": [],
    }
    return status.JobFacts(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_jobs_ok_warn_bad() -> None:
    assert status.assess_jobs(facts(runs={"inspect": 40})).verdict == "ok"
    some = status.assess_jobs(facts(runs={"inspect": 40}, failures={"inspect": 2}))
    assert (some.verdict, some.summary) == ("warn", "2 inspect job runs failed in the last hour.")
    many = status.assess_jobs(facts(runs={"promote": 8}, failures={"promote": 6}))
    assert many.verdict == "bad"
    assert many.summary == "Promote jobs are failing (6 of 8 runs in the last hour)."
    stuck = status.assess_jobs(facts(oldest_waiting={"inspect": 1200.0}))
    assert stuck.verdict == "bad"
    assert stuck.summary == "The oldest waiting job (inspect) has waited 1200 s."


def test_failing_webhooks_warn_without_making_jobs_bad() -> None:
    endpoint = {"endpoint_id": "e1", "host": "hooks.example", "failing_events": 9}
    answer = status.assess_jobs(
        facts(runs={"deliver": 9}, failures={"deliver": 9}, failing_endpoints=[endpoint])
    )
    assert answer.verdict == "warn"
    assert answer.summary == "Webhook deliveries keep failing to hooks.example."


# --- deploy -----------------------------------------------------------------------------------


def test_the_current_release_starts_after_the_last_other_release() -> None:
    t = [NOW + timedelta(minutes=m) for m in range(6)]
    starts = [(t[0], "a"), (t[1], "a"), (t[2], "b"), (t[3], "b"), (t[4], "a")]
    assert status.find_deploy(starts[:4], "b", NOW) == status.Deploy("b", t[2], "a")
    # "a" deployed again after "b": its start is the redeploy, its predecessor "b".
    assert status.find_deploy(starts, "a", NOW) == status.Deploy("a", t[4], "b")
    assert status.find_deploy(starts[:2], "a", NOW) == status.Deploy("a", t[0], None)


DEPLOY = status.Deploy("2.0", NOW - timedelta(minutes=30), "1.9")


def test_deploy_with_too_little_traffic_says_so_plainly() -> None:
    answer = status.assess_deploy(DEPLOY, window(requests(5, 0)), window(requests(400, 1)), NOW)
    assert answer.verdict == "ok"
    assert answer.summary.startswith("Too little traffic to tell: 5 requests since 2.0 started")


def test_deploy_calls_out_an_error_rate_rise_beyond_noise() -> None:
    answer = status.assess_deploy(DEPLOY, window(requests(70, 30)), window(requests(400, 1)), NOW)
    assert answer.verdict == "bad"
    assert answer.summary == (
        "Since 2.0 started 30 min ago, the error rate rose from 0.2% to 30.0% "
        "(30 of 100 requests failed) (against 1.9's last hour)."
    )
    # The same two percent either side is noise, not a change.
    same = status.assess_deploy(DEPLOY, window(requests(98, 2)), window(requests(392, 8)), NOW)
    assert same.verdict == "ok"
    assert same.summary.startswith("No change beyond noise since 2.0 started")


def test_deploy_notices_slower_verdicts_and_new_rejections() -> None:
    before = window(
        requests(100, 0),
        histogram(signals.VERDICT_SECONDS, [0.3] * 50),
        counts(signals.VERDICTS, clean=50),
    )
    after = window(
        requests(100, 0),
        histogram(signals.VERDICT_SECONDS, [4.0] * 50),
        counts(signals.VERDICTS, clean=25, rejected=25),
        counts(signals.REJECTIONS, macro_found=25),
    )
    answer = status.assess_deploy(DEPLOY, after, before, NOW)
    assert answer.verdict == "bad"
    assert "time to verdict p95 rose from 0.49 s to 4.9 s" in answer.summary
    assert "macro_found rejections rose from 0.0% to 50.0% of files" in answer.summary


def test_the_first_release_has_nothing_to_compare() -> None:
    first = status.Deploy("1.0", NOW - timedelta(minutes=3), None)
    answer = status.assess_deploy(first, window(requests(50, 0)), window(), NOW)
    assert (answer.verdict, answer.numbers["previous"]) == ("ok", None)
    assert "first release recorded" in answer.summary


# --- signals in the database ------------------------------------------------------------------


def test_flushes_add_up_and_concurrent_writers_lose_nothing(db: Database) -> None:
    recorder = Recorder()
    writer = SignalWriter(db, "r1", "api", recorder=recorder)
    recorder.count(signals.REQUESTS, "2xx", 3)
    recorder.observe(signals.UPLOAD_SECONDS, 0.2)
    assert writer.flush()
    recorder.count(signals.REQUESTS, "2xx", 2)
    assert writer.flush()
    assert recorder.take() == {}

    # Four processes' writers adding the same minutes at once (row locks, not lost updates).
    others = [Recorder() for _ in range(4)]
    writers = [SignalWriter(db, "r1", "api", recorder=r) for r in others]
    barrier = threading.Barrier(len(writers))

    def write(index: int) -> None:
        for _ in range(20):
            others[index].count(signals.REQUESTS, "2xx")
            others[index].count(signals.JOB_RUNS, "inspect")
            barrier.wait(timeout=30)
            assert writers[index].flush()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with db.session() as session:
        totals = Signals(session).totals(hour - timedelta(hours=1), hour + timedelta(hours=2))
        live = Processes(session).seen_since(hour - timedelta(hours=1))
    assert totals[(signals.REQUESTS, "2xx")] == (5 + 80, 0.0)
    assert totals[(signals.JOB_RUNS, "inspect")][0] == 80
    assert totals[(signals.UPLOAD_SECONDS, "0.25")][0] == 1
    assert totals[(signals.UPLOAD_SECONDS, "0.25")][1] == pytest.approx(0.2)
    assert {p.release for p in live} == {"r1"}
    assert len(live) == 5


def test_a_failed_flush_keeps_its_rows_for_the_next_one(tmp_path: Path, db: Database) -> None:
    recorder = Recorder()
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    try:
        failing = SignalWriter(broken, "r1", "worker", recorder=recorder)
        recorder.count(signals.JOB_FAILURES, "inspect", 4)
        assert not failing.flush()
    finally:
        broken.dispose()
    assert SignalWriter(db, "r1", "worker", recorder=recorder).flush()
    with db.session() as session:
        totals = Signals(session).totals(NOW - timedelta(days=3650), NOW + timedelta(days=3650))
    assert totals[(signals.JOB_FAILURES, "inspect")][0] == 4


def test_the_recorder_drops_the_oldest_minutes_past_its_cap() -> None:
    recorder = Recorder()
    old = {(NOW - timedelta(minutes=m), "x", ""): [1, 0.0] for m in range(signals.MAX_PENDING + 5)}
    recorder.give_back(old)
    kept = recorder.take()
    assert len(kept) == signals.MAX_PENDING
    assert min(kept)[0] == NOW - timedelta(minutes=signals.MAX_PENDING - 1)


def test_the_purge_job_forgets_old_status_history(db: Database, tmp_path: Path) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    with db.session() as session:
        Signals(session).add("old", {(long_ago.replace(second=0, microsecond=0), "x", ""): [1, 0]})
        Processes(session).register(
            "01OLDPROCESS0000000000000A",
            release="old",
            role="api",
            hostname="h",
            pid=1,
            now=long_ago,
        )
    outcome = maintenance.purge(
        db, LocalStorage(tmp_path / "storage"), 3600, 14, tus_expiry_seconds=86_400
    )
    assert "signal_rows=1 process_rows=1" in outcome


# --- the endpoints ----------------------------------------------------------------------------


MakeApi = Callable[..., Api]


@pytest.fixture
def make_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> Iterator[MakeApi]:
    """In-process apps on SQLite with the given settings, and an admin key as ``admin``."""
    without_filegate_env(monkeypatch, tmp_path)
    url = f"sqlite:///{tmp_path / 'filegate.db'}"
    migrate.upgrade(url)
    with ExitStack() as stack:

        def make(**extra: Any) -> Api:
            settings = load_settings(data_dir=tmp_path / "var", database_url=url, **extra)
            api = stack.enter_context(running_api(settings, sandbox))
            scopes = frozenset({Scope.ADMIN})
            api.keys["admin"] = create_key(api.runtime.db, tenant="ops", scopes=scopes)[1]
            return api

        yield make


@pytest.fixture
def status_api(make_api: MakeApi) -> Api:
    return make_api()


def test_v1_status_needs_an_admin_key_and_answers_the_four_questions(status_api: Api) -> None:
    client = status_api.client
    assert client.get("/v1/status").status_code == 401
    assert client.get("/v1/status", headers=status_api.auth("a")).status_code == 403
    upload = status_api.upload(b"hello\n", "note.txt")
    assert upload.status_code == 202
    status_api.inspect()
    response = client.get("/v1/status", headers=status_api.auth("admin"))
    assert response.status_code == 200
    body = response.json()
    for key in ("up", "slow", "jobs", "deploy"):
        assert body[key]["verdict"] in ("ok", "warn", "bad")
        assert body[key]["summary"].endswith(".")
    assert body["jobs"]["verdict"] == "ok"
    # The in-process app has no embedded worker, so no worker heartbeat: up says so.
    assert body["up"]["verdict"] == "bad"
    assert "no worker" in body["up"]["summary"].lower()
    assert response.headers["cache-control"] == "private, no-store"


def test_jobs_carry_the_request_that_caused_them(status_api: Api) -> None:
    response = status_api.upload(b"hello\n", "note.txt")
    file_id, request_id = response.json()["id"], response.headers["x-request-id"]
    with status_api.runtime.db.session() as session:
        job = Jobs(session).get(JobKind.INSPECT, file_id)
    assert job is not None
    assert job.request_id == request_id
    status_api.inspect()
    with status_api.runtime.db.session() as session:
        promote = Jobs(session).get(JobKind.PROMOTE, file_id)
    assert promote is not None
    assert promote.request_id == request_id


def test_the_html_page_is_private_by_default_and_escapes_what_it_shows(
    make_api: MakeApi,
) -> None:
    api = make_api(release="<script>alert(1)</script>")
    assert api.client.get("/status").status_code == 401
    page = api.client.get("/status", headers=api.auth("admin"))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    for question in ("Is it up?", "Is it slow?", "Are jobs failing?", "Did the last deploy"):
        assert question in page.text


def test_a_browser_signs_in_to_the_page_with_the_admin_key_as_password(
    make_api: MakeApi,
) -> None:
    api = make_api()
    challenge = api.client.get("/status")
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"].startswith('Basic realm="filegate status"')
    signed_in = api.client.get("/status", auth=("anyone", api.keys["admin"]))
    assert signed_in.status_code == 200
    assert "Is it up?" in signed_in.text
    assert api.client.get("/status", auth=("anyone", api.keys["a"])).status_code == 403
    assert api.client.get("/status", auth=("anyone", "fgk_wrong")).status_code == 401
    garbage = {"Authorization": "Basic %%%not-base64"}
    assert api.client.get("/status", headers=garbage).status_code == 401


def test_the_html_page_can_be_public(make_api: MakeApi) -> None:
    api = make_api(status_public=True)
    assert api.client.get("/status").status_code == 200
    assert api.client.get("/v1/status").status_code == 401  # the JSON never is


def test_settings_default_to_a_private_page() -> None:
    assert Settings.model_fields["status_public"].default is False


def test_a_tenant_sees_only_its_own_receivers_and_the_public_page_no_names(
    make_api: MakeApi,
) -> None:
    api = make_api(status_public=True)
    with api.runtime.db.session() as session:
        for tenant, url in (
            ("ops", "https://ours.example/h"),
            ("other", "https://theirs.example/h"),
        ):
            endpoint = WebhookEndpointRecord(
                new_id(), tenant, url, frozenset(EventType), datetime.now(UTC)
            )
            WebhookEndpoints(session).add(endpoint, "whsec_x")
            event = WebhookEvents(session).add(
                endpoint.id, tenant, EventType.FILE_CLEAN, new_id(), {}
            )
            assert event is not None
            WebhookEvents(session).attempted(event, status=503, error="http_503")
    seen = api.client.get("/v1/status", headers=api.auth("admin")).json()["jobs"]
    assert (
        seen["summary"] == "Webhook deliveries keep failing to ours.example and 1 other endpoint."
    )
    hosts = [e["host"] for e in seen["failing_webhook_endpoints"]]
    assert sorted(hosts, key=str) == [None, "ours.example"]
    assert "theirs.example" not in str(seen)

    page = api.client.get("/status").text  # public: no receivers, hosts or processes named
    assert "Webhook deliveries keep failing to 2 endpoints." in page
    assert "ours.example" not in page
    assert "theirs.example" not in page
    assert f"{socket.gethostname()}:{os.getpid()}" not in page
    admin_page = api.client.get("/status", headers=api.auth("admin")).text
    assert admin_page.count("ours.example") == 0  # a public page is the anonymous view
