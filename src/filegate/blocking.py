"""Blocking work (the database, the storage) off the event loop, on the loop's thread pool.

``run_blocking(func, *args)`` is what starlette's ``run_in_threadpool`` is, with the same
promises: the caller's context variables (the request id in log lines) go with the call, at
most ``BLOCKING_THREADS`` calls run at once (the pool is the bound, web/app.py), and a
cancelled caller still waits until the thread is done before it sees the cancellation, so
nothing a request started outlives it unseen.

It is cheaper per call: anyio's worker threads wait on a ``queue.Queue`` (a Python
``Condition``) and pass through a capacity limiter and cancel scope; the loop's
``ThreadPoolExecutor`` waits on a C ``SimpleQueue``. A small upload makes four such calls,
and on two cores shared with the clients the hand-overs were a fifth of the API process's CPU
(docs/benchmarks.md, docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in the loop's thread pool, with this task's context."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    future = loop.run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await _until_done(future)
        raise


async def _until_done(future: asyncio.Future[Any]) -> None:
    """Wait for a thread whose caller was cancelled: more cancellations don't cut it short,
    and its outcome is dropped (the caller's answer is the cancellation)."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            continue
        except BaseException:
            break
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as never retrieved
