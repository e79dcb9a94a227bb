"""Rules of services/orders.py against a real database: all-or-nothing stock, catalogue prices, exact totals."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from database.connection import Database, write_transaction
from database.pagination import PageRequest
from database.repositories import products as products_repo
from database.repositories import users as users_repo
from models import IdempotencyKey, Order, OrderItem, OrderStatus, Product
from services import orders as orders_service
from services.errors import ConflictError, NotFoundError, UnknownReferenceError
from services.orders import OrderLine, fingerprint
from tests.helpers import unique


async def add_user(database: Database) -> int:
    name = unique("buyer")
    async with database.sessionmaker() as session, write_transaction(session):
        user = await users_repo.add_user(
            session, username=name, email=f"{name}@example.com", hashed_password="x" * 60, role="user"
        )
        return user.id


async def add_products(database: Database, *specs: tuple[str, int]) -> list[int]:
    """Products of (price, stock), ids ascending in the order given."""
    ids = []
    async with database.sessionmaker() as session, write_transaction(session):
        for price, stock in specs:
            product = await products_repo.add_product(
                session, name=unique("Product "), price=Decimal(price), stock=stock
            )
            ids.append(product.id)
    return ids


async def stock_of(database: Database, product_ids: Sequence[int]) -> list[int]:
    async with database.sessionmaker() as session:
        query = select(Product.id, Product.stock).where(Product.id.in_(product_ids))
        stocks = dict((await session.execute(query)).all())
    return [stocks[product_id] for product_id in product_ids]


async def count_rows(database: Database, model: type) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def render(order: Order) -> str:
    return f"order {order.id}: {order.total} [{', '.join(f'{i.product_id}x{i.quantity}' for i in order.items)}]"


async def place(
    database: Database, user_id: int, lines: Sequence[tuple[int, int]], **kwargs
) -> orders_service.PlacedOrder:
    async with database.sessionmaker() as session:
        return await orders_service.place_order(
            session=session,
            user_id=user_id,
            lines=[OrderLine(product_id=product_id, quantity=quantity) for product_id, quantity in lines],
            render=render,
            **kwargs,
        )


async def get_order(database: Database, order_id: int, owner_id: int | None = None) -> Order:
    async with database.sessionmaker() as session:
        return await orders_service.get_order(session=session, order_id=order_id, owner_id=owner_id)


async def test_order_reserves_stock_at_catalogue_prices_and_totals_exactly(database):
    user_id = await add_user(database)
    first, second = await add_products(database, ("0.10", 10), ("19.90", 5))
    placed = await place(database, user_id, [(second, 2), (first, 3)])

    order = await get_order(database, placed.order_id)
    assert not placed.replayed
    assert placed.body == render(order)
    assert order.user_id == user_id
    assert order.status == OrderStatus.PENDING
    # 0.10 × 3 is 0.30000000000000004 in binary floating point.
    assert order.total == Decimal("40.10")
    assert [(i.product_id, i.quantity, i.price) for i in order.items] == [
        (second, 2, Decimal("19.90")),
        (first, 3, Decimal("0.10")),
    ]
    assert await stock_of(database, [first, second]) == [7, 3]


async def test_short_line_leaves_every_line_untouched(database):
    user_id = await add_user(database)
    # The short product has the higher id, so it is reserved after the first line already succeeded.
    plenty, scarce = await add_products(database, ("5.00", 10), ("5.00", 1))

    with pytest.raises(ConflictError) as refused:
        await place(database, user_id, [(plenty, 4), (scarce, 2)])

    assert refused.value.code == "insufficient_stock"
    assert str(scarce) in refused.value.detail
    assert await stock_of(database, [plenty, scarce]) == [10, 1]
    assert await count_rows(database, Order) == 0
    assert await count_rows(database, OrderItem) == 0

    # Exactly what is left can be had, and then nothing more.
    await place(database, user_id, [(plenty, 4), (scarce, 1)])
    assert await stock_of(database, [plenty, scarce]) == [6, 0]
    with pytest.raises(ConflictError):
        await place(database, user_id, [(scarce, 1)])


@pytest.mark.parametrize("deleted", [False, True], ids=["unknown", "deleted"])
async def test_unknown_or_deleted_product_is_refused_without_changes(database, deleted):
    user_id = await add_user(database)
    kept, gone = await add_products(database, ("1.00", 5), ("1.00", 5))
    if deleted:
        async with database.sessionmaker() as session, write_transaction(session):
            await session.execute(update(Product).where(Product.id == gone).values(deleted_at=datetime.now(UTC)))
    else:
        gone += 1000

    with pytest.raises(UnknownReferenceError) as refused:
        await place(database, user_id, [(kept, 1), (gone, 1)])

    assert refused.value.code == "unknown_product"
    assert await stock_of(database, [kept]) == [5]
    assert await count_rows(database, Order) == 0


async def test_later_price_change_leaves_existing_orders_alone(database):
    user_id = await add_user(database)
    (product,) = await add_products(database, ("10.00", 10))
    before = await place(database, user_id, [(product, 2)])
    async with database.sessionmaker() as session, write_transaction(session):
        await session.execute(update(Product).where(Product.id == product).values(price=Decimal("12.50")))
    after = await place(database, user_id, [(product, 2)])

    old, new = await get_order(database, before.order_id), await get_order(database, after.order_id)
    assert (old.total, old.items[0].price) == (Decimal("20.00"), Decimal("10.00"))
    assert (new.total, new.items[0].price) == (Decimal("25.00"), Decimal("12.50"))


async def test_largest_possible_order_total_is_exact(database):
    user_id = await add_user(database)
    async with database.sessionmaker() as session, write_transaction(session):
        rows = [{"name": f"Max {n}", "price": Decimal("1000000.00"), "stock": 1000} for n in range(100)]
        await products_repo.bulk_insert_products(session, rows)
        product_ids = list((await session.scalars(select(Product.id).order_by(Product.id))).all())

    placed = await place(database, user_id, [(product_id, 1000) for product_id in product_ids])

    order = await get_order(database, placed.order_id)
    assert order.total == Decimal("100000000000.00")
    assert len(order.items) == 100
    assert await stock_of(database, product_ids) == [0] * 100


async def test_missing_or_foreign_order_is_not_found(database):
    owner, stranger = await add_user(database), await add_user(database)
    (product,) = await add_products(database, ("1.00", 5))
    placed = await place(database, owner, [(product, 1)])

    assert (await get_order(database, placed.order_id, owner_id=owner)).id == placed.order_id
    with pytest.raises(NotFoundError):
        await get_order(database, placed.order_id, owner_id=stranger)
    with pytest.raises(NotFoundError):
        await get_order(database, placed.order_id + 1)
    async with database.sessionmaker() as session:
        with pytest.raises(NotFoundError):
            await orders_service.change_order_status(
                session=session, order_id=placed.order_id + 1, status=OrderStatus.PAID
            )


async def test_list_orders_newest_first_per_user_and_status(database):
    owner, other = await add_user(database), await add_user(database)
    (product,) = await add_products(database, ("1.00", 10))
    mine = [(await place(database, owner, [(product, 1)])).order_id for _ in range(3)]
    theirs = (await place(database, other, [(product, 1)])).order_id
    async with database.sessionmaker() as session:
        await orders_service.change_order_status(session=session, order_id=mine[1], status=OrderStatus.PAID)

    async def listed(user_id: int | None, status: OrderStatus | None = None) -> list[int]:
        async with database.sessionmaker() as session:
            page = await orders_service.list_orders(
                session=session, page=PageRequest(page=1, size=10), user_id=user_id, status=status
            )
        return [order.id for order in page.items]

    assert await listed(owner) == mine[::-1]
    assert await listed(None) == [theirs, *mine[::-1]]
    assert await listed(owner, OrderStatus.PAID) == [mine[1]]
    assert await listed(other, OrderStatus.PAID) == []


@pytest.mark.parametrize(
    ("path", "restocked"),
    [
        ([OrderStatus.CANCELLED], True),
        ([OrderStatus.PAID, OrderStatus.CANCELLED], True),
        ([OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED], False),
    ],
    ids=["pending-cancelled", "paid-cancelled", "delivered"],
)
async def test_status_changes_and_cancelling_returns_stock(database, path, restocked):
    user_id = await add_user(database)
    first, second = await add_products(database, ("1.00", 10), ("2.00", 10))
    placed = await place(database, user_id, [(first, 3), (second, 4)])

    for status in path:
        async with database.sessionmaker() as session:
            order = await orders_service.change_order_status(session=session, order_id=placed.order_id, status=status)
        assert order.status == status
    assert await stock_of(database, [first, second]) == ([10, 10] if restocked else [7, 6])

    # The end states are final: a second cancel must not put the stock back twice.
    async with database.sessionmaker() as session:
        with pytest.raises(ConflictError) as refused:
            await orders_service.change_order_status(
                session=session, order_id=placed.order_id, status=OrderStatus.CANCELLED
            )
    assert refused.value.code == "invalid_status_transition"
    assert await stock_of(database, [first, second]) == ([10, 10] if restocked else [7, 6])


async def test_idempotency_key_replays_the_first_order_of_that_user(database):
    user_id, other_user = await add_user(database), await add_user(database)
    (product,) = await add_products(database, ("3.00", 10))
    first = await place(database, user_id, [(product, 2)], idempotency_key="k-1")
    again = await place(database, user_id, [(product, 2)], idempotency_key="k-1")

    assert (again.order_id, again.body, again.replayed) == (first.order_id, first.body, True)
    assert await stock_of(database, [product]) == [8]
    assert await count_rows(database, Order) == 1

    with pytest.raises(ConflictError) as refused:
        await place(database, user_id, [(product, 3)], idempotency_key="k-1")
    assert refused.value.code == "idempotency_key_reused"
    assert await stock_of(database, [product]) == [8]

    # Keys are per user: the same key from someone else is a request of its own.
    theirs = await place(database, other_user, [(product, 2)], idempotency_key="k-1")
    assert (theirs.order_id != first.order_id, theirs.replayed) == (True, False)
    assert await stock_of(database, [product]) == [6]


async def test_expired_idempotency_key_is_fresh_again(database):
    user_id = await add_user(database)
    (product,) = await add_products(database, ("3.00", 10))
    first = await place(database, user_id, [(product, 1)], idempotency_key="k")
    async with database.sessionmaker() as session, write_transaction(session):
        stale = datetime.now(UTC) - timedelta(hours=24, seconds=1)
        await session.execute(update(IdempotencyKey).values(created_at=stale))

    # After 24 hours even a different body is a new request, not a conflict.
    second = await place(database, user_id, [(product, 2)], idempotency_key="k")
    assert second.order_id != first.order_id
    assert not second.replayed
    assert await stock_of(database, [product]) == [7]
    assert await count_rows(database, IdempotencyKey) == 1


async def test_key_without_a_stored_answer_is_in_progress(database):
    user_id = await add_user(database)
    (product,) = await add_products(database, ("3.00", 10))
    lines = [OrderLine(product_id=product, quantity=1)]
    # What a concurrent request's claim looks like before it has stored its answer.
    async with database.sessionmaker() as session, write_transaction(session):
        session.add(IdempotencyKey(user_id=user_id, key="busy", request_hash=fingerprint(lines)))

    with pytest.raises(ConflictError) as refused:
        await place(database, user_id, [(product, 1)], idempotency_key="busy")
    assert refused.value.code == "idempotency_key_in_progress"
    assert await stock_of(database, [product]) == [10]
