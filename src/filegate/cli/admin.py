"""Commands for operators: API keys, webhook endpoints, background jobs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from filegate.cli.command import (
    database_or_exit,
    jobs_app,
    keys_app,
    settings_or_exit,
    webhooks_app,
)
from filegate.cli.runtime import build_runtime
from filegate.db.repository import Jobs
from filegate.domain import SCHEDULED_JOBS, JobKind, JobState, new_id
from filegate.errors import FilegateError
from filegate.services import keys as key_service


@jobs_app.command("status")
def jobs_status(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object instead of a table.")
    ] = False,
) -> None:
    """Queued, running and failed jobs per type, the oldest waiting job, recent failures."""
    from filegate.jobs.queue import HueyQueue, make_huey
    from filegate.jobs.status import job_status

    settings = settings_or_exit()
    db = database_or_exit(settings)
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
    settings = settings_or_exit()
    database_or_exit(settings).dispose()
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
    db = database_or_exit(settings_or_exit())
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
    db = database_or_exit(settings_or_exit())
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
    db = database_or_exit(settings_or_exit())
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

    settings = settings_or_exit()
    db = database_or_exit(settings)
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

    db = database_or_exit(settings_or_exit())
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

    db = database_or_exit(settings_or_exit())
    if not webhook_service.remove_endpoint(db, endpoint_id):
        typer.echo(f"error: No webhook endpoint with id {endpoint_id!r}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {endpoint_id}")
