"""The raw baseline: a minimal server that streams each request body to disk and fsyncs it.

It runs on the same stack as filegate (uvicorn, httptools, uvloop) and does nothing else: no
hashing, no database, no inspection, no checks beyond the offset. What it reaches is the
practical ceiling for a *durable* upload on this machine, so filegate's ratio to it is the cost
of everything filegate adds.

It speaks just enough tus for the benchmark's one client to drive it like the real servers:
``POST /files/`` with ``Upload-Length`` answers 201 and a ``Location``; ``PATCH /files/{id}``
with a matching ``Upload-Offset`` appends the body, fsyncs, and answers 204 with the new offset.
The file's directory entry is fsynced at creation, so an acknowledged upload survives a crash.

Usage: ``python -m bench.raw_server --port PORT --dir DIRECTORY``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "/files/"
TUS = (b"tus-resumable", b"1.0.0")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [TUS, *headers]})
    await send({"type": "http.response.body", "body": b""})


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RawApp:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lengths: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS":
            await _answer(send, 204, [])
        elif method == "POST" and path.rstrip("/") == PREFIX.rstrip("/"):
            await self.create(scope, send)
        elif method == "PATCH" and path.startswith(PREFIX):
            await self.patch(path[len(PREFIX) :], scope, receive, send)
        else:
            await _answer(send, 404, [])

    async def create(self, scope: Scope, send: Send) -> None:
        length = _header(scope, b"upload-length")
        if length is None or not length.isdigit():
            await _answer(send, 400, [])
            return
        upload_id = uuid.uuid4().hex
        (self.directory / upload_id).touch(0o600)
        await asyncio.to_thread(_fsync_dir, self.directory)
        self.lengths[upload_id] = int(length)
        location = (PREFIX + upload_id).encode()
        await _answer(send, 201, [(b"location", location), (b"content-length", b"0")])

    async def patch(self, upload_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        offset = _header(scope, b"upload-offset")
        length = self.lengths.get(upload_id)
        if length is None or offset is None or not offset.isdigit():
            await _answer(send, 404 if length is None else 400, [])
            return
        fd = os.open(self.directory / upload_id, os.O_WRONLY | os.O_APPEND)
        try:
            if os.fstat(fd).st_size != int(offset):
                await _answer(send, 409, [])
                return
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                _write_all(fd, message.get("body", b""))
                if not message.get("more_body", False):
                    break
            await asyncio.to_thread(os.fsync, fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        await _answer(send, 204, [(b"upload-offset", str(size).encode())])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        RawApp(args.dir.resolve()),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
