"""Commands that work without a server: inspect (offline verdicts), import (bulk uploads),
cache explain (the cache rules)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from filegate import caching
from filegate.cli.command import app, cache_app, database_or_exit, settings_or_exit
from filegate.cli.runtime import announce_scanner, build_runtime
from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Files
from filegate.domain import InspectionPolicy, JobKind, is_valid_id
from filegate.errors import FilegateError
from filegate.services import keys as key_service


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
    settings = settings_or_exit(check_codes=True)
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
    from filegate.cli import import_progress as import_run
    from filegate.services import imports as import_service

    settings = settings_or_exit(check_codes=True, service=True)
    try:
        policy = settings.profile(profile)
        key_service.validate_tenant(tenant)
        sources = import_service.read_sources(source)
    except FilegateError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    database_or_exit(settings).dispose()
    runtime, job_worker = build_runtime(settings)
    # Webhooks of imported files are sent by the server's workers, with the server's settings.
    job_worker.queue.hold(frozenset({JobKind.DELIVER}))
    importer = import_service.Importer(runtime.db, runtime.storage, runtime.queue, tenant, policy)
    # Without a wait nothing needs inspecting here: the queued jobs go to the next worker.
    embedded = import_run.OnDemandWorker(
        job_worker,
        enabled=wait and settings.embedded_worker,
        on_start=lambda: announce_scanner(runtime),
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


@cache_app.command("explain")
def cache_explain(  # noqa: PLR0917 - Typer passes options as arguments
    method: Annotated[str, typer.Argument(metavar="METHOD", help="GET or HEAD.")],
    url: Annotated[str, typer.Argument(metavar="URL", help="A path, or a whole URL.")],
    header: Annotated[
        list[str] | None,
        typer.Option("-H", "--header", metavar="'NAME: VALUE'", help="A request header (repeat)."),
    ] = None,
    state: Annotated[
        str, typer.Option(help="The file's state, when the database has none.")
    ] = "clean",
    type_: Annotated[
        str, typer.Option("--type", help="The file's detected type, when the database has none.")
    ] = "",
    limited: Annotated[bool, typer.Option(help="A share link limited to N downloads.")] = False,
) -> None:
    """Which cache rule answers this request, why each earlier rule did not, and the headers.

    The file the URL names is looked up in the database when there is one; else --state and
    --type describe it.

    Example: filegate cache explain GET /v1/files/01J.../content -H 'Authorization: Bearer x'
    """
    settings = settings_or_exit()
    headers = {}
    for line in header or []:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    facts = caching.facts_for(
        method, url, headers, state=state, detected_type=type_, limited=limited
    )
    facts = _with_stored_file(settings, facts)
    for line in caching.explain(settings.cache.rules, facts):
        typer.echo(line)


def _with_stored_file(settings: Settings, facts: caching.Facts) -> caching.Facts:
    """The facts with the named file's real state, type and profile, if the database has it."""
    if not is_valid_id(facts.file_id):
        return facts
    try:
        database = Database(settings.resolved_database_url)
        try:
            with database.session() as session:
                record = Files(session).get(facts.file_id)
        finally:
            database.dispose()
    except SQLAlchemyError:
        return facts
    if record is None:
        return facts
    return dataclasses.replace(
        facts,
        state=record.state.value,
        detected_type=record.detected_type or "",
        profile=record.profile,
    )
