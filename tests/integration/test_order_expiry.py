"""Payment deadlines: an unpaid order is cancelled after ORDER_PAYMENT_TTL_SECONDS and its stock comes back,
exactly once however many instances sweep, and never after a payment or a cancellation got there first.

Two app instances on one database stand for two server processes (tests/integration/test_multiprocess.py runs
real ones); each runs the sweep of its lifespan.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from itertools import cycle
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select

from auth.roles import Role
from database.repositories import orders as orders_repo
from database.repositories import products as products_repo
from models import Order, OrderItem, OrderStatus, Product
from services import orders as orders_service
from tests.helpers import assert_problem, create_product, place_order, signed_in, stocks, wait_for_lock_waiters

ORDERS = "/api/v1/orders"
# A deadline of a second, swept five times a second: orders expire while the test watches.
EXPIRING = {"order_payment_ttl_seconds": 1, "order_expiry_check_seconds": 0.2}
# Guards a wait that went wrong, not a speed requirement.
WAIT_SECONDS = 60


@asynccontextmanager
async def two_instances(app_client: Callable[..., Any], **settings: Any) -> AsyncIterator[tuple[AsyncClient, ...]]:
    async with app_client(**settings) as first, app_client(**settings) as second:
        yield first, second


async def statuses(client: AsyncClient) -> dict[int, OrderStatus]:
    async with client.app.state.database.sessionmaker() as session:
        return dict((await session.execute(select(Order.id, Order.status))).all())


async def wait_until_none_pending(client: AsyncClient) -> dict[int, OrderStatus]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while OrderStatus.PENDING in (found := await statuses(client)).values():
        assert loop.time() < deadline, f"orders still pending after {WAIT_SECONDS} s: {found}"
        await asyncio.sleep(0.1)
    return found


async def conserved(client: AsyncClient, initial: dict[int, int]) -> dict[int, int]:
    """Per product: stock + the quantities in its non-cancelled orders - the initial stock (0 when conserved)."""
    async with client.app.state.database.sessionmaker() as session:
        held = dict(
            (
                await session.execute(
                    select(OrderItem.product_id, func.sum(OrderItem.quantity))
                    .join(Order, Order.id == OrderItem.order_id)
                    .where(Order.status != OrderStatus.CANCELLED)
                    .group_by(OrderItem.product_id)
                )
            ).all()
        )
        stock = dict((await session.execute(select(Product.id, Product.stock))).all())
    return {
        product_id: stock[product_id] + int(held.get(product_id, 0)) - initial[product_id] for product_id in initial
    }


async def test_unpaid_orders_expire_once_while_two_instances_sweep(app_client):
    async with two_instances(app_client, **EXPIRING) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        buyer, _ = await signed_in(first)
        product = (await create_product(first, admin, stock=100))["id"]
        # Paid, or cancelled, as soon as placed: on a slow machine the other placements could outlast its second.
        paid = (await place_order(first, buyer, [(product, 3)])).json()
        assert (await first.patch(f"{ORDERS}/{paid['id']}/status", json={"status": "paid"}, headers=admin)).is_success
        cancelled = (await place_order(second, buyer, [(product, 3)])).json()
        assert (await second.post(f"{ORDERS}/{cancelled['id']}/cancel", headers=buyer)).is_success
        unpaid = [
            (await place_order(app, buyer, [(product, 3)])).json() for app, _ in zip(cycle([first, second]), range(4))
        ]
        placed = [paid, cancelled, *unpaid]
        for order in placed:
            created = datetime.fromisoformat(order["created_at"])
            assert datetime.fromisoformat(order["expires_at"]) - created == timedelta(seconds=1)

        found = await wait_until_none_pending(first)
        # A few sweeps more on both instances: nothing is put back a second time.
        await asyncio.sleep(10 * EXPIRING["order_expiry_check_seconds"])

        assert found == {paid["id"]: "paid", cancelled["id"]: "cancelled"} | {o["id"]: "cancelled" for o in unpaid}
        assert await stocks(first, product) == [100 - 3]
        for order in unpaid:
            shown = (await second.get(f"{ORDERS}/{order['id']}", headers=buyer)).json()
            assert (shown["status"], shown["expires_at"]) == ("cancelled", None)
            assert shown["updated_at"] >= order["expires_at"]
        # Paid in time: no deadline any more, and nothing expires it.
        assert (await first.get(f"{ORDERS}/{paid['id']}", headers=buyer)).json()["expires_at"] is None


async def test_from_its_deadline_on_an_order_cannot_be_paid(app_client):
    # No sweep during the test: the order stays pending past its deadline.
    async with app_client(order_payment_ttl_seconds=1) as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        buyer, _ = await signed_in(client)
        product = (await create_product(client, admin, stock=5))["id"]
        order = (await place_order(client, buyer, [(product, 2)])).json()
        deadline = datetime.fromisoformat(order["expires_at"])
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.05)

        response = await client.patch(f"{ORDERS}/{order['id']}/status", json={"status": "paid"}, headers=admin)

        assert_problem(response, 409, "order_expired")
        assert (await client.get(f"{ORDERS}/{order['id']}", headers=buyer)).json() == order
        assert await stocks(client, product) == [3]
        # It can still be cancelled, by its owner or an admin, and the sweep then finds nothing to do.
        assert (await client.post(f"{ORDERS}/{order['id']}/cancel", headers=buyer)).status_code == 200
        async with client.app.state.database.sessionmaker() as session:
            assert await orders_service.expire_orders(session=session) == 0
        assert await stocks(client, product) == [5]


async def test_a_ttl_of_zero_sets_no_deadline(app_client):
    async with app_client(order_payment_ttl_seconds=0, order_expiry_check_seconds=0.2) as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        buyer, _ = await signed_in(client)
        product = (await create_product(client, admin, stock=5))["id"]
        order = (await place_order(client, buyer, [(product, 2)])).json()

        assert order["expires_at"] is None
        async with client.app.state.database.sessionmaker() as session:
            far_future = datetime.now(UTC) + timedelta(days=3650)
            assert await orders_service.expire_orders(session=session, now=far_future) == 0
        assert (await client.get(f"{ORDERS}/{order['id']}", headers=buyer)).json()["status"] == "pending"
        assert await stocks(client, product) == [3]


async def test_a_backlog_longer_than_a_batch_is_swept_in_one_go(app_client):
    async with app_client() as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        buyer, _ = await signed_in(client)
        products = [(await create_product(client, admin, stock=10))["id"] for _ in range(2)]
        for _ in range(5):
            assert (await place_order(client, buyer, [(products[0], 1), (products[1], 2)])).status_code == 201
        async with client.app.state.database.sessionmaker() as session:
            later = datetime.now(UTC) + timedelta(hours=1)
            assert await orders_service.expire_orders(session=session, now=later, batch_size=2) == 5
            assert await orders_service.expire_orders(session=session, now=later, batch_size=2) == 0
        assert await stocks(client, *products) == [10, 10]


async def _pay(client: AsyncClient, admin: dict[str, str], order_id: int) -> Response:
    return await client.patch(f"{ORDERS}/{order_id}/status", json={"status": "paid"}, headers=admin)


async def test_an_expiry_committed_while_a_payment_waits_wins(app_client, monkeypatch):
    async with two_instances(app_client) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        buyer, _ = await signed_in(first)
        product = (await create_product(first, admin, stock=5))["id"]
        order = (await place_order(first, buyer, [(product, 2)])).json()
        engine = first.app.state.database.engine
        claimed, release = asyncio.Event(), asyncio.Event()
        restore = products_repo.restore_stock

        async def restore_when_released(*args: Any, **kwargs: Any) -> None:
            # The sweep has claimed the order and holds it, uncommitted, until the payment waits behind it.
            claimed.set()
            await release.wait()
            await restore(*args, **kwargs)

        monkeypatch.setattr(products_repo, "restore_stock", restore_when_released)
        async with first.app.state.database.sessionmaker() as session:
            # The sweep's clock is past the deadline; the payment's is not.
            later = datetime.fromisoformat(order["expires_at"]) + timedelta(seconds=1)
            sweep = asyncio.ensure_future(orders_service.expire_orders(session=session, now=later))
            await claimed.wait()
            payment = asyncio.ensure_future(_pay(second, admin, order["id"]))
            await wait_for_lock_waiters(engine, [payment])
            release.set()
            assert await sweep == 1

        assert_problem(await payment, 409, "invalid_status_transition")
        assert await stocks(first, product) == [5]


async def test_a_payment_in_flight_is_never_expired_under_it(app_client, monkeypatch):
    async with two_instances(app_client) as (first, second):
        admin, _ = await signed_in(first, Role.ADMIN)
        buyer, _ = await signed_in(first)
        product = (await create_product(first, admin, stock=5))["id"]
        order = (await place_order(first, buyer, [(product, 2)])).json()
        paying, release = asyncio.Event(), asyncio.Event()
        change_status = orders_repo.change_status

        async def paid_then_held(*args: Any, **kwargs: Any) -> bool:
            # The payment has written the order, and holds its transaction open.
            changed = await change_status(*args, **kwargs)
            paying.set()
            await release.wait()
            return changed

        monkeypatch.setattr(orders_repo, "change_status", paid_then_held)
        payment = asyncio.ensure_future(_pay(first, admin, order["id"]))
        await paying.wait()
        async with second.app.state.database.sessionmaker() as session:
            later = datetime.fromisoformat(order["expires_at"]) + timedelta(seconds=1)
            sweep = asyncio.ensure_future(orders_service.expire_orders(session=session, now=later))
            if second.app.state.database.engine.dialect.name == "postgresql":
                # The locked order is skipped, not waited for (wait_for: a sweep that waited would never end).
                assert await asyncio.wait_for(sweep, WAIT_SECONDS) == 0
            release.set()
            assert (await payment).status_code == 200
            # On SQLite the sweep waited for the payment's commit, and then found it paid.
            assert await sweep == 0
            assert await orders_service.expire_orders(session=session, now=later) == 0

        assert (await first.get(f"{ORDERS}/{order['id']}", headers=buyer)).json()["status"] == "paid"
        assert await stocks(first, product) == [3]


async def test_stock_is_conserved_through_a_storm_of_orders_cancellations_payments_expiries_and_restocks(app_client):
    generator = random.Random(7)
    async with two_instances(app_client, database_pool_size=10, database_max_overflow=30, **EXPIRING) as apps:
        first = apps[0]
        admin, _ = await signed_in(first, Role.ADMIN)
        buyers = [(await signed_in(first))[0] for _ in range(4)]
        initial = {}
        for stock in (3, 5, 40, 40):
            product = await create_product(first, admin, stock=stock)
            initial[product["id"]] = stock
        restocked = dict.fromkeys(initial, 0)
        outcomes: list[tuple[str, int, str | None]] = []

        def note(kind: str, response: Response) -> Response:
            outcomes.append((kind, response.status_code, response.json().get("code") if response.is_error else None))
            return response

        async def customer(buyer: dict[str, str]) -> None:
            for _ in range(12):
                app = generator.choice(apps)
                lines = generator.sample(sorted(initial), k=generator.randint(1, 3))
                placed = note("place", await place_order(app, buyer, [(p, generator.randint(1, 3)) for p in lines]))
                if placed.status_code != 201:
                    continue
                order_id = placed.json()["id"]
                action = generator.choice(["cancel", "pay", "pay and cancel", "leave to expire"])
                if action == "cancel":
                    note("cancel", await generator.choice(apps).post(f"{ORDERS}/{order_id}/cancel", headers=buyer))
                elif action.startswith("pay"):
                    note("pay", await _pay(generator.choice(apps), admin, order_id))
                    if action == "pay and cancel":
                        url = f"{ORDERS}/{order_id}/cancel"
                        note("admin cancel", await generator.choice(apps).post(url, headers=admin))

        async def stock_keeper() -> None:
            for _ in range(10):
                app = generator.choice(apps)
                product_id = generator.choice(sorted(initial))
                path = f"/api/v1/products/{product_id}"
                read = await app.get(path, headers=admin)
                body = {name: read.json()[name] for name in ("name", "description", "price", "category_id")}
                added = generator.randint(1, 4)
                body["stock"] = read.json()["stock"] + added
                written = note(
                    "restock", await app.put(path, json=body, headers=admin | {"If-Match": read.headers["etag"]})
                )
                if written.status_code == 200:
                    restocked[product_id] += added
                await asyncio.sleep(0.05)

        await asyncio.gather(*(customer(buyer) for buyer in buyers), stock_keeper())
        await wait_until_none_pending(first)
        await asyncio.sleep(5 * EXPIRING["order_expiry_check_seconds"])

        # For every product: stock + what non-cancelled orders hold = the initial stock + what was restocked.
        assert await conserved(first, initial) == restocked
        expected = {
            ("place", 201, None),
            ("place", 409, "insufficient_stock"),
            ("cancel", 200, None),
            # Payments and cancellations race the one-second deadline: the sweep may have got there first.
            ("cancel", 409, "invalid_status_transition"),
            ("pay", 200, None),
            ("pay", 409, "order_expired"),
            ("pay", 409, "invalid_status_transition"),
            ("admin cancel", 200, None),
            ("admin cancel", 409, "invalid_status_transition"),
            ("restock", 200, None),
            # An order took stock between the read and the write: refused, and the keeper's sum says so.
            ("restock", 412, "precondition_failed"),
        }
        assert set(outcomes) <= expected, set(outcomes) - expected
        assert ("place", 201, None) in outcomes
