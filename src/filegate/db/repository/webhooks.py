"""Webhook endpoints and the events sent to them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select, update
from sqlalchemy.orm import Session

from filegate.db.models import (
    WebhookEndpointRow,
    WebhookEventRow,
)
from filegate.db.repository.base import insert_new, rows_changed
from filegate.domain import (
    EventState,
    EventType,
    WebhookEndpointRecord,
    WebhookEventRecord,
    new_id,
    utcnow,
)


def _endpoint_record(row: WebhookEndpointRow) -> WebhookEndpointRecord:
    return WebhookEndpointRecord(
        id=row.id,
        tenant=row.tenant,
        url=row.url,
        events=frozenset(EventType(e) for e in row.events),
        created_at=row.created_at,
    )


class WebhookEndpoints:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: WebhookEndpointRecord, secret: str) -> None:
        self.session.add(
            WebhookEndpointRow(
                id=record.id,
                tenant=record.tenant,
                url=record.url,
                secret=secret,
                events=sorted(e.value for e in record.events),
                created_at=record.created_at,
            )
        )

    def active(self, tenant: str | None = None) -> list[WebhookEndpointRecord]:
        query = select(WebhookEndpointRow).where(WebhookEndpointRow.deleted_at.is_(None))
        if tenant is not None:
            query = query.where(WebhookEndpointRow.tenant == tenant)
        return [_endpoint_record(r) for r in self.session.scalars(query.order_by("id"))]

    def get(self, endpoint_id: str, tenant: str | None = None) -> WebhookEndpointRecord | None:
        query = select(WebhookEndpointRow).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.deleted_at.is_(None)
        )
        if tenant is not None:
            query = query.where(WebhookEndpointRow.tenant == tenant)
        row = self.session.scalars(query).one_or_none()
        return _endpoint_record(row) if row else None

    def secret(self, endpoint_id: str) -> str | None:
        query = select(WebhookEndpointRow.secret).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.deleted_at.is_(None)
        )
        return self.session.scalar(query)

    def retire(self, endpoint_id: str, tenant: str | None = None) -> bool:
        """Soft-delete: the row stays (its events name it) but no longer counts as active."""
        query = update(WebhookEndpointRow).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.deleted_at.is_(None)
        )
        if tenant is not None:
            query = query.where(WebhookEndpointRow.tenant == tenant)
        result = self.session.execute(query.values(deleted_at=utcnow()))
        return rows_changed(result) > 0


def event_query(event_id: str) -> Select[WebhookEventRow]:
    return select(WebhookEventRow).where(WebhookEventRow.id == event_id)


def failing_endpoints_query(
    since: datetime, limit: int
) -> Select[str, str, str, int, int | None, str | None]:
    # Not delivered, spelt as the states it can be, so (state, created_at) serves it.
    undelivered = [EventState.PENDING.value, EventState.FAILED.value]
    failing = (
        WebhookEventRow.state.in_(undelivered),
        WebhookEventRow.created_at >= since,
        WebhookEventRow.last_error.is_not(None),
    )
    given_up = case((WebhookEventRow.state == EventState.FAILED.value, 1), else_=0)
    return (
        select(
            WebhookEventRow.endpoint_id,
            WebhookEndpointRow.tenant,
            WebhookEndpointRow.url,
            func.count(),
            func.sum(given_up),
            func.max(WebhookEventRow.last_error),
        )
        .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookEventRow.endpoint_id)
        .where(*failing)
        .group_by(WebhookEventRow.endpoint_id, WebhookEndpointRow.tenant, WebhookEndpointRow.url)
        .order_by(func.count().desc())
        .limit(limit)
    )


def _event_record(row: WebhookEventRow) -> WebhookEventRecord:
    return WebhookEventRecord(
        id=row.id,
        endpoint_id=row.endpoint_id,
        tenant=row.tenant,
        type=EventType(row.type),
        subject=row.subject,
        payload=row.payload,
        state=EventState(row.state),
        attempts=row.attempts,
        last_status=row.last_status,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


class WebhookEvents:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        endpoint_id: str,
        tenant: str,
        type_: EventType,
        subject: str,
        payload: Mapping[str, Any],
    ) -> str | None:
        """Record one event for one endpoint; None if this (endpoint, type, subject) exists."""
        event_id = new_id()
        values = {
            "id": event_id,
            "endpoint_id": endpoint_id,
            "tenant": tenant,
            "type": type_.value,
            "subject": subject,
            "payload": dict(payload),
            "state": EventState.PENDING.value,
            "attempts": 0,
            "created_at": utcnow(),
        }
        return event_id if insert_new(self.session, WebhookEventRow, values) else None

    def get(self, event_id: str) -> WebhookEventRecord | None:
        row = self.session.scalars(event_query(event_id)).one_or_none()
        return _event_record(row) if row else None

    def for_subject(self, subject: str) -> list[WebhookEventRecord]:
        query = select(WebhookEventRow).where(WebhookEventRow.subject == subject)
        return [_event_record(r) for r in self.session.scalars(query.order_by("id"))]

    def attempted(self, event_id: str, *, status: int | None, error: str | None) -> None:
        self.session.execute(
            update(WebhookEventRow)
            .where(
                WebhookEventRow.id == event_id, WebhookEventRow.state == EventState.PENDING.value
            )
            .values(
                attempts=WebhookEventRow.attempts + 1,
                last_status=status,
                last_error=error[:1024] if error else None,
            )
        )

    def delivered(self, event_id: str) -> bool:
        result = self.session.execute(
            update(WebhookEventRow)
            .where(
                WebhookEventRow.id == event_id, WebhookEventRow.state == EventState.PENDING.value
            )
            .values(state=EventState.DELIVERED.value, delivered_at=utcnow())
        )
        return rows_changed(result) > 0

    def given_up(self, event_id: str) -> bool:
        result = self.session.execute(
            update(WebhookEventRow)
            .where(
                WebhookEventRow.id == event_id, WebhookEventRow.state == EventState.PENDING.value
            )
            .values(state=EventState.FAILED.value)
        )
        return rows_changed(result) > 0

    def failing_endpoints(self, since: datetime, limit: int) -> list[FailingEndpoint]:
        """Endpoints with events since ``since`` that failed at least once and are not
        delivered (still retrying, or given up), most failing first."""
        query = failing_endpoints_query(since, limit)
        return [
            FailingEndpoint(
                endpoint_id, tenant, url, int(events), int(given_up or 0), str(error or "")
            )
            for endpoint_id, tenant, url, events, given_up, error in self.session.execute(query)
        ]


@dataclass(frozen=True, slots=True)
class FailingEndpoint:
    endpoint_id: str
    tenant: str
    url: str
    failing_events: int
    given_up: int
    last_error: str
