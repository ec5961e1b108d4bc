"""The status page's memory: per-minute signals by release, and the processes that served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from filegate.db.models import ProcessRow, SignalMinuteRow
from filegate.db.repository.base import rows_changed

_SIGNALS = cast(Table, SignalMinuteRow.__table__)
# Rows per INSERT: SQLite allows 32766 bound values, and each row binds six.
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    id: str
    release: str
    role: str
    hostname: str
    pid: int
    started_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """A release as the processes table saw it: first start, last process start, last seen."""

    release: str
    first_started_at: datetime
    last_started_at: datetime
    last_seen_at: datetime


def totals_query(
    since: datetime, until: datetime, release: str | None = None
) -> Select[str, str, int | None, float | None]:
    query = (
        select(
            SignalMinuteRow.signal,
            SignalMinuteRow.label,
            func.sum(SignalMinuteRow.count),
            func.sum(SignalMinuteRow.total),
        )
        .where(SignalMinuteRow.minute >= since, SignalMinuteRow.minute < until)
        .group_by(SignalMinuteRow.signal, SignalMinuteRow.label)
    )
    return query if release is None else query.where(SignalMinuteRow.release == release)


def per_minute_query(
    signal: str, since: datetime, until: datetime
) -> Select[datetime, str, int | None]:
    return (
        select(SignalMinuteRow.minute, SignalMinuteRow.label, func.sum(SignalMinuteRow.count))
        .where(
            SignalMinuteRow.signal == signal,
            SignalMinuteRow.minute >= since,
            SignalMinuteRow.minute < until,
        )
        .group_by(SignalMinuteRow.minute, SignalMinuteRow.label)
    )


class Signals:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, release: str, rows: Mapping[tuple[datetime, str, str], Sequence[float]]) -> None:
        """Add counts and totals to their minutes, creating rows as needed.

        Sorted by key, so two processes adding the same minutes lock the rows in the same
        order (PostgreSQL would otherwise be free to deadlock them).
        """
        values = [
            {
                "minute": minute,
                "release": release,
                "signal": signal,
                "label": label,
                "count": int(count),
                "total": float(total),
            }
            for (minute, signal, label), (count, total) in sorted(rows.items())
        ]
        postgres = self.session.get_bind().dialect.name == "postgresql"
        dialect: Any = postgresql if postgres else sqlite
        for start in range(0, len(values), _BATCH):
            statement = dialect.insert(_SIGNALS).values(values[start : start + _BATCH])
            self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=["minute", "release", "signal", "label"],
                    set_={
                        "count": _SIGNALS.c.count + statement.excluded.count,
                        "total": _SIGNALS.c.total + statement.excluded.total,
                    },
                )
            )

    def totals(
        self, since: datetime, until: datetime, release: str | None = None
    ) -> dict[tuple[str, str], tuple[int, float]]:
        """(signal, label) -> (count, total) over the minutes in [since, until)."""
        return {
            (signal, label): (int(count or 0), float(total or 0.0))
            for signal, label, count, total in self.session.execute(
                totals_query(since, until, release)
            )
        }

    def per_minute(
        self, signal: str, since: datetime, until: datetime
    ) -> dict[tuple[datetime, str], int]:
        """(minute, label) -> count for one signal (the status page's small charts)."""
        query = per_minute_query(signal, since, until)
        return {(minute, label): int(n or 0) for minute, label, n in self.session.execute(query)}

    def forget_before(self, cutoff: datetime) -> int:
        return rows_changed(
            self.session.execute(delete(SignalMinuteRow).where(SignalMinuteRow.minute < cutoff))
        )


class Processes:
    def __init__(self, session: Session) -> None:
        self.session = session

    def register(
        self, process_id: str, *, release: str, role: str, hostname: str, pid: int, now: datetime
    ) -> None:
        self.session.add(
            ProcessRow(
                id=process_id,
                release=release,
                role=role,
                hostname=hostname[:255],
                pid=pid,
                started_at=now,
                last_seen_at=now,
            )
        )

    def heartbeat(self, process_id: str, now: datetime) -> None:
        self.session.execute(
            update(ProcessRow).where(ProcessRow.id == process_id).values(last_seen_at=now)
        )

    def seen_since(self, cutoff: datetime) -> list[ProcessRecord]:
        query = select(ProcessRow).where(ProcessRow.last_seen_at >= cutoff).order_by("started_at")
        return [_process_record(row) for row in self.session.scalars(query)]

    def releases(self) -> list[ReleaseRecord]:
        """Every release that served, oldest first start first."""
        query = (
            select(
                ProcessRow.release,
                func.min(ProcessRow.started_at),
                func.max(ProcessRow.started_at),
                func.max(ProcessRow.last_seen_at),
            )
            .group_by(ProcessRow.release)
            .order_by(func.min(ProcessRow.started_at))
        )
        return [
            ReleaseRecord(release, first, last_start, seen)
            for release, first, last_start, seen in self.session.execute(query)
        ]

    def starts(self) -> list[tuple[datetime, str]]:
        """(started_at, release) of every process, oldest first: the deploy history."""
        query = select(ProcessRow.started_at, ProcessRow.release).order_by(ProcessRow.started_at)
        return [(started, release) for started, release in self.session.execute(query)]

    def forget_before(self, cutoff: datetime) -> int:
        return rows_changed(
            self.session.execute(delete(ProcessRow).where(ProcessRow.last_seen_at < cutoff))
        )


def _process_record(row: ProcessRow) -> ProcessRecord:
    return ProcessRecord(
        id=row.id,
        release=row.release,
        role=row.role,
        hostname=row.hostname,
        pid=row.pid,
        started_at=row.started_at,
        last_seen_at=row.last_seen_at,
    )
