"""Rules of services/orders.py against a real database: all-or-nothing stock, catalogue prices, exact totals."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from database.connection import Database, write_transaction
from database.pagination import PageRequest
from database.repositories import orders as orders_repo
from database.repositories import products as products_repo
from database.repositories import users as users_repo
from models import IdempotencyKey, Order, OrderItem, OrderStatus, Product, User
from services import orders as orders_service
from services.errors import ConflictError, NotFoundError, PermissionDeniedError, UnknownReferenceError
from services.orders import OrderLine, fingerprint
from tests.helpers import unique

IDEMPOTENCY_TTL = timedelta(hours=24)


async def add_user(database: Database, role: str = "user") -> int:
    name = unique(role)
    async with database.sessionmaker() as session, write_transaction(session):
        user = await users_repo.add_user(
            session, username=name, email=f"{name}@example.com", hashed_password="x" * 60, role=role
        )
        return user.id


async def add_actor(database: Database, role: str = "user") -> User:
    """A user as a request carries it: the actor of reads and status changes."""
    user_id = await add_user(database, role)
    async with database.sessionmaker() as session:
        return await session.get_one(User, user_id)


async def add_admin(database: Database) -> User:
    return await add_actor(database, "admin")


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
            idempotency_ttl=IDEMPOTENCY_TTL,
            **kwargs,
        )


async def stored_order(database: Database, order_id: int) -> Order:
    """The order as stored, read past the access rules."""
    async with database.sessionmaker() as session:
        order = await orders_repo.get_order(session, order_id)
    assert order is not None
    return order


async def test_order_reserves_stock_at_catalogue_prices_and_totals_exactly(database):
    user_id = await add_user(database)
    first, second = await add_products(database, ("0.10", 10), ("19.90", 5))
    placed = await place(database, user_id, [(second, 2), (first, 3)])

    order = await stored_order(database, placed.order_id)
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

    old, new = await stored_order(database, before.order_id), await stored_order(database, after.order_id)
    assert (old.total, old.items[0].price) == (Decimal("20.00"), Decimal("10.00"))
    assert (new.total, new.items[0].price) == (Decimal("25.00"), Decimal("12.50"))


async def test_largest_possible_order_total_is_exact(database):
    user_id = await add_user(database)
    async with database.sessionmaker() as session, write_transaction(session):
        rows = [{"name": f"Max {n}", "price": Decimal("1000000.00"), "stock": 1000} for n in range(100)]
        await products_repo.bulk_insert_products(session, rows)
        product_ids = list((await session.scalars(select(Product.id).order_by(Product.id))).all())

    placed = await place(database, user_id, [(product_id, 1000) for product_id in product_ids])

    order = await stored_order(database, placed.order_id)
    assert order.total == Decimal("100000000000.00")
    assert len(order.items) == 100
    assert await stock_of(database, product_ids) == [0] * 100


async def test_an_order_is_its_owners_and_the_admins_and_missing_to_anyone_else(database):
    owner, stranger, admin = await add_actor(database), await add_actor(database), await add_admin(database)
    (product,) = await add_products(database, ("1.00", 5))
    placed = await place(database, owner.id, [(product, 1)])

    async def read(actor: User, order_id: int = placed.order_id) -> Order:
        async with database.sessionmaker() as session:
            return await orders_service.get_order(session=session, actor=actor, order_id=order_id)

    assert (await read(owner)).id == placed.order_id
    assert (await read(admin)).id == placed.order_id
    # Another user's order is reported exactly like one that does not exist.
    with pytest.raises(NotFoundError) as foreign:
        await read(stranger)
    with pytest.raises(NotFoundError) as missing:
        await read(admin, placed.order_id + 1)
    assert foreign.value.detail == f"Order {placed.order_id} not found"
    assert missing.value.detail == f"Order {placed.order_id + 1} not found"
    async with database.sessionmaker() as session:
        with pytest.raises(NotFoundError):
            await orders_service.change_order_status(
                session=session, actor=admin, order_id=placed.order_id + 1, status=OrderStatus.PAID
            )


async def test_list_orders_newest_first_per_user_and_status(database):
    owner, other, admin = await add_actor(database), await add_actor(database), await add_admin(database)
    (product,) = await add_products(database, ("1.00", 10))
    mine = [(await place(database, owner.id, [(product, 1)])).order_id for _ in range(3)]
    theirs = (await place(database, other.id, [(product, 1)])).order_id
    async with database.sessionmaker() as session:
        await orders_service.change_order_status(
            session=session, actor=admin, order_id=mine[1], status=OrderStatus.PAID
        )

    async def listed(actor: User, user_id: int | None = None, status: OrderStatus | None = None) -> list[int]:
        async with database.sessionmaker() as session:
            page = await orders_service.list_orders(
                session=session, actor=actor, page=PageRequest(page=1, size=10), user_id=user_id, status=status
            )
        return [order.id for order in page.items]

    # Everyone else sees their own; an admin sees everyone's, or one user's.
    assert await listed(owner) == mine[::-1]
    assert await listed(owner, owner.id) == mine[::-1]
    assert await listed(owner, status=OrderStatus.PAID) == [mine[1]]
    assert await listed(admin) == [theirs, *mine[::-1]]
    assert await listed(admin, owner.id) == mine[::-1]
    assert await listed(admin, owner.id, OrderStatus.PAID) == [mine[1]]
    assert await listed(admin, other.id, OrderStatus.PAID) == []
    assert await listed(admin, admin.id) == []


@pytest.mark.parametrize("role", ["user", "guest"])
async def test_only_an_admin_may_list_another_users_orders(database, role):
    actor, other = await add_actor(database, role), await add_actor(database)
    (product,) = await add_products(database, ("1.00", 10))
    await place(database, other.id, [(product, 1)])

    async with database.sessionmaker() as session:
        with pytest.raises(PermissionDeniedError) as refused:
            await orders_service.list_orders(
                session=session, actor=actor, page=PageRequest(), user_id=other.id, status=None
            )
    assert refused.value.code == "insufficient_role"


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
    admin = await add_admin(database)

    for status in path:
        async with database.sessionmaker() as session:
            order = await orders_service.change_order_status(
                session=session, actor=admin, order_id=placed.order_id, status=status
            )
        assert order.status == status
    assert await stock_of(database, [first, second]) == ([10, 10] if restocked else [7, 6])

    # The end states are final: a second cancel must not put the stock back twice.
    async with database.sessionmaker() as session:
        with pytest.raises(ConflictError) as refused:
            await orders_service.change_order_status(
                session=session, actor=admin, order_id=placed.order_id, status=OrderStatus.CANCELLED
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
        stale = datetime.now(UTC) - IDEMPOTENCY_TTL - timedelta(seconds=1)
        await session.execute(update(IdempotencyKey).values(created_at=stale))

    # After its time to live even a different body is a new request, not a conflict.
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
