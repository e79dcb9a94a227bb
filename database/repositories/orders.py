"""SQL for orders, their items, and idempotency keys."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from database.pagination import Keyset, ListRequest, Page, fetch_page
from database.upsert import insert_ignoring_conflicts
from models import IdempotencyKey, Order, OrderItem, OrderStatus


async def add_order(
    session: AsyncSession, *, user_id: int, total: Decimal, items: Sequence[tuple[int, int, Decimal]], now: datetime
) -> Order:
    """Insert an order with its (product_id, quantity, unit price) items."""
    order = Order(user_id=user_id, total=total, created_at=now, updated_at=now)
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
    session: AsyncSession, *, order_id: int, from_status: OrderStatus, to_status: OrderStatus, now: datetime
) -> bool:
    """Move an order from one status to another; False when it was no longer in `from_status`."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == from_status)
        .values(status=to_status, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


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
