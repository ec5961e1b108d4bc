"""Requests with retries, and errors from answers: the part every call shares."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from filegate.client._effects import Failure, Reply, Request, Steps, send, sleep
from filegate.client.errors import ApiError, RetriesExhausted
from filegate.client.retry import RetryPolicy, parse_retry_after, retryable


@dataclass(frozen=True, slots=True)
class Session:
    """Where requests go and how failures are retried; the token lives in the transport."""

    base_url: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


class Attempts:
    """Failures in a row of one operation; progress (a byte accepted) starts the count again."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.in_a_row = 0
        self.total = 0

    def succeeded(self) -> None:
        self.in_a_row = 0

    def failed(self, request: Request, answer: Reply | Failure) -> float:
        """Record a transient failure; the delay before the next try, or raise if out of tries."""
        self.in_a_row += 1
        self.total += 1
        last = answer.error if isinstance(answer, Failure) else api_error(request, answer)
        if self.in_a_row >= self.policy.attempts:
            raise RetriesExhausted(self.what, self.in_a_row, last) from last
        retry_after = None
        if isinstance(answer, Reply):
            retry_after = parse_retry_after(answer.header("retry-after"))
        return self.policy.delay(self.in_a_row, retry_after)


def api_error(request: Request, reply: Reply) -> ApiError:
    """The server's problem document (RFC 9457) as an exception; a bare body if it sent none."""
    problem: Mapping[str, Any]
    try:
        parsed = reply.json()
        problem = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        problem = {}
    if not problem:
        problem = {"status": reply.status, "detail": reply.body[:500].decode(errors="replace")}
    return ApiError(request.method, request.url, reply.status, problem)


def transient(answer: Reply | Failure) -> bool:
    return isinstance(answer, Failure) or retryable(answer.status)


def call(
    session: Session,
    request: Request,
    ok: Collection[int] = (200,),
    attempts: Attempts | None = None,
) -> Steps[Reply]:
    """Send ``request`` until its status is in ``ok``; retry transient failures, raise the rest."""
    tries = attempts or Attempts(session.retry, f"{request.method} {request.url}")
    while True:
        answer = yield from send(request)
        if isinstance(answer, Reply) and answer.status in ok:
            return answer
        if not transient(answer):
            assert isinstance(answer, Reply)
            raise api_error(request, answer)
        yield from sleep(tries.failed(request, answer))


def json_request(method: str, url: str, body: Mapping[str, Any] | None = None) -> Request:
    if body is None:
        return Request(method, url, {"Accept": "application/json"})
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    return Request(method, url, headers, json.dumps(body).encode())
