"""Webhooks: per-tenant endpoints, events written in the same transaction as the change they
report (an outbox), and signed deliveries (Standard Webhooks) retried by the job runner.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import structlog
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from filegate import __version__, metrics, signals
from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Jobs, WebhookEndpoints, WebhookEvents
from filegate.domain import (
    EventState,
    EventType,
    JobKind,
    JobRecord,
    WebhookEndpointRecord,
    WebhookEventRecord,
    new_id,
    parse_choices,
    utcnow,
)
from filegate.errors import ErrorCode, FilegateError
from filegate.jobs.base import ExpectedJobFailure
from filegate.services.keys import validate_tenant
from filegate.services.targets import Target, validate_target, vet_target

log = structlog.get_logger(__name__)

USER_AGENT = f"filegate/{__version__}"
# Standard Webhooks asks for a secret of 24 to 64 random bytes.
WHSEC_PREFIX = "whsec_"
SECRET_BYTES = 32
# Every endpoint turns each event into one more outbound request; a cap keeps one tenant from
# using filegate as a request amplifier.
MAX_ENDPOINTS_PER_TENANT = 20
# The status is the answer; reading a little of the body lets a receiver finish its reply, and
# stopping there means a huge (or endless) body costs nothing.
RESPONSE_LIMIT = 4 * 1024
# A name with IPv6 and IPv4 addresses: try the next one if one cannot be connected to.
MAX_ADDRESSES = 3
# Errors are stored and logged; exception texts can be long.
ERROR_LENGTH = 200


def emit(
    session: Session,
    *,
    tenant: str,
    type_: EventType,
    subject: str,
    data: Mapping[str, object],
) -> list[JobRecord]:
    """Record ``type_`` for every endpoint of ``tenant`` that wants it, in the caller's
    transaction; returns the delivery jobs to dispatch after the commit.

    One event per (endpoint, type, subject): running this twice adds nothing, so the event id
    a receiver sees is the same on every retry and after any crash.
    """
    jobs = []
    payload = {"type": type_.value, "timestamp": utcnow().isoformat(), "data": dict(data)}
    for endpoint in WebhookEndpoints(session).active(tenant):
        if type_ not in endpoint.events:
            continue
        event_id = WebhookEvents(session).add(endpoint.id, tenant, type_, subject, payload)
        if event_id is None:
            continue
        job = Jobs(session).want(JobKind.DELIVER, event_id)
        if job is not None:
            jobs.append(job)
    return jobs


def parse_events(names: str | Iterable[str] | None) -> frozenset[EventType]:
    """Event types from names (a comma-separated string or a list); None means all of them."""
    if names is None:
        return frozenset(EventType)
    empty = "An endpoint needs at least one event type."
    return parse_choices(EventType, names, what="event type", empty=empty)


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and base64 of random bytes."""
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def create_endpoint(
    db: Database,
    *,
    tenant: str,
    url: str,
    events: str | Iterable[str] | None,
    allow_internal: bool,
) -> tuple[WebhookEndpointRecord, str]:
    """Vet ``url`` and add an endpoint; its secret is returned here and nowhere else."""
    tenant = validate_tenant(tenant)
    wanted = parse_events(events)
    record = WebhookEndpointRecord(
        id=new_id(),
        tenant=tenant,
        url=validate_target(url, allow_internal=allow_internal),
        events=wanted,
        created_at=utcnow(),
    )
    secret = new_secret()
    with db.session() as session:
        endpoints = WebhookEndpoints(session)
        if len(endpoints.active(tenant)) >= MAX_ENDPOINTS_PER_TENANT:
            raise FilegateError(
                ErrorCode.WEBHOOK_LIMIT_REACHED,
                f"A tenant may have {MAX_ENDPOINTS_PER_TENANT} webhook endpoints; remove one "
                "first.",
            )
        endpoints.add(record, secret)
    log.info("webhook.endpoint_added", endpoint_id=record.id, tenant=tenant)
    return record, secret


def list_endpoints(db: Database, tenant: str | None) -> list[WebhookEndpointRecord]:
    """Active endpoints of ``tenant`` (every tenant's for None), oldest first."""
    with db.session() as session:
        return WebhookEndpoints(session).active(tenant)


def remove_endpoint(db: Database, endpoint_id: str, tenant: str | None = None) -> bool:
    """Remove an endpoint (of ``tenant`` only, if given); its undelivered events are given up
    when their delivery jobs next run."""
    with db.session() as session:
        removed = WebhookEndpoints(session).retire(endpoint_id, tenant)
    if removed:
        log.info("webhook.endpoint_removed", endpoint_id=endpoint_id)
    return removed


class DeliveryFailed(ExpectedJobFailure):
    """One delivery attempt failed; ``reason`` is short (``http_500``, ``timeout``, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def deliver(db: Database, settings: Settings, event_id: str) -> str:
    """Send one event to its endpoint once; the outcome, or ``DeliveryFailed`` to retry.

    The ``webhook-id`` header is the event id on every attempt, so receivers can de-duplicate.
    """
    loaded = _load(db, event_id)
    if isinstance(loaded, str):
        return loaded
    event, url, secret = loaded
    # A file's event logs its file id, so one query finds the upload, its jobs and webhooks.
    about = {"file_id": event.subject} if event.type.value.startswith("file.") else {}
    with structlog.contextvars.bound_contextvars(**about):
        started = time.monotonic()
        status, reason = _attempt(settings, url, event, secret)
        _record(db, event, status, reason, round((time.monotonic() - started) * 1000))
    if reason is not None:
        raise DeliveryFailed(reason)
    return "delivered"


def give_up(db: Database, event_id: str) -> None:
    """Stop retrying an event: it stays visible as failed."""
    with db.session() as session:
        events = WebhookEvents(session)
        changed = events.given_up(event_id)
        event = events.get(event_id)
    if changed and event is not None:
        metrics.WEBHOOK_DELIVERIES.labels(outcome="given_up").inc()
        signals.count(signals.WEBHOOK_DELIVERIES, "given_up")
        log.warning(
            "webhook.given_up",
            event_id=event.id,
            endpoint_id=event.endpoint_id,
            tenant=event.tenant,
            type=event.type.value,
            attempts=event.attempts,
            last_status=event.last_status,
        )


def _load(db: Database, event_id: str) -> tuple[WebhookEventRecord, str, str] | str:
    """The event, its endpoint's URL and secret; or the outcome when there is nothing to send."""
    with db.session() as session:
        event = WebhookEvents(session).get(event_id)
        if event is None:
            return "event_missing"
        if event.state is EventState.DELIVERED:
            return "already_delivered"
        if event.state is EventState.FAILED:
            return "given_up"
        endpoint = WebhookEndpoints(session).get(event.endpoint_id)
        secret = WebhookEndpoints(session).secret(event.endpoint_id)
        if endpoint is None or secret is None:
            WebhookEvents(session).given_up(event_id)
    if endpoint is None or secret is None:
        metrics.WEBHOOK_DELIVERIES.labels(outcome="endpoint_removed").inc()
        log.info(
            "webhook.endpoint_gone",
            event_id=event.id,
            endpoint_id=event.endpoint_id,
            tenant=event.tenant,
            type=event.type.value,
        )
        return "endpoint_removed"
    return event, endpoint.url, secret


def _record(
    db: Database,
    event: WebhookEventRecord,
    status: int | None,
    reason: str | None,
    duration_ms: int,
) -> None:
    """Store, count and log one attempt."""
    with db.session() as session:
        events = WebhookEvents(session)
        events.attempted(event.id, status=status, error=reason)
        if reason is None:
            events.delivered(event.id)
    outcome = _outcome(status, reason)
    metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    signals.count(signals.WEBHOOK_DELIVERIES, outcome)
    report = log.info if reason is None else log.warning
    report(
        "webhook.delivery",
        event_id=event.id,
        endpoint_id=event.endpoint_id,
        tenant=event.tenant,
        type=event.type.value,
        attempt=event.attempts + 1,
        outcome=outcome,
        status=status,
        error=reason,
        duration_ms=duration_ms,
    )


def _attempt(
    settings: Settings, url: str, event: WebhookEventRecord, secret: str
) -> tuple[int | None, str | None]:
    """(HTTP status or None, failure reason or None) of one signed POST."""
    try:
        # Again at every attempt: the name may point somewhere else since it was checked.
        target = vet_target(url, allow_internal=settings.webhook_allow_internal)
    except FilegateError as exc:
        return None, f"target_refused: {exc.message}"
    body = json.dumps(dict(event.payload), separators=(",", ":"))
    headers = _signed_headers(event.id, secret, body)
    deadline = _Deadline(settings.webhook_timeout_seconds)
    try:
        with deadline:
            status = _post(target, body.encode(), headers, deadline)
    except httpx.TimeoutException:
        return None, "timeout"
    except httpx.HTTPError as exc:
        if deadline.expired:
            return None, "timeout"
        kind = "connect_error" if isinstance(exc, httpx.ConnectError) else "network_error"
        return None, f"{kind}: {exc}"[:ERROR_LENGTH] if str(exc) else kind
    return status, None if 200 <= status < 300 else f"http_{status}"


def _signed_headers(event_id: str, secret: str, body: str) -> dict[str, str]:
    now = utcnow()
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _post(target: Target, body: bytes, headers: dict[str, str], deadline: _Deadline) -> int:
    """POST to the vetted addresses in turn (the next only if one refuses to connect)."""
    extensions: dict[str, object] = {"trace": deadline.trace}
    if target.scheme == "https" and not target.is_literal:
        # We connect to an address, but TLS must still present and verify the real name.
        extensions["sni_hostname"] = target.host
    failure: httpx.ConnectError | None = None
    # A fresh client per attempt: no pooled connection (made for another name at the same
    # address) is ever reused, no cookies carry over, and threads share nothing but the TLS
    # context. trust_env=False: a proxy from the environment would resolve the name itself.
    with httpx.Client(
        verify=_tls_context(),
        trust_env=False,
        follow_redirects=False,
        timeout=deadline.seconds,
    ) as client:
        for address in target.addresses[:MAX_ADDRESSES]:
            request = client.build_request(
                "POST",
                target.pinned_url(address),
                content=body,
                headers={**headers, "host": target.host_header},
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
                continue
            try:
                _read_some(response)
            finally:
                response.close()
            return response.status_code
    assert failure is not None  # vet_target never returns a target without addresses
    raise failure


def _read_some(response: httpx.Response) -> None:
    """Read at most RESPONSE_LIMIT raw bytes: the status is the answer, the body is ignored."""
    received = 0
    for chunk in response.iter_raw():
        received += len(chunk)
        if received >= RESPONSE_LIMIT:
            break


class _Deadline:
    """Cuts an attempt's sockets when it overruns: per-read timeouts alone would let a receiver
    that drips one byte at a time hold a worker thread for hours."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()

    def trace(self, name: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace hook: remember each connected socket."""
        if name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                if self.expired:
                    _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # shutdown, not close: it wakes the thread blocked reading, and the descriptor stays owned
    # (and closed) by that thread, so it cannot be reused under it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle costs milliseconds; an SSLContext is safe to share.
    return httpx.create_ssl_context()


def _outcome(status: int | None, reason: str | None) -> str:
    """A bounded label for metrics: delivered, http_4xx, timeout, connect_error, ..."""
    if reason is None:
        return "delivered"
    if status is not None:
        return f"http_{status // 100}xx"
    return reason.split(":", 1)[0]
