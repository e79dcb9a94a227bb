"""The feed under concurrent writers: two app instances (two pools, so transactions really interleave on
PostgreSQL) place and cancel orders at once while a reader follows next_cursor. Every committed event is seen once,
in commit order, so an order's created comes before its status_changed.
"""

import asyncio
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import database.connection as connection_module
from auth.roles import Role
from database.connection import write_transaction
from models import Event
from services.events import SYSTEM_ACTOR, EventType, record_event
from tests.helpers import create_product, place_order, signed_in, wait_for_lock_waiters
from tests.integration.test_events import FeedReader

ORDERS = 40
PRODUCTS = 8
FEED = "/api/v1/events"


async def test_a_reader_following_the_cursor_sees_every_event_once_in_commit_order(app_client):
    async with app_client() as first, app_client() as second:
        admin_headers, _ = await signed_in(first, Role.ADMIN)
        # One product per few orders: orders for different products hold no row lock in common, so their
        # transactions overlap and may commit in another order than they started.
        products = [(await create_product(first, admin_headers, stock=ORDERS))["id"] for _ in range(PRODUCTS)]
        customers = [(await signed_in(first))[0] for _ in range(4)]
        storm_over = asyncio.Event()
        seen: list[dict[str, Any]] = []
        cursor = ""

        async def read_page() -> list[dict[str, Any]]:
            nonlocal cursor
            response = await second.get(FEED, params={"cursor": cursor, "size": 7}, headers=admin_headers)
            assert response.status_code == 200, response.text
            cursor = response.json()["next_cursor"]
            return response.json()["items"]

        async def follow() -> None:
            while not storm_over.is_set():
                seen.extend(await read_page())
                await asyncio.sleep(0)
            while batch := await read_page():
                seen.extend(batch)

        async def order_and_cancel(number: int) -> None:
            placing, cancelling = (first, second) if number % 2 else (second, first)
            headers = customers[number % len(customers)]
            response = await place_order(placing, headers, [(products[number % PRODUCTS], 1)])
            assert response.status_code == 201, response.text
            if number % 3:
                cancelled = await cancelling.post(f"/api/v1/orders/{response.json()['id']}/cancel", headers=headers)
                assert cancelled.status_code == 200, cancelled.text

        async def storm() -> None:
            try:
                await asyncio.gather(*(order_and_cancel(number) for number in range(ORDERS)))
            finally:
                storm_over.set()

        await asyncio.gather(storm(), follow())

        async with first.app.state.database.sessionmaker() as session:
            committed = list((await session.scalars(select(Event.event_id).order_by(Event.id))).all())

    assert len({event["id"] for event in seen}) == len(seen)
    assert [event["id"] for event in seen] == committed
    by_order: dict[str, list[str]] = defaultdict(list)
    for event in seen:
        if event["subject"].startswith("orders/"):
            by_order[event["subject"]].append(event["type"])
    assert len(by_order) == ORDERS
    for number, types in enumerate(by_order.values()):
        assert types[0] == "shop.order.created"
        assert types[1:] in ([], ["shop.order.status_changed"]), (number, types)
    assert sum(len(types) for types in by_order.values()) == ORDERS + sum(1 for n in range(ORDERS) if n % 3)


async def test_a_later_transaction_cannot_commit_its_events_before_an_earlier_one(client, admin_headers, monkeypatch):
    """The earlier unit of work has taken its event id and not yet committed: the later one waits for it (the
    lock on PostgreSQL, the write lock on SQLite), so a reader never sees the later id while the earlier is
    missing, which it would then step over for good."""
    database = client.app.state.database
    earlier_inserted, let_earlier_commit = asyncio.Event(), asyncio.Event()
    original = connection_module.insert_events

    async def insert_then_hold(session: AsyncSession, events: Any) -> None:
        await original(session, events)
        if events and events[0]["subject"] == "categories/1":
            earlier_inserted.set()
            await let_earlier_commit.wait()

    monkeypatch.setattr(connection_module, "insert_events", insert_then_hold)
    reader = await FeedReader.start(client, admin_headers)

    async def unit_of_work(subject: str) -> None:
        async with database.sessionmaker() as session, write_transaction(session):
            record_event(session, type=EventType.CATEGORY_UPDATED, subject=subject, actor=SYSTEM_ACTOR, data={})

    earlier = asyncio.ensure_future(unit_of_work("categories/1"))
    await earlier_inserted.wait()
    later = asyncio.ensure_future(unit_of_work("categories/2"))
    await wait_for_lock_waiters(database.engine, [later])
    seen_meanwhile = await reader.new()
    let_earlier_commit.set()
    await asyncio.gather(earlier, later)

    assert seen_meanwhile == []
    assert [event["subject"] for event in await reader.new()] == ["categories/1", "categories/2"]
