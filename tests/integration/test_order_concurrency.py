"""Orders racing each other: never oversold, never a deadlock or lock error, one order per idempotency key.

Requests go through two app instances at once, each with its own connection pool, as two server processes
sharing one database would.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from itertools import cycle

from httpx import Response
from sqlalchemy import event, func, select, text

from auth.roles import Role
from models import Order, OrderItem
from tests.helpers import AppClient, create_product, place_order, signed_in, stocks, wait_for_lock_waiters

ORDERS = "/api/v1/orders"


@asynccontextmanager
async def two_processes(app_client) -> AsyncIterator[tuple[AppClient, AppClient]]:
    # A pool of several connections per app, so the database really sees concurrent transactions.
    async with (
        app_client(database_pool_size=10, database_max_overflow=30) as first,
        app_client(database_pool_size=10, database_max_overflow=30) as second,
    ):
        await asyncio.gather(fill_pool(first), fill_pool(second))
        yield first, second


async def fill_pool(client: AppClient, size: int = 8) -> None:
    """Open the pool's connections up front, as in a server that has been running a while.

    Otherwise the first request takes the one warm connection and finishes while the others are still
    connecting, and the requests hardly overlap inside the database.
    """
    connections = [client.app.state.database.engine.connect() for _ in range(size)]
    await asyncio.gather(*(connection.start() for connection in connections))
    await asyncio.gather(*(connection.close() for connection in connections))


class PeakConnections:
    """The most connections an app held at once: proof that requests overlapped inside the database."""

    def __init__(self, client: AppClient) -> None:
        self.current = self.peak = 0
        pool = client.app.state.database.engine.sync_engine.pool
        event.listen(pool, "checkout", self._checkout)
        event.listen(pool, "checkin", self._checkin)

    def _checkout(self, *_: object) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)

    def _checkin(self, *_: object) -> None:
        self.current -= 1


async def behind_order_lock(client: AppClient, order_id: int, requests: list[Awaitable[Response]]) -> list[Response]:
    """Send `requests` at once; on PostgreSQL, hold the order's row lock until every one of them waits for it.

    So each request has read the order before any of them can change it: the tightest interleaving every time,
    rather than whatever the scheduler happens to produce. (SQLite runs one writer at a time anyway.)
    """
    engine = client.app.state.database.engine
    if engine.dialect.name != "postgresql":
        return list(await asyncio.gather(*requests))
    async with engine.connect() as holder:
        await holder.execute(text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id})
        tasks = [asyncio.ensure_future(request) for request in requests]
        await wait_for_lock_waiters(engine, tasks)
        await holder.rollback()
        return list(await asyncio.gather(*tasks))


async def sold(client: AppClient) -> dict[int, int]:
    """Quantity in order items per product, over every order in the database."""
    async with client.app.state.database.sessionmaker() as session:
        query = select(OrderItem.product_id, func.sum(OrderItem.quantity)).group_by(OrderItem.product_id)
        return {product_id: int(quantity) for product_id, quantity in (await session.execute(query)).all()}


async def order_count(client: AppClient) -> int:
    async with client.app.state.database.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Order))).scalar_one()


async def customers(client: AppClient, count: int) -> Iterator[dict[str, str]]:
    return cycle([(await signed_in(client))[0] for _ in range(count)])


def outcomes(responses: list[Response]) -> Counter[tuple[int, str | None]]:
    """(status, problem code) of each answer; a 500 or a lock error shows up here as itself."""
    return Counter((r.status_code, None if r.status_code < 400 else r.json().get("code")) for r in responses)


async def test_many_simultaneous_orders_sell_exactly_the_stock(app_client):
    async with two_processes(app_client) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        product = await create_product(first, admin, price="12.34", stock=7)
        buyers = await customers(first, 3)
        peaks = [PeakConnections(first), PeakConnections(second)]

        responses = await asyncio.gather(
            *(place_order(app, next(buyers), [(product["id"], 1)]) for app, _ in zip(cycle([first, second]), range(40)))
        )

        assert outcomes(responses) == {(201, None): 7, (409, "insufficient_stock"): 33}
        assert max(peak.peak for peak in peaks) > 1
        assert await stocks(first, product["id"]) == [0]
        assert await sold(first) == {product["id"]: 7}
        assert await order_count(first) == 7
        totals = [Decimal(r.json()["total"]) for r in responses if r.status_code == 201]
        assert sum(totals) == 7 * Decimal("12.34")


async def test_orders_naming_products_in_opposite_orders_neither_deadlock_nor_split(app_client):
    async with two_processes(app_client) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        wide = (await create_product(first, admin, price="1.00", stock=10))["id"]
        narrow = (await create_product(first, admin, price="2.00", stock=6))["id"]
        buyers = await customers(first, 2)
        # Half name the products one way round, half the other: row locks taken in request order would deadlock.
        requests = [[(wide, 1), (narrow, 1)], [(narrow, 1), (wide, 1)]] * 10

        responses = await asyncio.gather(
            *(place_order(app, next(buyers), lines) for app, lines in zip(cycle([first, second]), requests))
        )

        assert outcomes(responses) == {(201, None): 6, (409, "insufficient_stock"): 14}
        # All or nothing: every order took one of each, so the wide product lost exactly as many as the narrow.
        assert await stocks(first, wide, narrow) == [4, 0]
        assert await sold(first) == {wide: 6, narrow: 6}
        assert {r.json()["total"] for r in responses if r.status_code == 201} == {"3.00"}


async def test_racing_requests_with_one_idempotency_key_create_one_order(app_client):
    async with two_processes(app_client) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        product = await create_product(first, admin, price="5.00", stock=100)
        buyer, _ = await signed_in(first)
        headers = buyer | {"Idempotency-Key": "double-click"}

        responses = await asyncio.gather(
            *(place_order(app, headers, [(product["id"], 3)]) for app, _ in zip(cycle([first, second]), range(8)))
        )

        created = [r for r in responses if r.status_code == 201]
        assert created, outcomes(responses)
        assert set(outcomes(responses)) <= {(201, None), (409, "idempotency_key_in_progress")}
        assert {r.content for r in created} == {created[0].content}
        assert {r.headers["location"] for r in created} == {f"{ORDERS}/{created[0].json()['id']}"}
        assert await order_count(first) == 1
        assert await stocks(first, product["id"]) == [97]


async def test_racing_cancellations_return_the_stock_once(app_client):
    async with two_processes(app_client) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        product = await create_product(first, admin, stock=10)
        buyer, _ = await signed_in(first)
        order = (await place_order(first, buyer, [(product["id"], 3)])).json()
        url = f"{ORDERS}/{order['id']}/status"

        responses = await behind_order_lock(
            first,
            order["id"],
            [
                app.patch(url, json={"status": "cancelled"}, headers=admin)
                for app, _ in zip(cycle([first, second]), range(8))
            ],
        )

        assert outcomes(responses) == {(200, None): 1, (409, "invalid_status_transition"): 7}
        assert await stocks(first, product["id"]) == [10]
