"""SQLAlchemy models. Alembic migrations in ``migrations/`` must match these (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Index, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints keep migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite would otherwise hand back naive datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_tenant_id", "tenant", "id"),
        Index("ix_files_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str | None] = mapped_column(String(1024))
    display_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    declared_type: Mapped[str | None] = mapped_column(String(255))
    detected_type: Mapped[str | None] = mapped_column(String(255))
    profile: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    inspected_at: Mapped[datetime | None] = mapped_column()


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class UploadRow(Base):
    """A resumable (tus) upload while its bytes arrive; complete ones share the file's id."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_state_expires_at", "state", "expires_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    length: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    metadata_header: Mapped[str] = mapped_column(String(4096))
    filename: Mapped[str | None] = mapped_column(String(1024))
    filetype: Mapped[str | None] = mapped_column(String(255))
    concat: Mapped[str | None] = mapped_column(String(8))
    parts: Mapped[list[str] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
