"""Commands that run filegate: serve, worker, migrate, check-config."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from filegate import __version__
from filegate.cli.command import (
    action_code_problems_of,
    app,
    database_or_exit,
    settings_or_exit,
    state,
)
from filegate.cli.runtime import announce_scanner, build_runtime, expose_metrics, sweep_temp
from filegate.config import load_settings
from filegate.db import migrate as migrations
from filegate.errors import FilegateError


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Bind address (setting: host).")
    ] = None,
    port: Annotated[int | None, typer.Option(metavar="PORT", help="Port (setting: port).")] = None,
    embedded_worker: Annotated[
        bool | None,
        typer.Option(
            "--embedded-worker/--no-embedded-worker",
            help="Run inspections inside this process (setting: embedded_worker).",
        ),
    ] = None,
) -> None:
    """Start the HTTP API."""
    import uvicorn

    from filegate.web.app import create_app
    from filegate.web.protocol import bounded_protocol

    settings = settings_or_exit(check_codes=True, service=True)
    database_or_exit(settings).dispose()
    runtime, worker = build_runtime(settings)
    sweep_temp(runtime)
    expose_metrics(settings, db=runtime.db)
    embedded = settings.embedded_worker if embedded_worker is None else embedded_worker
    bind_host, bind_port = host or settings.host, port or settings.port
    announce_scanner(runtime)
    application = create_app(runtime, worker if embedded else None)
    typer.echo(
        f"filegate {__version__} on http://{bind_host}:{bind_port} "
        f"(worker: {'embedded' if embedded else 'separate'}); an API key: "
        ".venv/bin/filegate keys create --tenant demo --scopes upload,read",
        err=True,
    )
    uvicorn.run(
        application,
        host=bind_host,
        port=bind_port,
        loop="uvloop",
        http=bounded_protocol(settings.request_head_timeout),
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker() -> None:
    """Run background jobs (inspections, promotions, webhooks, schedules) in this process."""
    settings = settings_or_exit(check_codes=True, service=True)
    database_or_exit(settings).dispose()
    runtime, job_worker = build_runtime(settings)
    sweep_temp(runtime)
    announce_scanner(runtime)
    expose_metrics(settings, port=settings.worker_metrics_port)
    job_worker.run_forever()


@app.command()
def migrate(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only problems (`make run` uses it).")
    ] = False,
) -> None:
    """Bring the database schema up to date.

    Example: filegate migrate   (then: filegate serve)
    """
    settings = settings_or_exit()
    if not quiet:
        logging.getLogger("alembic").setLevel(logging.INFO)
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.resolved_database_url)
    if not quiet:
        typer.echo("database is up to date", err=True)


@app.command("check-config")
def check_config() -> None:
    """Validate the configuration; print every problem with its location, exit 1 on any."""
    try:
        problems = action_code_problems_of(load_settings(state.config))
    except FilegateError as exc:
        problems = exc.extra.get("problems", [])  # type: ignore[assignment]
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    typer.echo("configuration is valid")
