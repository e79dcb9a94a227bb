"""SQL for orders, their items, and idempotency keys."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from database.pagination import Keyset, ListRequest, Page, fetch_page
from database.upsert import insert_ignoring_conflicts
from models import IdempotencyKey, Order, OrderItem, OrderStatus


async def add_order(
    session: AsyncSession,
    *,
    user_id: int,
    total: Decimal,
    items: Sequence[tuple[int, int, Decimal]],
    now: datetime,
    expires_at: datetime | None,
) -> Order:
    """Insert an order with its (product_id, quantity, unit price) items."""
    order = Order(user_id=user_id, total=total, created_at=now, updated_at=now, expires_at=expires_at)
    order.items = [OrderItem(product_id=pid, quantity=quantity, price=price) for pid, quantity, price in items]
    session.add(order)
    await session.flush()
    return order


async def get_order(session: AsyncSession, order_id: int, *, user_id: int | None = None) -> Order | None:
    """An order with its items; with `user_id`, only if that user owns it."""
    query = select(Order).options(selectinload(Order.items)).where(Order.id == order_id)
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    return (await session.scalars(query.execution_options(populate_existing=True))).first()


async def reload_order(session: AsyncSession, order: Order) -> None:
    """Read `order` and its items afresh into the same objects (after an UPDATE that went around the ORM)."""
    await get_order(session, order.id)


async def get_orders(session: AsyncSession, order_ids: Sequence[int]) -> list[Order]:
    """These orders with their items, read afresh, by id."""
    if not order_ids:
        return []
    query = select(Order).options(selectinload(Order.items)).where(Order.id.in_(order_ids)).order_by(Order.id)
    return list(await session.scalars(query.execution_options(populate_existing=True)))


NEWEST_FIRST = Keyset.of(Order.created_at, Order.id, descending=True)


async def list_orders(
    session: AsyncSession, page: ListRequest, *, user_id: int | None = None, status: OrderStatus | None = None
) -> Page[Order]:
    """Orders newest first, with their items joined in: the page's orders and all their items are one statement."""
    query = select(Order).options(joinedload(Order.items))
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    if status is not None:
        query = query.where(Order.status == status)
    return await fetch_page(session, query, page, NEWEST_FIRST)


async def change_status(
    session: AsyncSession, *, order_id: int, version: int, to_status: OrderStatus, now: datetime
) -> bool:
    """Move an order to `to_status` if it is still at `version`; False when it changed since it was read.

    Every change bumps the version, so of two concurrent changes one wins and the other finds nothing to update.
    An order that leaves pending has no payment deadline any more.
    """
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.version == version)
        .values(status=to_status, updated_at=now, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def claim_expired_orders(
    session: AsyncSession, *, now: datetime, limit: int, from_status: OrderStatus, to_status: OrderStatus
) -> list[int]:
    """Move up to `limit` orders in `from_status` whose deadline has passed to `to_status`; their ids.

    One conditional UPDATE claims them: an order another transaction changed first no longer matches, so it is
    claimed once however many sweepers run. On PostgreSQL, orders another transaction has locked (a payment, a
    sweeper on another process) are skipped rather than waited for. SQLite has no FOR UPDATE, and needs none:
    its writers run one at a time.
    """
    due = (
        select(Order.id)
        .where(Order.status == from_status, Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(Order)
        .where(Order.id.in_(due), Order.status == from_status)
        .values(status=to_status, updated_at=now, expires_at=None)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def ordered_quantities(session: AsyncSession, order_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(product_id, quantity) summed over the items of these orders."""
    query = (
        select(OrderItem.product_id, func.sum(OrderItem.quantity))
        .where(OrderItem.order_id.in_(order_ids))
        .group_by(OrderItem.product_id)
    )
    return [(product_id, int(quantity)) for product_id, quantity in (await session.execute(query)).all()]


async def get_idempotency_key(session: AsyncSession, *, user_id: int, key: str) -> IdempotencyKey | None:
    query = select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    return (await session.scalars(query.execution_options(populate_existing=True))).first()


async def claim_idempotency_key(
    session: AsyncSession, *, user_id: int, key: str, request_hash: str, now: datetime
) -> int | None:
    """Reserve a key for this request; None when another request holds it (waiting for it to finish first)."""
    values = {"user_id": user_id, "key": key, "request_hash": request_hash, "created_at": now}
    return await insert_ignoring_conflicts(session, IdempotencyKey, values, returning=IdempotencyKey.id)


async def complete_idempotency_key(session: AsyncSession, *, key_id: int, order_id: int, response_body: str) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(order_id=order_id, response_body=response_body)
        .execution_options(synchronize_session=False)
    )


async def delete_idempotency_keys_before(
    session: AsyncSession, *, cutoff: datetime, user_id: int | None = None, key: str | None = None
) -> int:
    statement = delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
    if user_id is not None and key is not None:
        statement = statement.where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    return int((await session.execute(statement)).rowcount or 0)
