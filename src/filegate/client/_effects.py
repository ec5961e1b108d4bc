"""The effects the protocol core asks a driver to perform: the client's only I/O seam.

The core (``_calls``, ``_tus``, ``_download``) is written as generators that yield these
effects and receive their results, so one implementation of the protocol serves both the
blocking driver (``Client``) and the asyncio one (``AsyncClient``), as h11 and wsproto do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request; ``on_sent(n)`` is told each time ``n`` more body bytes have left."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    on_sent: Callable[[int], None] | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer; header names are lower case. A streamed 2xx body went to the sink."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Failure:
    """No answer came: the connection failed, was cut, or timed out."""

    error: Exception


class Sink(Protocol):
    """Where a streamed 2xx body goes; the driver calls ``begin`` once, then ``write``."""

    def begin(self, reply: Reply) -> None: ...

    def write(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Send:
    request: Request


@dataclass(frozen=True, slots=True)
class Stream:
    request: Request
    sink: Sink


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Blocking:
    """A call that blocks (file reads, hashing, fsync): the asyncio driver runs it in a thread."""

    call: Callable[[], object]


Effect = Send | Stream | Sleep | Blocking
Steps = Generator[Effect, object, T]


def send(request: Request) -> Steps[Reply | Failure]:
    answer = yield Send(request)
    assert isinstance(answer, Reply | Failure)
    return answer


def stream(request: Request, sink: Sink) -> Steps[Reply | Failure]:
    answer = yield Stream(request, sink)
    assert isinstance(answer, Reply | Failure)
    return answer


def sleep(seconds: float) -> Steps[None]:
    yield Sleep(seconds)


def blocking(call: Callable[[], T]) -> Steps[T]:
    return cast(T, (yield Blocking(call)))
