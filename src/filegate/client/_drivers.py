"""Run the protocol core's steps over httpx: once blocking, once with asyncio.

Both drivers do the same four things and nothing else: send a request, stream a response into
a sink, sleep, and run a blocking call. Every decision (retry, resync, verify) is the core's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import httpx

from filegate.client._effects import (
    Blocking,
    Effect,
    Failure,
    Reply,
    Request,
    Send,
    Sleep,
    Steps,
    Stream,
)

T = TypeVar("T")
# Small enough for a smooth progress bar, large enough to cost nothing per slice.
SLICE = 256 * 1024
STREAM_CHUNK = 1024 * 1024
# An error answer's body is a problem document: a few hundred bytes, never megabytes.
MAX_ERROR_BODY = 64 * 1024
# What "no answer" looks like; anything else from httpx is a bug here, not the network's.
TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def run(http: httpx.Client, steps: Steps[T]) -> T:
    """Drive ``steps`` to its result with blocking I/O."""
    answer: object = None
    error: Exception | None = None
    try:
        while True:
            try:
                effect = steps.throw(error) if error is not None else steps.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            answer, error = None, None
            try:
                answer = _perform(http, effect)
            except Exception as exc:  # raised inside the core, where it asked for the call
                error = exc
    finally:
        steps.close()


async def run_async(http: httpx.AsyncClient, steps: Steps[T]) -> T:
    """Drive ``steps`` to its result on the running event loop."""
    answer: object = None
    error: Exception | None = None
    try:
        while True:
            try:
                effect = steps.throw(error) if error is not None else steps.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            answer, error = None, None
            try:
                answer = await _perform_async(http, effect)
            except Exception as exc:  # raised inside the core, where it asked for the call
                error = exc
    finally:
        steps.close()


def _perform(http: httpx.Client, effect: Effect) -> object:
    if isinstance(effect, Send):
        return _send(http, effect.request)
    if isinstance(effect, Stream):
        return _stream(http, effect)
    if isinstance(effect, Sleep):
        time.sleep(effect.seconds)
        return None
    assert isinstance(effect, Blocking)
    return effect.call()


async def _perform_async(http: httpx.AsyncClient, effect: Effect) -> object:
    if isinstance(effect, Send):
        return await _send_async(http, effect.request)
    if isinstance(effect, Stream):
        return await _stream_async(http, effect)
    if isinstance(effect, Sleep):
        await asyncio.sleep(effect.seconds)
        return None
    assert isinstance(effect, Blocking)
    return await asyncio.to_thread(effect.call)


def _slices(request: Request) -> Iterator[bytes]:
    body = memoryview(request.body or b"")
    for start in range(0, len(body), SLICE):
        piece = body[start : start + SLICE]
        yield bytes(piece)
        if request.on_sent is not None:
            request.on_sent(len(piece))


async def _aslices(request: Request) -> AsyncIterator[bytes]:
    for piece in _slices(request):
        yield piece


def _headers(request: Request) -> dict[str, str]:
    headers = dict(request.headers)
    if request.on_sent is not None:  # a streamed body: say its length, do not chunk it
        headers["Content-Length"] = str(len(request.body or b""))
    return headers


def _reply(response: httpx.Response, body: bytes) -> Reply:
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Reply(response.status_code, headers, body)


def _send(http: httpx.Client, request: Request) -> Reply | Failure:
    content = _slices(request) if request.on_sent is not None else request.body
    try:
        response = http.request(
            request.method, request.url, headers=_headers(request), content=content
        )
    except TRANSIENT as exc:
        return Failure(exc)
    return _reply(response, response.content)


async def _send_async(http: httpx.AsyncClient, request: Request) -> Reply | Failure:
    content = _aslices(request) if request.on_sent is not None else request.body
    try:
        response = await http.request(
            request.method, request.url, headers=_headers(request), content=content
        )
    except TRANSIENT as exc:
        return Failure(exc)
    return _reply(response, response.content)


def _stream(http: httpx.Client, effect: Stream) -> Reply | Failure:
    request = effect.request
    try:
        with http.stream(
            request.method, request.url, headers=_headers(request), follow_redirects=True
        ) as response:
            if not response.is_success:
                return _reply(response, _bounded(response.iter_bytes()))
            effect.sink.begin(head := _reply(response, b""))
            for chunk in response.iter_bytes(STREAM_CHUNK):
                effect.sink.write(chunk)
            return head
    except TRANSIENT as exc:
        return Failure(exc)


async def _stream_async(http: httpx.AsyncClient, effect: Stream) -> Reply | Failure:
    request = effect.request
    try:
        async with http.stream(
            request.method, request.url, headers=_headers(request), follow_redirects=True
        ) as response:
            if not response.is_success:
                return _reply(response, await _abounded(response.aiter_bytes()))
            head = _reply(response, b"")
            await asyncio.to_thread(effect.sink.begin, head)
            async for chunk in response.aiter_bytes(STREAM_CHUNK):
                await asyncio.to_thread(effect.sink.write, chunk)
            return head
    except TRANSIENT as exc:
        return Failure(exc)


def _bounded(chunks: Iterator[bytes]) -> bytes:
    body = b""
    for chunk in chunks:
        body += chunk
        if len(body) >= MAX_ERROR_BODY:
            break
    return body[:MAX_ERROR_BODY]


async def _abounded(chunks: AsyncIterator[bytes]) -> bytes:
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) >= MAX_ERROR_BODY:
            break
    return body[:MAX_ERROR_BODY]
