"""The command line, and the composition root: the only place that wires the pieces together."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import structlog
import typer
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from filegate import __version__
from filegate.config import Settings, load_settings
from filegate.db import migrate as migrations
from filegate.db.engine import Database
from filegate.domain import InspectionPolicy
from filegate.errors import FilegateError
from filegate.inspect.pipeline import inspect_file
from filegate.inspect.sandbox import Sandbox, SandboxLimits
from filegate.jobs.worker import InspectionWorker
from filegate.logs import configure_logging
from filegate.services import keys as key_service
from filegate.services.inspection import Inspector, RunJob
from filegate.services.runtime import Runtime, scanner_config
from filegate.storage.local import LocalStorage
from filegate.web.app import create_app

log = structlog.get_logger("filegate.cli")

app = typer.Typer(
    name="filegate",
    help="A hardened file-upload gateway: quarantine, inspect, promote, serve.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (default: $FILEGATE_CONFIG or ./filegate.toml)."
    ),
]


class _State:
    config: Path | None = None


_state = _State()


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _main(
    config: ConfigOption = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    _state.config = config


def _settings() -> Settings:
    try:
        settings = load_settings(_state.config)
    except FilegateError as exc:
        for problem in exc.extra.get("problems", []):  # type: ignore[attr-defined]
            typer.echo(f"config error: {problem}", err=True)
        raise typer.Exit(1) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _database(settings: Settings) -> Database:
    """The database, refusing to go on with a schema that `filegate migrate` has not updated."""
    url = settings.resolved_database_url
    try:
        current = migrations.is_current(url)
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot reach the database: {exc.__class__.__name__}", err=True)
        raise typer.Exit(1) from None
    if not current:
        typer.echo("error: the database schema is not up to date; run `filegate migrate`", err=True)
        raise typer.Exit(1)
    return Database(url)


def build_runtime(
    settings: Settings, run_job: RunJob | None = None
) -> tuple[Runtime, InspectionWorker]:
    """Wire the pieces; ``run_job`` defaults to a sandboxed inspector process."""
    warm_up = None
    db = Database(settings.resolved_database_url)
    storage = LocalStorage(settings.resolved_storage_dir)
    if run_job is None:
        sandbox = Sandbox(
            SandboxLimits(
                memory_bytes=int(settings.inspection_memory_bytes),
                cpu_seconds=settings.inspection_cpu_seconds,
                wall_seconds=settings.inspection_timeout_seconds,
            )
        )
        run_job, warm_up = sandbox.run, sandbox.start
    inspector = Inspector(
        run=run_job,
        policy_for=settings.profile,
        scanner=scanner_config(settings),
        scanner_required=settings.scanner_required,
        warm_up=warm_up,
    )
    worker = InspectionWorker(db, storage, inspector, settings.worker_poll_seconds)
    return Runtime(settings=settings, db=db, storage=storage, queue=worker), worker


def _announce_scanner(runtime: Runtime) -> None:
    status = runtime.scanner_status()
    if status == "off":
        log.warning(
            "scanner.off",
            detail="No clamd_url is set: files are promoted WITHOUT a virus scan. "
            "Set FILEGATE_CLAMD_URL (and FILEGATE_SCANNER_REQUIRED=true) in production.",
        )
    elif status == "failing":
        log.error("scanner.unreachable", required=runtime.settings.scanner_required)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (setting: host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (setting: port).")] = None,
    embedded_worker: Annotated[
        bool | None,
        typer.Option(
            "--embedded-worker/--no-embedded-worker",
            help="Run inspections inside this process (setting: embedded_worker).",
        ),
    ] = None,
) -> None:
    """Start the HTTP API."""
    settings = _settings()
    _database(settings).dispose()
    runtime, worker = build_runtime(settings)
    embedded = settings.embedded_worker if embedded_worker is None else embedded_worker
    bind_host, bind_port = host or settings.host, port or settings.port
    _announce_scanner(runtime)
    application = create_app(runtime, worker if embedded else None)
    typer.echo(
        f"filegate {__version__} on http://{bind_host}:{bind_port} "
        f"(worker: {'embedded' if embedded else 'separate'}).\n"
        "Create an API key with:  .venv/bin/filegate keys create --tenant demo "
        "--scopes upload,read",
        err=True,
    )
    uvicorn.run(
        application,
        host=bind_host,
        port=bind_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker() -> None:
    """Run inspections in this process (for API processes started with --no-embedded-worker)."""
    settings = _settings()
    _database(settings).dispose()
    runtime, inspection_worker = build_runtime(settings)
    _announce_scanner(runtime)
    try:
        inspection_worker.run()
    except KeyboardInterrupt:
        inspection_worker.stop()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = _settings()
    logging.getLogger("alembic").setLevel(logging.INFO)
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.resolved_database_url)
    typer.echo("database is up to date", err=True)


@app.command("check-config")
def check_config() -> None:
    """Validate the configuration; print every problem with its location, exit 1 on any."""
    try:
        load_settings(_state.config)
    except FilegateError as exc:
        for problem in exc.extra.get("problems", []):  # type: ignore[attr-defined]
            typer.echo(str(problem))
        raise typer.Exit(1) from None
    typer.echo("configuration is valid")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: upload, read, admin.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create a key. The key is printed once, alone on the last line of standard output."""
    db = _database(_settings())
    try:
        record, raw = key_service.create_key(
            db, tenant=tenant, scopes=key_service.parse_scopes(scopes), name=name
        )
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created key {record.id} for tenant {record.tenant} ({scopes}); store it now:")
    typer.echo(raw)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """List keys (never the secrets) as JSON lines."""
    db = _database(_settings())
    for record in key_service.list_keys(db, tenant):
        line = {
            "id": record.id,
            "tenant": record.tenant,
            "name": record.name,
            "prefix": record.prefix,
            "scopes": sorted(s.value for s in record.scopes),
            "created_at": record.created_at.isoformat(),
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        }
        typer.echo(json.dumps(line))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; requests with it fail from now on."""
    db = _database(_settings())
    try:
        key_service.revoke_key(db, key_id)
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key_id}")


@app.command("inspect")
def inspect_paths(
    paths: Annotated[list[Path], typer.Argument(help="Files to inspect.")],
    profile: Annotated[str | None, typer.Option(help="Profile to judge by.")] = None,
) -> None:
    """Inspect files offline; one JSON line each; exit 1 if any is rejected or unreadable."""
    settings = _settings()
    try:
        policy = settings.profile(profile)
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    failed = False
    for path in paths:
        line = _inspect_one(path, policy)
        failed |= line.get("state") != "clean"
        typer.echo(json.dumps(line))
    if failed:
        raise typer.Exit(1)


def _inspect_one(path: Path, policy: InspectionPolicy) -> dict[str, object]:
    if not path.is_file():
        return {"path": str(path), "error": "not a readable file"}
    result = inspect_file(
        path,
        original_name=path.name,
        declared_type=None,
        size=path.stat().st_size,
        policy=policy,
    )
    verdict = result.verdict
    return {
        "path": str(path),
        "state": verdict.state.value,
        "detected_type": verdict.detected_type,
        "findings": [f.as_dict() for f in verdict.findings],
    }


def main() -> None:
    app(prog_name="filegate")


if __name__ == "__main__":
    main()
