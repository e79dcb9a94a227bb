"""The outbox: every domain event, stored in the transaction of the change it describes."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime

# SQLite gives a rowid alias only to a column declared exactly INTEGER PRIMARY KEY.
EventPK = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """One CloudEvent. `id` is the feed's order: commit order, because events are inserted one transaction at a
    time (database/repositories/events.py says how); `event_id` is the CloudEvents id and NATS's Nats-Msg-Id.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_type_id", "type", "id"),
        Index("ix_events_subject_id", "subject", "id"),
        # What the relay still has to publish, oldest first; published rows leave the index.
        Index(
            "ix_events_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index("ix_events_time", "time"),
        # Without AUTOINCREMENT SQLite reuses the highest id once it is deleted (a purge that empties the table):
        # a feed cursor past it would then skip the new events.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    source: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
