"""``filegate upload``: send files to a running server with the Python client (resumable)."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from filegate.cli.command import app
from filegate.client import Client, ClientError, File, FileState, Upload, VerdictTimeout

MIB = 1024 * 1024
DEFAULT_URL = "http://127.0.0.1:8000"
ID_LENGTH = 26  # a file id (a ULID)


class Exit(enum.IntEnum):
    """``filegate upload``'s exit codes; the worst outcome among the files wins."""

    OK = 0  # every file uploaded (and, with --wait, clean)
    REJECTED = 1  # with --wait: a file was rejected
    USAGE = 2  # bad arguments, a missing file or no token
    FAILED = 3  # an upload failed (refused, or the network stayed down past the retries)
    NO_VERDICT = 4  # with --wait: a verdict did not come within --timeout
    INTERRUPTED = 130  # Ctrl-C: run the same command again to resume


@dataclass(frozen=True)
class Options:
    profile: str | None
    metadata: dict[str, str]
    chunk_size: int
    resume: bool


@dataclass
class UploadResult:
    path: Path
    upload: Upload | None = None
    file: File | None = None
    error: str | None = None
    exit: Exit = Exit.OK


@app.command("upload")
def upload_command(  # noqa: PLR0917 - Typer passes options as arguments
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, readable=True, help="Files to send."
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for each file's verdict and show them.")
    ] = False,
    profile: Annotated[
        str | None, typer.Option(metavar="PROFILE", help="The server profile to judge by.")
    ] = None,
    url: Annotated[
        str, typer.Option(metavar="URL", envvar="FILEGATE_URL", help="The server's base URL.")
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            envvar="FILEGATE_TOKEN",
            help="API key or upload token (prefer $FILEGATE_TOKEN: arguments show in ps).",
        ),
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option("--metadata", "-m", metavar="KEY=VALUE", help="Upload metadata; repeat."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="With --wait: how long the verdicts may take in all."),
    ] = 600.0,
    chunk_size: Annotated[
        int, typer.Option(metavar="MIB", min=1, max=1024, help="Bytes per PATCH, in MiB.")
    ] = 8,
    resume_store: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            envvar="FILEGATE_RESUME_STORE",
            help="Where unfinished uploads are remembered (default: ~/.cache/filegate).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Resume an interrupted upload of the same file.")
    ] = True,
) -> None:
    """Upload files over tus with a progress bar; run again after an interruption to resume.

    Exit codes: 0 all uploaded (and clean, with --wait); 1 a file was rejected; 2 usage
    error; 3 an upload failed; 4 a verdict did not come in time; 130 interrupted.
    """
    if not token:
        typer.echo("error: give a token with --token or $FILEGATE_TOKEN", err=True)
        raise typer.Exit(Exit.USAGE)
    pairs = _metadata_pairs(metadata or [])
    out, err = Console(), Console(stderr=True)
    try:
        with Client(url, token, resume_store=resume_store) as client:
            options = Options(profile, pairs, chunk_size * MIB, resume)
            outcomes = _upload_all(client, paths, options, err)
            if wait:
                _wait_all(client, outcomes, timeout)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(Exit.USAGE) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume", err=True)
        raise typer.Exit(Exit.INTERRUPTED) from None
    out.print(_summary(outcomes, wait))
    raise typer.Exit(max(outcome.exit for outcome in outcomes))


def _metadata_pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"error: --metadata takes KEY=VALUE, not {item!r}", err=True)
            raise typer.Exit(Exit.USAGE)
        pairs[key] = value
    return pairs


def _upload_all(
    client: Client, paths: list[Path], options: Options, console: Console
) -> list[UploadResult]:
    outcomes = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        for path in paths:
            task = bar.add_task(Text(path.name).markup, total=None)
            outcome = UploadResult(path)
            try:
                outcome.upload = client.upload(
                    path,
                    profile=options.profile,
                    metadata=options.metadata,
                    chunk_size=options.chunk_size,
                    progress=_reporter(bar, task),
                    resume=options.resume,
                )
                bar.console.print(Text(_sent_line(outcome.upload)))
            except ClientError as exc:
                outcome.error, outcome.exit = str(exc), Exit.FAILED
                bar.console.print(Text(f"{path}: failed: {exc}"))
            outcomes.append(outcome)
    return outcomes


def _reporter(bar: Progress, task: TaskID) -> Callable[[int, int], None]:
    def report(sent: int, total: int) -> None:
        bar.update(task, completed=sent, total=total)

    return report


def _sent_line(upload: Upload) -> str:
    line = f"{upload.name}: uploaded as {upload.file_id}, sent {upload.bytes_sent} bytes"
    if upload.resumed_from:
        line += f" (resumed at byte {upload.resumed_from} of {upload.size})"
    return line


def _wait_all(client: Client, outcomes: list[UploadResult], timeout: float) -> None:
    """Inspections run side by side on the server, so ``timeout`` is for all of them."""
    deadline = time.monotonic() + timeout
    for outcome in outcomes:
        if outcome.upload is None:
            continue
        left = max(0.0, deadline - time.monotonic())  # 0: one last look, no waiting
        try:
            outcome.file = client.wait_for_verdict(outcome.upload.file_id, left)
        except VerdictTimeout as exc:
            outcome.file, outcome.exit = exc.file, Exit.NO_VERDICT
        except ClientError as exc:
            outcome.error, outcome.exit = str(exc), Exit.FAILED
        else:
            if outcome.file.state is FileState.REJECTED:
                outcome.exit = Exit.REJECTED


def _summary(outcomes: list[UploadResult], waited: bool) -> Table:
    """One row per file. In a narrow terminal (or a pipe: 80 columns) the path and the
    findings wrap; the id, which the next command needs, and the state are never cut."""
    table = Table()
    table.add_column("file", overflow="fold")
    table.add_column("id", no_wrap=True, min_width=ID_LENGTH)
    table.add_column("state", no_wrap=True)
    table.add_column("findings" if waited else "detail", overflow="fold")
    for outcome in outcomes:
        file_id = outcome.upload.file_id if outcome.upload else ""
        if outcome.error is not None:
            state, detail = "failed", outcome.error
        elif outcome.file is not None:
            state = str(outcome.file.state)
            detail = "\n".join(f"{f.code}: {f.message}" for f in outcome.file.findings)
            if outcome.exit is Exit.NO_VERDICT:
                detail = "no verdict yet"
        else:
            state, detail = "uploaded", ""
        table.add_row(Text(str(outcome.path)), file_id, state, Text(detail))
    return table
