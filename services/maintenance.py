"""Housekeeping: forgetting tokens and idempotency keys that can no longer matter."""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from database.repositories import orders as orders_repo
from database.repositories import tokens as tokens_repo

logger = logging.getLogger(__name__)


async def purge_expired(*, session: AsyncSession, idempotency_ttl: timedelta) -> int:
    now = datetime.now(UTC)
    async with write_transaction(session):
        removed = await tokens_repo.delete_expired_tokens(session, now=now)
        removed += await orders_repo.delete_idempotency_keys_before(session, cutoff=now - idempotency_ttl)
    if removed:
        logger.info("purged %d expired tokens and idempotency keys", removed)
    return removed
