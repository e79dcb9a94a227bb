"""Placing orders (atomic stock reservation, idempotency keys), moving them through their statuses, cancelling
them, and expiring the ones not paid in time."""

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from auth.principal import Principal
from auth.roles import Role
from database.connection import write_transaction
from database.pagination import ListRequest, Page
from database.repositories import orders as orders_repo
from database.repositories import products as products_repo
from models import IdempotencyKey, Order, OrderStatus
from services.access import is_admin, orders_visible_to, require_active_admin
from services.errors import ConflictError, NotFoundError, UnknownReferenceError
from services.events import SYSTEM_ACTOR, EventType, record_change, user_actor
from services.order_status import EXPIRY, OWNER_CANCELLABLE, RESTOCKING_STATUSES, can_transition
from services.preconditions import ExpectedVersions, require_version, stale

logger = logging.getLogger(__name__)

# Expired orders cancelled per transaction: a long backlog is worked off without one huge transaction.
EXPIRY_BATCH_SIZE = 100


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order_id: int
    body: str
    replayed: bool


# Renders the response body of a new order; kept with an idempotency key so a retry gets the same bytes.
RenderOrder = Callable[[Order], str]


def fingerprint(lines: Sequence[OrderLine]) -> str:
    """A digest of what was asked for; a retry must ask for exactly the same."""
    canonical = json.dumps([[line.product_id, line.quantity] for line in lines], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyKey | None, request_hash: str) -> PlacedOrder:
    if record is not None and record.request_hash != request_hash:
        raise ConflictError(
            "This Idempotency-Key was already used with a different request body", code="idempotency_key_reused"
        )
    if record is None or record.response_body is None or record.order_id is None:
        raise ConflictError(
            "A request with this Idempotency-Key is still being processed", code="idempotency_key_in_progress"
        )
    return PlacedOrder(order_id=record.order_id, body=record.response_body, replayed=True)


async def place_order(
    *,
    session: AsyncSession,
    user_id: int,
    lines: Sequence[OrderLine],
    render: RenderOrder,
    idempotency_key: str | None = None,
    idempotency_ttl: timedelta,
    payment_ttl: timedelta | None = None,
) -> PlacedOrder:
    """Reserve every line's stock at its current price and record the order, all or nothing.

    With `payment_ttl`, the order expires (is cancelled, its stock put back) unless paid within that time.
    """
    now = datetime.now(UTC)
    request_hash = fingerprint(lines)
    if idempotency_key is not None:
        record = await orders_repo.get_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if record is not None and record.created_at > now - idempotency_ttl:
            return _replay(record, request_hash)

    async with write_transaction(session):
        key_id = None
        if idempotency_key is not None:
            await orders_repo.delete_idempotency_keys_before(
                session, cutoff=now - idempotency_ttl, user_id=user_id, key=idempotency_key
            )
            key_id = await orders_repo.claim_idempotency_key(
                session, user_id=user_id, key=idempotency_key, request_hash=request_hash, now=now
            )
            if key_id is None:
                # A racing request holds this key; the claim waited for it to finish, so its answer is ours.
                record = await orders_repo.get_idempotency_key(session, user_id=user_id, key=idempotency_key)
                return _replay(record, request_hash)

        expires_at = now + payment_ttl if payment_ttl else None
        order = await _reserve_and_record(session, user_id=user_id, lines=lines, now=now, expires_at=expires_at)
        record_change(session, type=EventType.ORDER_CREATED, resource=order, actor=user_actor(user_id))
        body = render(order)
        if key_id is not None:
            await orders_repo.complete_idempotency_key(session, key_id=key_id, order_id=order.id, response_body=body)
    return PlacedOrder(order_id=order.id, body=body, replayed=False)


async def _reserve_and_record(
    session: AsyncSession, *, user_id: int, lines: Sequence[OrderLine], now: datetime, expires_at: datetime | None
) -> Order:
    wanted = {line.product_id for line in lines}
    missing = wanted - await products_repo.live_product_ids(session, wanted)
    if missing:
        raise UnknownReferenceError(f"Product {min(missing)} does not exist", code="unknown_product")
    items: list[tuple[int, int, Decimal]] = []
    # Rows are locked in product order, so two orders for the same products cannot deadlock each other.
    for line in sorted(lines, key=lambda line: line.product_id):
        price = await products_repo.reserve_stock(session, product_id=line.product_id, quantity=line.quantity)
        if price is None:
            if not await products_repo.live_product_ids(session, [line.product_id]):
                # Deleted since the check above.
                raise UnknownReferenceError(f"Product {line.product_id} does not exist", code="unknown_product")
            raise ConflictError(f"Not enough stock for product {line.product_id}", code="insufficient_stock")
        items.append((line.product_id, line.quantity, price))
    total = sum((price * quantity for _, quantity, price in items), Decimal("0.00"))
    by_request_order = {line.product_id: index for index, line in enumerate(lines)}
    items.sort(key=lambda item: by_request_order[item[0]])
    return await orders_repo.add_order(
        session, user_id=user_id, total=total, items=items, now=now, expires_at=expires_at
    )


async def get_order(*, session: AsyncSession, actor: Principal, order_id: int) -> Order:
    """An order `actor` may see; another user's is reported missing, so ids reveal nothing."""
    order = await orders_repo.get_order(session, order_id, user_id=orders_visible_to(actor=actor))
    if order is None:
        raise NotFoundError(f"Order {order_id} not found")
    return order


async def list_orders(
    *, session: AsyncSession, actor: Principal, page: ListRequest, user_id: int | None, status: OrderStatus | None
) -> Page[Order]:
    """Orders newest first: `actor`'s own, or an admin's choice of everyone's or `user_id`'s."""
    return await orders_repo.list_orders(
        session, page, user_id=orders_visible_to(actor=actor, user_id=user_id), status=status
    )


async def change_order_status(
    *,
    session: AsyncSession,
    actor: Principal,
    order_id: int,
    status: OrderStatus,
    expected_versions: ExpectedVersions = None,
) -> Order:
    """Move an order along the status machine; cancelling puts its stock back, in the same transaction."""
    now = datetime.now(UTC)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        order = await get_order(session=session, actor=actor, order_id=order_id)
        return await _move(session, order, status, actor=actor.id, expected_versions=expected_versions, now=now)


async def cancel_order(
    *, session: AsyncSession, actor: Principal, order_id: int, expected_versions: ExpectedVersions = None
) -> Order:
    """Cancel an order and put its stock back: its owner may while it is pending, an admin while the machine
    allows (pending or paid). Another user's order is reported missing, as reading it is; guests own none."""
    if not actor.role.includes(Role.USER):
        raise NotFoundError(f"Order {order_id} not found")
    as_admin = is_admin(actor)
    now = datetime.now(UTC)
    async with write_transaction(session):
        if as_admin:
            await require_active_admin(session, actor=actor)
        order = await get_order(session=session, actor=actor, order_id=order_id)
        return await _move(
            session,
            order,
            OrderStatus.CANCELLED,
            actor=actor.id,
            expected_versions=expected_versions,
            now=now,
            only_from=None if as_admin else OWNER_CANCELLABLE,
        )


async def _move(
    session: AsyncSession,
    order: Order,
    target: OrderStatus,
    *,
    actor: int,
    expected_versions: ExpectedVersions,
    now: datetime,
    only_from: frozenset[OrderStatus] | None = None,
) -> Order:
    """Take an order, read in the caller's transaction, to `target`, if the status machine (and `only_from`)
    allows; stock goes back when the move calls for it, and the move is recorded as made by user `actor`. The
    precondition is judged first (HTTP puts 412 before the method's own refusals). Returns the order as moved."""
    require_version(order.version, expected_versions, what=f"Order {order.id}")
    current = order.status
    refused = ConflictError(
        f"An order cannot go from {current.value} to {target.value}", code="invalid_status_transition"
    )
    if not can_transition(current, target) or (only_from is not None and current not in only_from):
        raise refused
    if target is OrderStatus.PAID and order.expires_at is not None and order.expires_at <= now:
        raise ConflictError(
            f"Order {order.id} expired at {order.expires_at.isoformat()} and can no longer be paid",
            code="order_expired",
        )
    # Conditional on the version we read: of two concurrent changes, one wins and the other is refused.
    if not await orders_repo.change_status(
        session, order_id=order.id, version=order.version, to_status=target, now=now
    ):
        raise stale(f"Order {order.id}") if expected_versions is not None else refused
    if target in RESTOCKING_STATUSES:
        await products_repo.restore_stock(session, [(item.product_id, item.quantity) for item in order.items])
    # The UPDATE went around the ORM: read the row again, so that what is recorded and returned is what commits.
    await orders_repo.reload_order(session, order)
    record_change(
        session,
        type=EventType.ORDER_STATUS_CHANGED,
        resource=order,
        actor=user_actor(actor),
        previous_status=current.value,
    )
    return order


async def expire_orders(
    *, session: AsyncSession, now: datetime | None = None, batch_size: int = EXPIRY_BATCH_SIZE
) -> int:
    """Cancel every pending order whose payment deadline has passed and put its stock back; how many were.

    Any number of processes may run this at once: each order is claimed by one conditional UPDATE, so it is
    cancelled, and its stock restored, exactly once, and never after a payment or a cancellation got to it first.
    """
    now = now or datetime.now(UTC)
    from_status, to_status = EXPIRY
    expired = 0
    while True:
        async with write_transaction(session):
            claimed = await orders_repo.claim_expired_orders(
                session, now=now, limit=batch_size, from_status=from_status, to_status=to_status
            )
            if claimed and to_status in RESTOCKING_STATUSES:
                await products_repo.restore_stock(session, await orders_repo.ordered_quantities(session, claimed))
            for order in await orders_repo.get_orders(session, claimed):
                record_change(
                    session,
                    type=EventType.ORDER_STATUS_CHANGED,
                    resource=order,
                    actor=SYSTEM_ACTOR,
                    previous_status=from_status.value,
                )
        expired += len(claimed)
        if len(claimed) < batch_size:
            break
    if expired:
        logger.info("cancelled %d orders not paid by their deadline", expired)
    return expired
