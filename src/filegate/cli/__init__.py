"""The command line, and the composition root (``runtime.build_runtime``): the only place that
wires the pieces together. Each command module registers its commands on ``command.app``."""

from __future__ import annotations

# Registration order is the order `filegate --help` lists: running it first, files, operators.
from filegate.cli import server  # isort: skip
from filegate.cli import offline  # isort: skip
from filegate.cli import upload  # isort: skip
from filegate.cli import admin  # isort: skip
from filegate.cli import db  # isort: skip
from filegate.cli.command import app, main
from filegate.cli.runtime import build_runtime

__all__ = ["admin", "app", "build_runtime", "db", "main", "offline", "server", "upload"]
