"""The relay: every committed event into NATS JetStream, at least once and in commit order, from one process at a time.

Every service process runs one (main.py's lifespan, when NATS_URL is set), and one of them leads: the one holding
the relay lock (database/leadership.py). The others try to take it every LEADER_RETRY_SECONDS, so one takes over
about a second after the leader dies. The leader reads the oldest unpublished events in id order (which is commit
order: database/repositories/events.py), publishes them one at a time, each waiting for JetStream's ack, and marks
the acknowledged ones published. A publish that fails stops the batch there, so no later event of a subject can
overtake an earlier one; the leader backs off and starts again from the first unacknowledged event.

What can repeat: an event acknowledged and not yet marked when its leader died (or the database failed) is
published again by the next leader, with the same Nats-Msg-Id, and JetStream drops it within the stream's
duplicate window. Two leaders at once (an old one that has not noticed its lock is gone) publish the same events
in the same order, so the stream's first copy of each still comes in commit order.

Requests never wait for any of this: they only commit their events and set an asyncio.Event that wakes the relay.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from enum import Enum

from config import Settings
from database.connection import Database, write_transaction
from database.leadership import Leadership, LeadershipLostError, relay_leadership
from database.repositories import events as events_repo
from infrastructure.nats import JetStreamPublisher, encode
from models import Event
from models.base import utcnow
from observability.metrics import (
    EVENT_PUBLISH_FAILURES,
    EVENTS_PENDING,
    EVENTS_PUBLISHED,
    OLDEST_PENDING_EVENT_AGE,
)
from services.events import cloud_event

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
# How often a leader looks for events committed by other processes; its own process's commits wake it at once.
IDLE_POLL_SECONDS = 0.25
LEADER_RETRY_SECONDS = 1.0
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
BACKLOG_REFRESH_SECONDS = 1.0


class Outcome(Enum):
    DRAINED = "drained"  # nothing more to publish right now
    MORE = "more"  # a full batch went out: read the next at once
    FAILED = "failed"


class Backoff:
    """Exponential, from BACKOFF_FIRST_SECONDS up to BACKOFF_MAX_SECONDS, reset by a success."""

    def __init__(self) -> None:
        self._delay = 0.0

    def next_delay(self) -> float:
        self._delay = min(BACKOFF_MAX_SECONDS, self._delay * 2 or BACKOFF_FIRST_SECONDS)
        return self._delay

    def reset(self) -> None:
        self._delay = 0.0


class EventRelay:
    def __init__(self, *, database: Database, leadership: Leadership, publisher: JetStreamPublisher) -> None:
        self._database = database
        self._leadership = leadership
        self._publisher = publisher
        self._wake = database.events_committed
        self.leading = False
        # Events this relay had acknowledged, duplicates included: tests tell the relays of one process apart by it.
        self.published = 0

    async def run(self) -> None:
        """Until cancelled: lead whenever the lock is free, and keep the backlog gauges current."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._contend())
                group.create_task(self._observe_backlog())
        finally:
            await self._publisher.close()
            await self._leadership.close()

    async def _contend(self) -> None:
        while True:
            try:
                acquired = await self._leadership.try_acquire()
            except Exception as error:
                logger.warning("cannot take the event relay lock: %r", error)
                acquired = False
            if not acquired:
                await asyncio.sleep(LEADER_RETRY_SECONDS)
                continue
            self.leading = True
            logger.info("this process now publishes the events to NATS")
            try:
                await self._lead()
            except LeadershipLostError as lost:
                logger.warning("stopped publishing events: %s", lost)
            finally:
                self.leading = False
                await self._publisher.close()
                await self._leadership.release()

    async def _lead(self) -> None:
        backoff = Backoff()
        while True:
            # Cleared before reading: a commit after this point wakes the next wait.
            self._wake.clear()
            try:
                outcome = await self._relay_batch()
            except LeadershipLostError:
                raise
            except Exception as error:
                # The database failed: reading or marking. Unmarked events go out again, deduplicated.
                logger.warning("relaying events failed: %r", error)
                outcome = Outcome.FAILED
            if outcome is Outcome.FAILED:
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            if outcome is Outcome.DRAINED:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)

    async def _relay_batch(self) -> Outcome:
        async with self._database.sessionmaker() as session:
            events = await events_repo.unpublished_events(session, limit=BATCH_SIZE)
        if not events:
            return Outcome.DRAINED
        await self._leadership.confirm()
        acknowledged = await self._publish(events)
        if acknowledged:
            async with self._database.sessionmaker() as session, write_transaction(session):
                await events_repo.mark_published(session, ids=acknowledged, at=utcnow())
        if len(acknowledged) < len(events):
            return Outcome.FAILED
        return Outcome.MORE if len(events) == BATCH_SIZE else Outcome.DRAINED

    async def _publish(self, events: Sequence[Event]) -> list[int]:
        """Publish in order until one fails; the ids JetStream acknowledged."""
        acknowledged: list[int] = []
        for event in events:
            try:
                if not self._publisher.connected:
                    await self._publisher.open()
                await self._publisher.publish(
                    event_id=event.event_id, event_type=event.type, body=encode(cloud_event(event))
                )
            except Exception as error:
                EVENT_PUBLISH_FAILURES.inc()
                logger.warning("publishing event %s to NATS failed, will retry: %r", event.event_id, error)
                await self._publisher.close()
                break
            acknowledged.append(event.id)
            EVENTS_PUBLISHED.inc()
            self.published += 1
        return acknowledged

    async def _observe_backlog(self) -> None:
        while True:
            try:
                async with self._database.sessionmaker() as session:
                    pending, oldest = await events_repo.delivery_backlog(session)
            except Exception as error:
                logger.debug("reading the event backlog failed: %r", error)
            else:
                EVENTS_PENDING.set(pending)
                OLDEST_PENDING_EVENT_AGE.set(0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds()))
            await asyncio.sleep(BACKLOG_REFRESH_SECONDS)


def open_event_relay(*, settings: Settings, database: Database) -> EventRelay | None:
    """The relay for this process, or None without NATS_URL (the events then stay in the database and the feed)."""
    if not settings.nats_url:
        return None
    publisher = JetStreamPublisher(
        url=settings.nats_url, stream=settings.nats_stream, subject_prefix=settings.nats_subject_prefix
    )
    return EventRelay(database=database, leadership=relay_leadership(settings), publisher=publisher)
