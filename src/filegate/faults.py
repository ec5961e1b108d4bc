"""Injected faults, so tests can break a process at a known place instead of hoping to.

``FILEGATE_FAILPOINT=promote.before_state`` makes the process SIGKILL itself when it reaches
``failpoint("promote.before_state")``: the same as ``kill -9`` from outside, at a known place.

``FILEGATE_FAULTS="upload.error=0.3,inspect.delay=2"`` makes a share of direct uploads fail
with a 500 and every inspection take two seconds longer: a bad release, for the tests that
prove the status page notices one. Unset (always, in production) each costs one environment
lookup.
"""

from __future__ import annotations

import os
import random
import signal
import time

from filegate.errors import ErrorCode, FilegateError


def failpoint(name: str) -> None:
    if os.environ.get("FILEGATE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def maybe_fail(name: str) -> None:
    """Fail with a 500 (``internal_error``) with the probability ``FILEGATE_FAULTS`` gives
    ``name``. A FilegateError rather than a bare exception: Starlette answers a bare one and
    then drops the connection, which would make the fault look like a network failure."""
    share = _fault(name)
    if share and random.random() < share:  # noqa: S311 (a test's dice, not a secret)
        raise FilegateError(ErrorCode.INTERNAL_ERROR, f"Injected fault {name}.")


def maybe_delay(name: str) -> None:
    """Sleep the seconds ``FILEGATE_FAULTS`` gives ``name``."""
    seconds = _fault(name)
    if seconds:
        time.sleep(seconds)


def _fault(name: str) -> float:
    spec = os.environ.get("FILEGATE_FAULTS")
    if not spec:
        return 0.0
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key.strip() == name:
            try:
                return max(float(value), 0.0)
            except ValueError:
                return 0.0
    return 0.0
