"""The note every migration carries in its docstring: who owns it, what it leaves, how it rolls
back and how long it takes. `filegate db history` prints them; a test refuses a revision
without one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory

from filegate.db.migrate import MIGRATIONS_DIR

# The fields, in the order a note lists them; each starts a line as ``Field: text`` and may
# continue on the lines after it.
FIELDS = ("Owner", "Expected result", "Rollback", "Expected duration")
# A duration means nothing without the size it was measured on: "... on 200,000 rows".
_ON_ROWS = re.compile(r"\bon [\d,]+ rows\b")
_FIELD_START = re.compile(rf"^({'|'.join(FIELDS)}):\s*(.*)$")
# Alembic's own header lines, which end the title paragraph in a revision's docstring.
_HEADER = re.compile(r"^(Revision ID|Revises|Create Date):")


@dataclass(frozen=True, slots=True)
class Note:
    revision: str
    title: str
    fields: dict[str, str]


def title_of(docstring: str) -> str:
    """The first paragraph, on one line."""
    lines = []
    for line in docstring.strip().splitlines():
        if not line.strip() or _HEADER.match(line):
            break
        lines.append(line.strip())
    return " ".join(lines)


def fields_of(docstring: str) -> dict[str, str]:
    """Each field's text, continuation lines joined; a blank line or a new field ends one."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in docstring.splitlines():
        line = raw.strip()
        start = _FIELD_START.match(line)
        if start:
            current = found.setdefault(start.group(1), [])
            current.append(start.group(2))
        elif line and current is not None:
            current.append(line)
        else:
            current = None
    return {field: " ".join(part for part in parts if part) for field, parts in found.items()}


def problems_of(docstring: str) -> list[str]:
    """What the note lacks: a missing or empty field, a template ``<placeholder>``, or a
    duration that does not say on how many rows."""
    fields = fields_of(docstring)
    problems = []
    for field in FIELDS:
        text = fields.get(field, "")
        if not text or text.startswith("<"):
            problems.append(f"{field}: needs real text")
    duration = fields.get("Expected duration", "")
    if duration and not duration.startswith("<") and not _ON_ROWS.search(duration):
        problems.append("Expected duration: say on how many rows (`... on 200,000 rows`)")
    return problems


def note_of(revision: str, docstring: str) -> Note:
    return Note(revision, title_of(docstring), fields_of(docstring))


def notes(scripts: Path = MIGRATIONS_DIR) -> list[Note]:
    """Every revision's note, oldest first."""
    revisions = reversed(list(ScriptDirectory(str(scripts)).walk_revisions()))
    return [note_of(rev.revision, rev.module.__doc__ or "") for rev in revisions]
