"""Crash points, so tests can kill a worker at an exact line instead of hoping to hit it.

``FILEGATE_FAILPOINT=promote.before_state`` makes the process SIGKILL itself when it reaches
``failpoint("promote.before_state")``: the same as ``kill -9`` from outside, at a known place.
Unset (always, in production) it costs one environment lookup.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("FILEGATE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
