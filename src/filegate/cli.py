"""The command line, and the composition root: the only place that wires the pieces together."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer
from sqlalchemy.exc import SQLAlchemyError

from filegate import __version__
from filegate.config import (
    ConfigProblem,
    Settings,
    action_code_problems,
    config_path,
    load_settings,
)
from filegate.db import migrate as migrations
from filegate.db.engine import Database
from filegate.db.repository import Jobs
from filegate.domain import SCHEDULED_JOBS, InspectionPolicy, JobKind, JobState, new_id
from filegate.errors import FilegateError
from filegate.logs import configure_logging
from filegate.services import keys as key_service

# Each command imports what only it needs (the web app, the inspectors, the queue engine,
# webhooks): `filegate keys create` should not pay a second of imports for FastAPI and Magika.
if TYPE_CHECKING:
    from filegate.jobs.worker import Worker
    from filegate.services.inspection import RunJob
    from filegate.services.runtime import Runtime

log = structlog.get_logger("filegate.cli")

app = typer.Typer(
    name="filegate",
    help="A hardened file-upload gateway: quarantine, inspect, promote, serve.\n\n"
    "Start here: `filegate migrate`, then `filegate serve`, then "
    "`filegate keys create --tenant demo --scopes upload,read`.",
    no_args_is_help=True,
    add_completion=False,
    # Plain click help: `PATHS...` and bare flags, not rich panels with `<bool>` metavars.
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
jobs_app = typer.Typer(
    help="Background jobs: status, and running a schedule now.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")
webhooks_app = typer.Typer(help="Add, list and remove webhook endpoints.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="Config file (default: $FILEGATE_CONFIG or ./filegate.toml).",
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


def _settings(*, check_codes: bool = False) -> Settings:
    """The settings, or exit 1 with every problem. ``check_codes`` also checks the finding
    codes profiles name in ``actions`` (it loads the inspectors, so only commands that use
    them ask)."""
    try:
        settings = load_settings(_state.config)
        problems = _action_code_problems(settings) if check_codes else []
    except FilegateError as exc:
        problems = exc.extra.get("problems", [])  # type: ignore[assignment]
    if problems:
        for problem in problems:
            typer.echo(f"config error: {problem}", err=True)
        raise typer.Exit(1)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _action_code_problems(settings: Settings) -> list[ConfigProblem]:
    from filegate.inspect import FINDING_CODES
    from filegate.services.inspection import WORKER_CODES

    known = set(FINDING_CODES) | set(WORKER_CODES)
    return action_code_problems(settings, known, config_path(_state.config))


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


def build_runtime(settings: Settings, run_job: RunJob | None = None) -> tuple[Runtime, Worker]:
    """Wire the pieces; ``run_job`` defaults to a sandboxed inspector process."""
    from filegate.inspect.sandbox import Sandbox, SandboxLimits
    from filegate.jobs.queue import HueyQueue, make_huey
    from filegate.jobs.worker import build_worker
    from filegate.services.inspection import Inspector
    from filegate.services.runtime import Runtime, scanner_config
    from filegate.storage.local import LocalStorage

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
    queue = HueyQueue(make_huey(settings), settings)
    worker = build_worker(settings, db, storage, queue, inspector)
    return Runtime(settings=settings, db=db, storage=storage, queue=queue), worker


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

    settings = _settings(check_codes=True)
    _database(settings).dispose()
    runtime, worker = build_runtime(settings)
    _sweep_temp(runtime)
    embedded = settings.embedded_worker if embedded_worker is None else embedded_worker
    bind_host, bind_port = host or settings.host, port or settings.port
    _announce_scanner(runtime)
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
    settings = _settings(check_codes=True)
    _database(settings).dispose()
    runtime, job_worker = build_runtime(settings)
    _sweep_temp(runtime)
    _announce_scanner(runtime)
    job_worker.run_forever()


def _sweep_temp(runtime: Runtime) -> None:
    """Temp files of uploads a killed process left behind; the grace period spares the ones
    that other processes on the same storage are still writing."""
    removed = runtime.storage.cleanup_stale_temp(runtime.settings.reconcile_grace_seconds)
    if removed:
        log.warning("storage.stale_temp_removed", count=removed)


@jobs_app.command("status")
def jobs_status(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object instead of a table.")
    ] = False,
) -> None:
    """Queued, running and failed jobs per type, the oldest waiting job, recent failures."""
    from filegate.jobs.queue import HueyQueue, make_huey
    from filegate.jobs.status import job_status

    settings = _settings()
    db = _database(settings)
    queue = HueyQueue(make_huey(settings), settings)
    report = job_status(db, queue)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{'job':<10} {'queued':>7} {'running':>8} {'failed':>7} {'done':>7}  oldest waiting"
    )
    for kind, row in report["jobs"].items():
        oldest = row["oldest_waiting_seconds"]
        typer.echo(
            f"{kind:<10} {row['queued']:>7} {row['running']:>8} {row['failed']:>7} "
            f"{row['done']:>7}  {'-' if oldest is None else f'{oldest:.0f} s'}"
        )
    typer.echo(f"broker: {report['broker_pending']} message(s) pending ({report['queue']})")
    for failure in report["recent_failures"]:
        typer.echo(f"failed: {failure['job']} {failure['subject']}: {failure['error']}")


@jobs_app.command("run")
def jobs_run(
    kind: Annotated[
        str, typer.Argument(metavar="SCHEDULE", help="expire, reconcile, rescan or purge.")
    ],
) -> None:
    """Run a scheduled job now, in this process, and print what it did."""
    settings = _settings()
    _database(settings).dispose()
    if kind not in {k.value for k in SCHEDULED_JOBS}:
        typer.echo(f"error: choose one of {', '.join(k.value for k in SCHEDULED_JOBS)}", err=True)
        raise typer.Exit(2)
    runtime, job_worker = build_runtime(settings)
    job_kind = JobKind(kind)
    slot = f"manual-{new_id()}"
    job_worker.runner.fire_slot(job_kind, slot)
    with runtime.db.session() as session:
        job = Jobs(session).get(job_kind, slot)
    typer.echo(f"{kind}: {job.outcome if job else 'not run'} ({job.state.value if job else '-'})")
    if job is None or job.state is not JobState.DONE:
        raise typer.Exit(1)


@app.command()
def migrate(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only problems (`make run` uses it).")
    ] = False,
) -> None:
    """Bring the database schema up to date.

    Example: filegate migrate   (then: filegate serve)
    """
    settings = _settings()
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
        problems = _action_code_problems(load_settings(_state.config))
    except FilegateError as exc:
        problems = exc.extra.get("problems", [])  # type: ignore[assignment]
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    typer.echo("configuration is valid")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(metavar="TENANT", help="The tenant the key acts for.")],
    scopes: Annotated[
        str, typer.Option(metavar="SCOPES", help="Comma-separated: upload, read, admin.")
    ],
    name: Annotated[
        str, typer.Option(metavar="TEXT", help="A label to recognise the key by.")
    ] = "",
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
    tenant: Annotated[
        str | None, typer.Option(metavar="TENANT", help="Only this tenant's keys.")
    ] = None,
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
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id.")],
) -> None:
    """Revoke a key; requests with it fail from now on."""
    db = _database(_settings())
    try:
        key_service.revoke_key(db, key_id)
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key_id}")


@webhooks_app.command("add")
def webhooks_add(
    tenant: Annotated[
        str, typer.Option(metavar="TENANT", help="The tenant whose events are sent.")
    ],
    url: Annotated[str, typer.Option(metavar="URL", help="The receiver's http(s) URL.")],
    events: Annotated[
        str | None,
        typer.Option(
            metavar="EVENTS",
            help="Comma-separated: file.clean, file.rejected, upload.expired (all).",
        ),
    ] = None,
) -> None:
    """Add an endpoint. Its signing secret is printed once, alone on the last line of stdout."""
    from filegate.services import webhooks as webhook_service

    settings = _settings()
    db = _database(settings)
    try:
        record, secret = webhook_service.create_endpoint(
            db,
            tenant=tenant,
            url=url,
            events=events,
            allow_internal=settings.webhook_allow_internal,
        )
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    kinds = ",".join(sorted(record.events))
    typer.echo(f"added webhook {record.id} for tenant {record.tenant} ({kinds}) -> {record.url}")
    typer.echo("signing secret (store it now):")
    typer.echo(secret)


@webhooks_app.command("list")
def webhooks_list(
    tenant: Annotated[
        str | None, typer.Option(metavar="TENANT", help="Only this tenant's endpoints.")
    ] = None,
) -> None:
    """List endpoints (never their secrets) as JSON lines."""
    from filegate.services import webhooks as webhook_service

    db = _database(_settings())
    for record in webhook_service.list_endpoints(db, tenant):
        line = {
            "id": record.id,
            "tenant": record.tenant,
            "url": record.url,
            "events": sorted(record.events),
            "created_at": record.created_at.isoformat(),
        }
        typer.echo(json.dumps(line))


@webhooks_app.command("remove")
def webhooks_remove(
    endpoint_id: Annotated[str, typer.Argument(metavar="ENDPOINT_ID", help="The endpoint's id.")],
) -> None:
    """Remove an endpoint; its undelivered events are given up."""
    from filegate.services import webhooks as webhook_service

    db = _database(_settings())
    if not webhook_service.remove_endpoint(db, endpoint_id):
        typer.echo(f"error: No webhook endpoint with id {endpoint_id!r}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {endpoint_id}")


@app.command("inspect")
def inspect_paths(
    paths: Annotated[list[Path], typer.Argument(metavar="FILE", help="Files to inspect.")],
    profile: Annotated[
        str | None, typer.Option(metavar="PROFILE", help="Profile to judge by.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="For each finding, show where its evidence is and which setting decides it.",
        ),
    ] = False,
) -> None:
    """Inspect files offline; one JSON line each; exit 1 if any is rejected or unreadable.

    With --explain, a readable report instead: each finding with its evidence (part, object,
    offset), what the profile does with it, and the setting to change for a false positive.
    """
    settings = _settings(check_codes=True)
    try:
        policy = settings.profile(profile)
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    failed = False
    for path in paths:
        line = _inspect_one(path, policy)
        failed |= line.get("state") != "clean"
        typer.echo(_explained(line) if explain else json.dumps(line))
    if failed:
        raise typer.Exit(1)


def _explained(line: dict[str, Any]) -> str:
    if "error" in line:
        return f"{line['path']}: {line['error']}"
    lines = [f"{line['path']}: {line['state']} ({line['detected_type']})"]
    for finding in line["findings"]:
        lines.append(f"  {finding['action']:<6}  {finding['code']}: {finding['message']}")
        if finding.get("where"):
            lines.append(f"          where: {finding['where']}")
        lines.append(f"          rule:  {finding['rule']}")
    for change in line.get("sanitize_changes", []):
        lines.append(f"  copy    {change}")
    return "\n".join(lines)


def _inspect_one(path: Path, policy: InspectionPolicy) -> dict[str, Any]:
    from filegate.inspect.pipeline import explain, inspect_file

    if not path.is_file():
        return {"path": str(path), "error": "not a readable file"}
    with tempfile.TemporaryDirectory(prefix="filegate-inspect-") as scratch:
        result = inspect_file(
            path,
            original_name=path.name,
            declared_type=None,
            size=path.stat().st_size,
            policy=policy,
            sanitized_path=str(Path(scratch) / "copy"),
        )
    verdict = result.verdict
    findings = []
    for finding in verdict.findings:
        action, rule = explain(policy, finding)
        findings.append({**finding.as_dict(), "action": action.value, "rule": rule})
    return {
        "path": str(path),
        "state": verdict.state.value,
        "detected_type": verdict.detected_type,
        "findings": findings,
        "sanitized": bool(result.changes),
        "sanitize_changes": list(result.changes),
    }


@app.command("import")
def import_files(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="SOURCE", help="A directory (imported recursively) or a CSV manifest."
        ),
    ],
    tenant: Annotated[
        str, typer.Option(metavar="TENANT", help="The tenant the files are imported for.")
    ],
    profile: Annotated[
        str | None,
        typer.Option(metavar="PROFILE", help="Profile to judge by (setting: default_profile)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the new files' verdicts.")
    ] = True,
    wait_seconds: Annotated[
        float,
        typer.Option(
            min=0, metavar="SECONDS", help="The longest to wait for verdicts after the last copy."
        ),
    ] = 600.0,
) -> None:
    """Import a directory or a CSV manifest as uploads; print a summary, then its counts as JSON.

    Exit 0 when no file failed, 1 when any did, 2 for a bad profile, tenant or source.
    """
    from filegate import import_run
    from filegate.services import imports as import_service

    settings = _settings(check_codes=True)
    try:
        policy = settings.profile(profile)
        key_service.validate_tenant(tenant)
        sources = import_service.read_sources(source)
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    _database(settings).dispose()
    runtime, job_worker = build_runtime(settings)
    # Webhooks of imported files are sent by the server's workers, with the server's settings.
    job_worker.queue.hold(frozenset({JobKind.DELIVER}))
    importer = import_service.Importer(runtime.db, runtime.storage, runtime.queue, tenant, policy)
    # Without a wait nothing needs inspecting here: the queued jobs go to the next worker.
    embedded = import_run.OnDemandWorker(
        job_worker,
        enabled=wait and settings.embedded_worker,
        on_start=lambda: _announce_scanner(runtime),
    )
    try:
        summary = import_run.import_all(importer, sources, embedded, wait_seconds if wait else 0.0)
    finally:
        embedded.stop()
        job_worker.queue.release_held()
        runtime.db.dispose()
    for line in summary.lines():
        typer.echo(line)
    typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
    raise typer.Exit(1 if summary.failed else 0)


def main() -> None:
    app(prog_name="filegate")


if __name__ == "__main__":
    main()
