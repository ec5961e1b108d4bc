"""Delivering webhook events to a real HTTP(S) receiver on 127.0.0.1, one attempt at a time."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook, WebhookVerificationError

from filegate import __version__
from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.models import WebhookEventRow
from filegate.db.repository import WebhookEvents
from filegate.domain import EventType, WebhookEventRecord, new_id
from filegate.services import targets, webhooks
from filegate.services.webhooks import (
    DeliveryFailed,
    create_endpoint,
    deliver,
    emit,
    give_up,
    remove_endpoint,
)

TENANT = "tenant-a"
# What a receiver does with a request: (status, extra headers, body), or None to hang up.
Answer = Callable[["Seen"], tuple[int, dict[str, str], bytes]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threaded HTTP server that records requests and answers with ``answer``."""

    server: ThreadingHTTPServer
    scheme: str = "http"
    seen: list[Seen] = field(default_factory=list)
    answer: Answer = lambda _seen: (204, {}, b"")
    server_names: list[str | None] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def answer_with(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.answer = lambda _seen: (status, headers or {}, b"")


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self._record(self.rfile.read(length))

        def do_GET(self) -> None:
            self._record(b"")

        def _record(self, body: bytes) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = Seen(self.command, self.path, headers, body)
            receiver.seen.append(seen)
            status, headers, reply = receiver.answer(seen)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    hook = Receiver(server)
    server.RequestHandlerClass = handler_for(hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield hook
    hook.released.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    # Generous: a busy CI machine once took 2.4 s to answer on 127.0.0.1. The tests of the
    # deadline itself set their own short timeout.
    return settings.model_copy(
        update={"webhook_allow_internal": True, "webhook_timeout_seconds": 15.0}
    )


def add_endpoint(db: Database, url: str) -> tuple[str, str]:
    record, secret = create_endpoint(db, tenant=TENANT, url=url, events=None, allow_internal=True)
    return record.id, secret


def new_event(db: Database, type_: EventType = EventType.FILE_CLEAN) -> str:
    subject = new_id()
    with db.session() as session:
        emit(session, tenant=TENANT, type_=type_, subject=subject, data={"file_id": subject})
        [event] = WebhookEvents(session).for_subject(subject)
    return event.id


def event_of(db: Database, event_id: str) -> WebhookEventRecord:
    with db.session() as session:
        event = WebhookEvents(session).get(event_id)
    assert event is not None
    return event


def last_error(db: Database, event_id: str) -> str | None:
    with db.session() as session:
        row = session.get(WebhookEventRow, event_id)
        assert row is not None
        return row.last_error


def failure(db: Database, settings: Settings, event_id: str) -> str:
    with pytest.raises(DeliveryFailed) as caught:
        deliver(db, settings, event_id)
    return caught.value.reason


def test_a_delivery_is_signed_per_standard_webhooks(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    _, secret = add_endpoint(db, receiver.url())
    event_id = new_event(db)

    assert deliver(db, hook_settings, event_id) == "delivered"

    [seen] = receiver.seen
    assert (seen.method, seen.path) == ("POST", "/hook")
    payload = Webhook(secret).verify(seen.body, seen.headers)
    assert payload["type"] == "file.clean"
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["data"]["file_id"]
    assert seen.headers["webhook-id"] == event_id
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 60
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == f"filegate/{__version__}"
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}"
    event = event_of(db, event_id)
    assert (event.state, event.attempts, event.last_status) == ("delivered", 1, 204)
    assert event.delivered_at is not None


def test_a_tampered_delivery_does_not_verify(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    _, secret = add_endpoint(db, receiver.url())
    deliver(db, hook_settings, new_event(db))
    [seen] = receiver.seen

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(webhooks.new_secret()).verify(seen.body, seen.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(seen.body.replace(b"clean", b"dirty"), seen.headers)


def test_a_500_fails_and_the_retry_carries_the_same_webhook_id(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    _, secret = add_endpoint(db, receiver.url())
    event_id = new_event(db)
    receiver.answer_with(500)

    assert failure(db, hook_settings, event_id) == "http_500"
    event = event_of(db, event_id)
    assert (event.state, event.attempts, event.last_status) == ("pending", 1, 500)
    assert last_error(db, event_id) == "http_500"

    receiver.answer_with(200)
    assert deliver(db, hook_settings, event_id) == "delivered"

    first, second = receiver.seen
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    assert first.body == second.body
    for seen in (first, second):
        Webhook(secret).verify(seen.body, seen.headers)
    event = event_of(db, event_id)
    assert (event.state, event.attempts, event.last_status) == ("delivered", 2, 200)


def test_a_delivered_event_is_not_sent_again(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)
    assert deliver(db, hook_settings, event_id) == "delivered"

    assert deliver(db, hook_settings, event_id) == "already_delivered"

    assert len(receiver.seen) == 1
    assert event_of(db, event_id).attempts == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)
    receiver.answer_with(302, {"Location": receiver.url(path="/elsewhere")})

    assert failure(db, hook_settings, event_id) == "http_302"

    assert [s.path for s in receiver.seen] == ["/hook"]
    assert event_of(db, event_id).state == "pending"


@pytest.mark.parametrize("status", [301, 307, 400, 404, 410, 503])
def test_only_2xx_is_a_delivery(
    db: Database, hook_settings: Settings, receiver: Receiver, status: int
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)
    receiver.answer_with(status, {"Location": receiver.url(path="/elsewhere")})

    assert failure(db, hook_settings, event_id) == f"http_{status}"

    assert event_of(db, event_id).state == "pending"
    assert [s.path for s in receiver.seen] == ["/hook"]


def test_a_target_that_became_internal_is_refused_at_delivery(
    db: Database, settings: Settings, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)
    strict = hook_settings.model_copy(update={"webhook_allow_internal": False})

    reason = failure(db, strict, event_id)

    assert reason.startswith("target_refused: 127.0.0.1 is not a public address")
    assert receiver.seen == []
    assert event_of(db, event_id).attempts == 1
    assert last_error(db, event_id) == reason


def test_a_name_rebound_to_an_internal_address_is_refused(
    db: Database, hook_settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"hooks.example": "93.184.215.14"}
    monkeypatch.setattr(
        targets, "_resolve", lambda host, _port: (ipaddress.ip_address(answers[host]),)
    )
    record, _ = create_endpoint(
        db, tenant=TENANT, url=receiver.url("hooks.example"), events=None, allow_internal=False
    )
    event_id = new_event(db)
    answers["hooks.example"] = "127.0.0.1"
    strict = hook_settings.model_copy(update={"webhook_allow_internal": False})

    assert failure(db, strict, event_id).startswith(
        "target_refused: hooks.example resolves to 127.0.0.1"
    )
    assert receiver.seen == []
    assert record.url == receiver.url("hooks.example")


def test_the_connection_goes_to_the_vetted_address_with_the_original_host(
    db: Database, hook_settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name exists only in this fake resolver: had the client looked it up again, the
    # request could not have been sent. 127.0.0.2 listens nowhere, so 127.0.0.1 is tried next.
    lookups: list[str] = []

    def resolve(host: str, _port: int) -> tuple[ipaddress.IPv4Address, ...]:
        lookups.append(host)
        return (ipaddress.IPv4Address("127.0.0.2"), ipaddress.IPv4Address("127.0.0.1"))

    monkeypatch.setattr(targets, "_resolve", resolve)
    add_endpoint(db, receiver.url("rebind.example"))
    lookups.clear()

    assert deliver(db, hook_settings, new_event(db)) == "delivered"

    assert lookups == ["rebind.example"]
    [seen] = receiver.seen
    assert seen.headers["host"] == f"rebind.example:{receiver.port}"


def test_a_slow_receiver_times_out(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)

    def stall(_seen: Seen) -> tuple[int, dict[str, str], bytes]:
        receiver.released.wait(10)
        return 200, {}, b""

    receiver.answer = stall
    quick = hook_settings.model_copy(update={"webhook_timeout_seconds": 0.5})

    started = time.monotonic()
    assert failure(db, quick, event_id) == "timeout"
    assert time.monotonic() - started < 5
    assert event_of(db, event_id).state == "pending"


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)
    original = receiver.server.RequestHandlerClass

    class Drip(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            # Each byte arrives well within the read timeout; only a deadline stops this.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            try:
                while not receiver.released.wait(0.05):
                    self.wfile.write(b"a")
            except OSError:
                return

        def log_message(self, format: str, *args: object) -> None:
            return None

    receiver.server.RequestHandlerClass = Drip
    quick = hook_settings.model_copy(update={"webhook_timeout_seconds": 0.5})

    started = time.monotonic()
    assert failure(db, quick, event_id) == "timeout"
    assert time.monotonic() - started < 3
    receiver.server.RequestHandlerClass = original


def test_a_large_answer_is_not_read_to_the_end(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    receiver.answer = lambda _seen: (200, {}, b"x" * (8 * 1024 * 1024))

    assert deliver(db, hook_settings, new_event(db)) == "delivered"


def test_nothing_listening_is_a_connect_error(db: Database, hook_settings: Settings) -> None:
    # Bound but not listening: the port stays ours, and connecting to it is refused.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        add_endpoint(db, f"http://127.0.0.1:{placeholder.getsockname()[1]}/hook")

        assert failure(db, hook_settings, new_event(db)).startswith("connect_error")


def test_an_event_of_a_removed_endpoint_is_given_up(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    endpoint_id, _ = add_endpoint(db, receiver.url())
    event_id = new_event(db)
    assert remove_endpoint(db, endpoint_id, TENANT)

    assert deliver(db, hook_settings, event_id) == "endpoint_removed"

    assert event_of(db, event_id).state == "failed"
    assert receiver.seen == []


def test_giving_up_stops_deliveries(
    db: Database, hook_settings: Settings, receiver: Receiver
) -> None:
    add_endpoint(db, receiver.url())
    event_id = new_event(db)
    receiver.answer_with(500)
    failure(db, hook_settings, event_id)

    give_up(db, event_id)
    give_up(db, event_id)

    assert event_of(db, event_id).state == "failed"
    assert deliver(db, hook_settings, event_id) == "given_up"
    assert len(receiver.seen) == 1


def test_each_attempt_is_logged(
    db: Database, hook_settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id, _ = add_endpoint(db, receiver.url())
    event_id = new_event(db)
    receiver.answer_with(500)

    with structlog.testing.capture_logs() as logs:
        monkeypatch.setattr(webhooks, "log", structlog.get_logger())
        failure(db, hook_settings, event_id)
        receiver.answer_with(202)
        deliver(db, hook_settings, event_id)

    attempts = [entry for entry in logs if entry["event"] == "webhook.delivery"]
    assert [(a["attempt"], a["status"], a["outcome"]) for a in attempts] == [
        (1, 500, "http_5xx"),
        (2, 202, "delivered"),
    ]
    for entry in attempts:
        assert entry["event_id"] == event_id
        assert entry["endpoint_id"] == endpoint_id
        assert entry["tenant"] == TENANT
        assert entry["type"] == "file.clean"
        assert isinstance(entry["duration_ms"], int)
        assert "url" not in entry, "URLs may carry the receiver's own tokens"


def test_an_unknown_event_is_reported_not_retried(db: Database, hook_settings: Settings) -> None:
    assert deliver(db, hook_settings, new_id()) == "event_missing"


# HTTPS: the connection is pinned to an address, but TLS must still verify the real name.


@dataclass
class Certificates:
    ca_pem: bytes
    chain: Path
    key: Path


def make_certificates(directory: Path, name: str) -> Certificates:
    """A throwaway CA and a server certificate for ``name``, signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "filegate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificates(ca.public_bytes(serialization.Encoding.PEM), chain, key_path)


@pytest.fixture
def tls_receiver(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Receiver]:
    """Turn ``receiver`` into HTTPS with a certificate for the given name, trusted by us."""

    def serve_as(cert_name: str) -> Receiver:
        certs = make_certificates(tmp_path, cert_name)
        server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_side.load_cert_chain(certs.chain, certs.key)
        server_side.sni_callback = lambda _sock, sni, _ctx: receiver.server_names.append(sni)
        receiver.server.socket = server_side.wrap_socket(receiver.server.socket, server_side=True)
        receiver.scheme = "https"
        client_side = ssl.create_default_context(cadata=certs.ca_pem.decode())
        monkeypatch.setattr(webhooks, "_tls_context", lambda: client_side)
        monkeypatch.setattr(
            targets, "_resolve", lambda _host, _port: (ipaddress.IPv4Address("127.0.0.1"),)
        )
        return receiver

    return serve_as


def test_https_is_pinned_and_still_verifies_the_name(
    db: Database, hook_settings: Settings, tls_receiver: Callable[[str], Receiver]
) -> None:
    receiver = tls_receiver("hooks.example")
    _, secret = add_endpoint(db, receiver.url("hooks.example"))

    assert deliver(db, hook_settings, new_event(db)) == "delivered"

    [seen] = receiver.seen
    assert receiver.server_names == ["hooks.example"]
    assert seen.headers["host"] == f"hooks.example:{receiver.port}"
    Webhook(secret).verify(seen.body, seen.headers)


def test_https_with_a_certificate_for_another_name_fails(
    db: Database, hook_settings: Settings, tls_receiver: Callable[[str], Receiver]
) -> None:
    receiver = tls_receiver("someone-else.example")
    add_endpoint(db, receiver.url("hooks.example"))

    reason = failure(db, hook_settings, new_event(db))

    assert reason.startswith("connect_error"), reason
    assert "CERTIFICATE_VERIFY_FAILED" in reason or "certificate" in reason.lower()
    assert receiver.seen == []
