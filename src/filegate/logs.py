"""structlog set-up: JSON lines (or a console renderer), request ids bound through contextvars.

Our own events and third-party loggers (uvicorn, alembic) all pass through one stdlib handler,
so lines from different threads never interleave.
"""

from __future__ import annotations

import logging
import sys

import structlog


def _shared(console: bool) -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # A person reads the time of day; machines get the full UTC instant.
        structlog.processors.TimeStamper(fmt="%H:%M:%S" if console else "iso", utc=not console),
    ]


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """``fmt``: ``json`` (one object per line), ``console`` (for people), or ``auto``:
    console when stderr is a terminal, JSON otherwise (a service manager, a file, a pipe)."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(console),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=_shared(console),
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Alembic narrates every connection; only `filegate migrate` wants to hear it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # pikepdf announces its logger bridge at INFO the first time a PDF is opened.
    logging.getLogger("pikepdf").setLevel(logging.WARNING)
    if console:
        # A person at a terminal has the start-up banner; uvicorn's four lines repeat it.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    # One access line per request comes from our middleware; uvicorn's would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
