"""Which release this process runs: the version plus the git commit it was built from.

``FILEGATE_RELEASE`` (the ``release`` setting) wins, for packagers whose images carry no git
history; without it and without git, the version alone.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from filegate import __version__


def current_release(configured: str = "") -> str:
    if configured:
        return configured
    commit = _git_commit()
    return f"{__version__}+{commit}" if commit else __version__


@functools.cache
def _git_commit() -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        result = subprocess.run(  # noqa: S603 (a fixed command, no outside input)
            [git, "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
