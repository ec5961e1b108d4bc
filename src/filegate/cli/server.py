"""Commands that run filegate: serve, worker, migrate, check-config, verify."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from filegate import __version__
from filegate.cli.command import (
    app,
    database_or_exit,
    settings_or_exit,
    settings_problems_of,
    state,
)
from filegate.cli.runtime import (
    announce_scanner,
    build_runtime,
    expose_metrics,
    make_storage,
    sweep_temp,
)
from filegate.config import Settings, load_settings
from filegate.db import migrate as migrations
from filegate.errors import FilegateError
from filegate.release import current_release
from filegate.signals import SignalWriter


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
    writer = SignalWriter(runtime.db, current_release(settings.release), "worker")
    writer.start()
    try:
        job_worker.run_forever()
    finally:
        writer.stop()


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
def check_config(
    check_services: Annotated[
        bool,
        typer.Option(
            "--check-services",
            help="Also reach the database and the storage the settings name (the storage "
            "takes a small write and delete, as an upload would).",
        ),
    ] = False,
) -> None:
    """Validate the configuration; print every problem with its location, exit 1 on any."""
    try:
        settings = load_settings(state.config)
        problems: list[object] = list(settings_problems_of(settings))
    except FilegateError as exc:
        problems = exc.extra.get("problems", [])  # type: ignore[assignment]
    else:
        if check_services and not problems:
            problems = service_problems(settings)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    typer.echo("configuration is valid")


@app.command()
def verify(
    max_signature_age_days: Annotated[
        float,
        typer.Option(metavar="DAYS", help="Fail when clamd's signatures are older than this."),
    ] = 3.0,
    allow_local_signatures: Annotated[
        bool,
        typer.Option(
            "--allow-local-signatures",
            help="Accept a clamd with local signatures only (a test stack without freshclam).",
        ),
    ] = False,
) -> None:
    """Check this configuration against the services it names, as a multi-process deployment
    needs them: PostgreSQL at the newest migration, Redis, a required and current clamd, a
    bucket writable with the credentials and closed without, public_url answering through
    the proxy, no example secrets. One line per check; exit 1 on any failure.

    Example: filegate --config deploy/filegate.staging.toml verify
    """
    from filegate.services.verify import Limits
    from filegate.services.verify import verify as run_checks

    try:
        settings = load_settings(state.config)
        problems = [str(p) for p in settings_problems_of(settings)]
    except FilegateError as exc:
        problems = [str(p) for p in exc.extra.get("problems", [exc.message])]  # type: ignore[attr-defined]
    typer.echo(f"{'FAIL' if problems else 'ok  '} config: " + ("; ".join(problems) or "valid"))
    if problems:
        raise typer.Exit(1)
    limits = Limits(max_signature_age_days, allow_local_signatures)
    findings = run_checks(settings, make_storage, limits)
    for finding in findings:
        typer.echo(str(finding))
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


def service_problems(settings: Settings) -> list[object]:
    """What the services the settings name answered, as problems (empty: all reachable)."""
    from filegate.db.engine import Database

    problems: list[object] = []
    database = Database(settings.resolved_database_url)
    try:
        database.ping()
    except Exception as exc:
        problems.append(f"database_url: cannot reach the database ({type(exc).__name__})")
    finally:
        database.dispose()
    where = "storage_url" if settings.storage_url else "storage_dir"
    try:
        make_storage(settings).check()
    except FilegateError as exc:
        reason = exc.extra.get("reason")
        problems.append(f"{where}: {exc.message}" + (f" ({reason})" if reason else ""))
    return problems
