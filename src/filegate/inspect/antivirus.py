"""ClamAV over clamd's INSTREAM command (clamav-client), failing closed.

Only the bytes travel to clamd; it never opens our files. When the scanner is required and
cannot answer, the verdict is ``scanner_unavailable``: the file stays quarantined and is
scanned again later, never promoted unscanned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from clamav_client.clamd import ClamdError, ClamdNetworkSocket, ClamdUnixSocket

from filegate.domain import Finding

CODES: dict[str, str] = {
    "malware_found": "ClamAV recognised the content (the signature name is in the message).",
    "scanner_unavailable": "The required virus scanner could not be reached or timed out; the "
    "file stays quarantined and is scanned again later.",
}
DEFAULT_PORT = 3310


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    url: str
    timeout: float = 30.0


def client(config: ScannerConfig) -> ClamdNetworkSocket:
    """A clamd client for ``unix:///path/clamd.sock`` or ``tcp://host:port``."""
    parts = urlsplit(config.url)
    if parts.scheme == "unix":
        # The library types this timeout as int; whole seconds are precise enough here.
        return ClamdUnixSocket(path=parts.path, timeout=int(max(1, config.timeout)))
    if parts.scheme == "tcp" and parts.hostname:
        return ClamdNetworkSocket(
            host=parts.hostname, port=parts.port or DEFAULT_PORT, timeout=config.timeout
        )
    raise ValueError("the clamd URL is unix:///path/to/clamd.sock or tcp://host:port")


def scan(path: str, config: ScannerConfig) -> tuple[Finding, ...]:
    """Scan the file at ``path``; a failure to scan is itself the finding."""
    try:
        clamd = client(config)
        with open(path, "rb") as stream, _closing(clamd):
            result = clamd.instream(stream)
    except (ClamdError, OSError, ValueError) as exc:
        return (Finding("scanner_unavailable", f"clamd did not answer: {type(exc).__name__}"),)
    status, signature = result.get("stream", ("ERROR", None))
    if status == "FOUND":
        return (Finding("malware_found", f"ClamAV found {signature}"),)
    if status != "OK":
        return (Finding("scanner_unavailable", f"clamd answered {status}: {signature}"),)
    return ()


def ping(config: ScannerConfig) -> bool:
    try:
        clamd = client(config)
        with _closing(clamd):
            return clamd.ping() == "PONG"
    except (ClamdError, OSError, ValueError):
        return False


def signatures_date(config: ScannerConfig) -> datetime | None:
    """When the loaded signature database was published, from clamd's VERSION answer
    (``ClamAV 1.0.7/27495/Tue Dec  1 09:31:03 2026``); None when clamd does not say (a
    database of local signatures only) or does not answer."""
    try:
        clamd = client(config)
        with _closing(clamd):
            answer = clamd.version()
    except (ClamdError, OSError, ValueError):
        return None
    parts = str(answer).split("/")
    if len(parts) < 3:
        return None
    try:
        published = datetime.strptime(" ".join(parts[2].split()), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return published.replace(tzinfo=UTC)


@contextmanager
def _closing(clamd: ClamdNetworkSocket) -> Iterator[None]:
    # The library leaves its socket open when connect() fails.
    try:
        yield
    finally:
        sock = getattr(clamd, "clamd_socket", None)
        if sock is not None:
            sock.close()
