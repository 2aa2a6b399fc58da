from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, TypeDecorator

# Who may read a free-text column, declared on the column (`mapped_column(..., info=...)`):
# text written for the partner, or the bank's own that no partner face ever shows. The partner
# faces read only through portal/services/disclosure.py, which refuses an INTERNAL column;
# tests/test_confidentiality.py writes a marker into every INTERNAL column and crawls the partner.
PARTNER_TEXT = {"audience": "partner"}
INTERNAL_TEXT = {"audience": "internal"}


def audience(column) -> str | None:
    """'partner', 'internal', or None for a column that is not free text written by the bank."""
    return column.info.get("audience")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on the way in and out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
