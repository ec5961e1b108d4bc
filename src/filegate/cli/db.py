"""Commands for the database's changes: the migrations' notes, and rehearsing them on a copy."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from filegate.cli.command import app, settings_or_exit

if TYPE_CHECKING:
    from filegate.db.rehearse import Step

db_app = typer.Typer(
    help="Database changes: each migration's note, and a rehearsal on a copy.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

# Where a note's text wraps, indented under its revision.
WIDTH = 100


@db_app.command("history")
def history() -> None:
    """Every migration, oldest first: its id and title, then who owns it, what it leaves,
    how it rolls back and how long it takes."""
    from filegate.db.notes import FIELDS, notes

    for note in notes():
        typer.echo(f"{note.revision}  {note.title}")
        for field in FIELDS:
            text = f"{field}: {note.fields.get(field, '(missing)')}"
            typer.echo(textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="    "))


@db_app.command("rehearse")
def rehearse(
    revision: Annotated[
        str,
        typer.Option("--revision", metavar="REV", help="Stop at this revision (default: head)."),
    ] = "head",
) -> None:
    """Rehearse the pending migrations on a copy of the configured database: upgrade, check
    each revision's expected result, downgrade to where the database is, upgrade again, and
    plan the hot queries. The database itself is only read; the copy is always dropped.
    One line per step; exit 1 on any failure.

    Example: filegate db rehearse   (then: filegate migrate)
    """
    from filegate.db.rehearse import Step
    from filegate.db.rehearse import rehearse as run

    settings = settings_or_exit()
    failed = False
    try:
        for step in run(settings.resolved_database_url, revision):
            typer.echo(_line(step))
            failed = failed or not step.ok
    except SQLAlchemyError as exc:
        typer.echo(_line(Step(False, "rehearsal stopped", 0.0, (str(exc).splitlines()[0],))))
        failed = True
    if failed:
        raise typer.Exit(1)


def _line(step: Step) -> str:
    line = f"{'ok  ' if step.ok else 'FAIL'} {step.what} ({step.seconds:.2f} s)"
    return line + (": " + "; ".join(step.problems) if step.problems else "")
