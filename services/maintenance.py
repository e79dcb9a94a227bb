"""Housekeeping: forgetting tokens, idempotency keys and events that can no longer matter."""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from database.repositories import events as events_repo
from database.repositories import orders as orders_repo
from database.repositories import tokens as tokens_repo

logger = logging.getLogger(__name__)


async def purge_expired(
    *, session: AsyncSession, idempotency_ttl: timedelta, event_retention: timedelta, events_delivered: bool
) -> int:
    """Delete what expired. Events go after `event_retention`; when they are delivered to NATS
    (`events_delivered`: NATS_URL is set), an event the relay has not published yet is kept however old it is.
    Without NATS nothing ever publishes them, so age alone decides.
    """
    now = datetime.now(UTC)
    async with write_transaction(session):
        removed = await tokens_repo.delete_expired_tokens(session, now=now)
        removed += await orders_repo.delete_idempotency_keys_before(session, cutoff=now - idempotency_ttl)
        removed += await events_repo.delete_events_before(
            session, cutoff=now - event_retention, published_only=events_delivered
        )
    if removed:
        logger.info("purged %d expired tokens, idempotency keys and events", removed)
    return removed
