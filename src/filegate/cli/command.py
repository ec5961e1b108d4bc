"""The `filegate` command: its Typer apps, global options, and the settings and database every
command starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import structlog
import typer
from sqlalchemy.exc import SQLAlchemyError

from filegate import __version__, caching
from filegate.config import (
    ConfigProblem,
    Settings,
    action_code_problems,
    config_path,
    load_settings,
    setting_location,
)
from filegate.db import migrate as migrations
from filegate.db.engine import Database
from filegate.errors import FilegateError
from filegate.logs import configure_logging

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
cache_app = typer.Typer(help="Explain the cache rules (docs/caching.md).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
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


class State:
    config: Path | None = None


state = State()


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
    state.config = config


def settings_or_exit(*, check_codes: bool = False, service: bool = False) -> Settings:
    """The settings, or exit 1 with every problem. ``check_codes`` also checks the finding
    codes profiles name in ``actions`` (it loads the inspectors, so only commands that use
    them ask). A ``service`` (serve, worker, import) logs at ``log_level``; other commands
    print what they are for, and log only warnings unless ``log_level`` is ``debug``."""
    try:
        settings = load_settings(state.config)
        problems = settings_problems_of(settings) if check_codes else []
    except FilegateError as exc:
        problems = exc.extra.get("problems", [])  # type: ignore[assignment]
    if problems:
        for problem in problems:
            typer.echo(f"config error: {problem}", err=True)
        raise typer.Exit(1)
    level = settings.log_level
    if not service and level == "info":
        level = "warning"
    configure_logging(level, settings.log_format)
    return settings


def settings_problems_of(settings: Settings) -> list[ConfigProblem]:
    """Problems only the loaded settings show: unknown finding codes in profile actions, and
    cache rule examples the rules decide otherwise."""
    from filegate.inspect import FINDING_CODES
    from filegate.services.inspection import WORKER_CODES

    known = set(FINDING_CODES) | set(WORKER_CODES)
    source = config_path(state.config)
    examples = [
        ConfigProblem(setting_location(source, *where.split(".")), problem)
        for where, problem in caching.example_problems(settings.cache.rules)
    ]
    return action_code_problems(settings, known, source) + examples


def database_or_exit(settings: Settings) -> Database:
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


def main() -> None:
    app(prog_name="filegate")
