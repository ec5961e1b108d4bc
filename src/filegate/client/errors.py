"""What the client raises: every exception is a ``ClientError``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filegate.client.models import File


class ClientError(Exception):
    """Base of every error the filegate client raises."""


class ApiError(ClientError):
    """The server refused the request; retrying the same request will not help.

    ``code`` is filegate's stable error code (``filegate.errors.ErrorCode``: compare with
    ``==``, it is a ``str``), ``problem`` the whole RFC 9457 problem document.

    >>> try:
    ...     client.upload("huge.iso", profile="images")
    ... except ApiError as exc:
    ...     if exc.code == "file_too_large":
    ...         print(exc.detail)
    """

    def __init__(self, method: str, url: str, status: int, problem: Mapping[str, Any]) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.problem = dict(problem)
        self.code = str(problem.get("code") or f"http_{status}")
        self.detail = str(problem.get("detail") or problem.get("title") or "")
        super().__init__(f"{method} {url}: {status} {self.code}: {self.detail}")


class RetriesExhausted(ClientError):
    """Transient failures (network, 423, 429, 5xx) went on for longer than the retry policy
    allows; ``last`` is the final one (an ``ApiError`` or the network exception)."""

    def __init__(self, what: str, attempts: int, last: Exception) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(f"{what}: gave up after {attempts} attempts; last: {last}")


class UploadGone(ClientError):
    """The resumable upload disappeared mid-way (expired or terminated on the server)."""


class VerdictTimeout(ClientError, TimeoutError):
    """No verdict within the time asked for; ``file`` is the last record seen."""

    def __init__(self, file: File, timeout: float) -> None:
        self.file = file
        super().__init__(f"file {file.id} is still {file.state} after {timeout:g}s")


class IntegrityError(ClientError):
    """Bytes arrived that do not match what the server says they are (digest or length)."""


class ProtocolViolation(ClientError):
    """The server answered something tus or the filegate API does not allow."""
