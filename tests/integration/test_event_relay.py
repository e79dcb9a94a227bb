"""The relay in the app's own process, against real NATS JetStream, on SQLite and on PostgreSQL.

Every committed event reaches the stream once, with its subject, its CloudEvent body and its id; one relay
publishes at a time; NATS going away and coming back loses nothing and holds up no request; the delivery metrics.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js.api import DiscardPolicy
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from auth.roles import Role
from config import Settings
from database.connection import Database, write_transaction
from database.leadership import relay_leadership
from models import Event
from services.event_relay import EventRelay, open_event_relay
from services.events import EventType, record_event
from tests.helpers import create_category, create_product, place_order, signed_in
from tests.jetstream import JetStreamTarget, assert_stream_holds_each_event_once, eventually, private_nats_server
from tests.prometheus_text import sample_value


async def stored_events(database: Database) -> list[Event]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(Event).order_by(Event.id))).all())


async def unpublished(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Event).where(Event.published_at.is_(None))))


async def all_published(database: Database) -> bool:
    return await unpublished(database) == 0


async def commit_events(database: Database, count: int, *, per_transaction: int = 1) -> None:
    """`count` events straight through units of work, spread over a few subjects."""
    for start in range(0, count, per_transaction):
        async with database.sessionmaker() as session, write_transaction(session):
            for n in range(start, min(count, start + per_transaction)):
                record_event(
                    session,
                    type=EventType.PRODUCT_UPDATED if n % 2 else EventType.CATEGORY_UPDATED,
                    subject=f"products/{n % 3}",
                    actor="users/1",
                    data={"id": n % 3, "n": n},
                )


async def test_every_committed_change_arrives_once_with_its_subject_body_and_id(backend, app_client, jetstream):
    async with app_client(**jetstream.settings) as client:
        database = client.app.state.database
        admin, _ = await signed_in(client, Role.ADMIN)
        buyer, _ = await signed_in(client)
        category = await create_category(client, admin)
        products = [await create_product(client, admin, category_id=category["id"], stock=5) for _ in range(3)]
        for product in products:
            assert (await place_order(client, buyer, [(product["id"], 2)])).status_code == 201
        # Refused: nothing committed, so nothing to publish.
        assert (await place_order(client, buyer, [(products[0]["id"], 50)])).status_code == 409
        body = {key: products[1][key] for key in ("name", "description", "stock", "category_id")} | {"price": "12.50"}
        edited = await client.put(f"/api/v1/products/{products[1]['id']}", json=body, headers=admin)
        assert edited.status_code == 200, edited.text
        # Several events in one unit of work, and a unit of work that rolls back with its event.
        await commit_events(database, 6, per_transaction=3)
        with contextlib.suppress(RuntimeError):
            async with database.sessionmaker() as session, write_transaction(session):
                record_event(session, type=EventType.USER_UPDATED, subject="users/1", actor="users/1", data={})
                raise RuntimeError("rolled back")

        await eventually(lambda: all_published(database), "events still unpublished")
        events = await stored_events(database)
        feed = await client.get("/api/v1/events", params={"size": 100}, headers=admin)
        assert feed.status_code == 200, feed.text

    assert len(events) >= 15
    messages = await jetstream.messages()
    assert_stream_holds_each_event_once(messages, events, jetstream)
    # One publisher: the stream is in commit order as a whole, not only per subject; each body is the feed's item.
    assert [message.body for message in messages] == feed.json()["items"]


async def test_a_refused_publish_stops_the_batch_there_and_only_acknowledged_events_count_as_published(
    backend, app_client, jetstream
):
    # The stream's operators allow 5 messages and refuse more: the 6th publish of one batch of 8 gets no ack.
    client = await nats.connect(jetstream.url)
    try:
        manager = client.jetstream()
        subjects = [f"{jetstream.subject_prefix}.>"]
        await manager.add_stream(name=jetstream.stream, subjects=subjects, max_msgs=5, discard=DiscardPolicy.NEW)
        async with app_client(**jetstream.settings) as app:
            database = app.app.state.database
            await commit_events(database, 8, per_transaction=8)
            failures = await _metric(app, "shop_event_publish_failures_total")
            # A failure is counted before its batch marks what was acknowledged; a second one starts a later batch.
            await eventually(
                lambda: _metric_above(app, "shop_event_publish_failures_total", failures + 1), "no refused publish"
            )
            events = await stored_events(database)
            assert [event.published_at is not None for event in events] == [True] * 5 + [False] * 3
            assert [message.msg_id for message in await jetstream.messages()] == [e.event_id for e in events[:5]]

            await manager.update_stream(
                name=jetstream.stream, subjects=subjects, max_msgs=-1, discard=DiscardPolicy.NEW
            )
            await eventually(lambda: all_published(database), "events still unpublished once the stream took them")
    finally:
        await client.close()
    assert [message.msg_id for message in await jetstream.messages()] == [event.event_id for event in events]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_leader_whose_lock_connection_dies_stops_and_a_leader_takes_the_lock_again(
    backend, app_client, jetstream, capsys
):
    async with app_client(**jetstream.settings) as client:
        relay, database = client.app.state.event_relay, client.app.state.database
        await eventually(lambda: _true(relay.leading), "the relay never led")
        engine = create_async_engine(backend.database_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                ended = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'shop-event-relay'"
                    )
                )
        finally:
            await engine.dispose()
        assert ended == 1
        await commit_events(database, 5)
        await eventually(lambda: all_published(database), "events still unpublished after the lock was lost")
        events = await stored_events(database)

    # The app's JSON log goes to standard output.
    assert "stopped publishing events: the connection holding the relay lock failed" in capsys.readouterr().out
    assert_stream_holds_each_event_once(await jetstream.messages(), events, jetstream)


async def _true(value: bool) -> bool:
    return value


@contextlib.asynccontextmanager
async def running(relay: EventRelay) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_one_relay_publishes_at_a_time_and_another_takes_over_when_it_stops(backend, jetstream):
    settings = backend.settings(**jetstream.settings)
    first_database, second_database = Database(settings), Database(settings)
    first = open_event_relay(settings=settings, database=first_database)
    second = open_event_relay(settings=settings, database=second_database)
    assert first is not None
    assert second is not None
    try:
        async with running(first) as first_task:
            await eventually(lambda: _true(first.leading), "the first relay never led")
            async with running(second):
                # A third contender finds the lock taken, as the second relay does every second.
                outsider = relay_leadership(settings)
                try:
                    assert await outsider.try_acquire() is False
                finally:
                    await outsider.close()
                await commit_events(first_database, 10)
                await commit_events(second_database, 10)
                await eventually(lambda: all_published(first_database), "events still unpublished")
                assert (first.published, second.published, second.leading) == (20, 0, False)

                first_task.cancel()
                await eventually(lambda: _true(second.leading), "the second relay never took over")
                await commit_events(first_database, 5)
                await eventually(lambda: all_published(second_database), "events still unpublished")
                assert (first.published, second.published) == (20, 5)
        events = await stored_events(first_database)
    finally:
        await first_database.dispose()
        await second_database.dispose()

    assert_stream_holds_each_event_once(await jetstream.messages(), events, jetstream)


async def test_nats_down_during_a_burst_holds_up_no_request_and_everything_arrives_once_it_is_back(
    backend, app_client, tmp_path
):
    suffix = uuid.uuid4().hex[:12]
    with private_nats_server(tmp_path) as nats_server:
        nats_server.start()
        target = JetStreamTarget(nats_server.url, stream=f"outage-{suffix}", subject_prefix=f"o{suffix}")
        async with app_client(**target.settings) as client:
            database = client.app.state.database
            admin, _ = await signed_in(client, Role.ADMIN)
            buyer, _ = await signed_in(client)
            product = await create_product(client, admin, stock=1000)
            await eventually(lambda: all_published(database), "events still unpublished before the outage")
            failures = await _metric(client, "shop_event_publish_failures_total")

            nats_server.stop()
            statuses = []
            for n in range(30):
                if n % 3 == 0:
                    response = await client.post("/api/v1/categories", json={"name": f"Outage {n}"}, headers=admin)
                else:
                    response = await place_order(client, buyer, [(product["id"], 1)])
                statuses.append(response.status_code)
            assert set(statuses) == {201}
            assert (await client.get("/ready")).status_code == 200
            # The relay tried and failed while NATS was away; the burst waits in the database.
            await eventually(
                lambda: _metric_above(client, "shop_event_publish_failures_total", failures), "no failed publish"
            )
            assert await unpublished(database) >= 30

            nats_server.start()
            await eventually(lambda: all_published(database), "events still unpublished after NATS came back")
            events = await stored_events(database)
        assert_stream_holds_each_event_once(await target.messages(), events, target)


async def _metric(client, name: str) -> float:
    return sample_value((await client.get("/metrics")).text, name)


async def _metric_above(client, name: str, floor: float) -> bool:
    return await _metric(client, name) > floor


async def test_the_delivery_metrics_follow_the_backlog(backend, app_client, tmp_path):
    suffix = uuid.uuid4().hex[:12]
    with private_nats_server(tmp_path) as nats_server:
        # Not started: NATS is unreachable from the start.
        target = JetStreamTarget(nats_server.url, stream=f"metrics-{suffix}", subject_prefix=f"m{suffix}")
        async with app_client(**target.settings) as client:
            database = client.app.state.database
            published = await _metric(client, "shop_events_published_total")
            await commit_events(database, 4)

            async def backlog_shown() -> bool:
                text = (await client.get("/metrics")).text
                return (
                    sample_value(text, "shop_events_pending") == 4
                    and sample_value(text, "shop_events_oldest_pending_age_seconds") > 0
                )

            await eventually(backlog_shown, "the backlog never showed in /metrics")
            nats_server.start()

            async def backlog_gone() -> bool:
                text = (await client.get("/metrics")).text
                return (
                    sample_value(text, "shop_events_pending") == 0
                    and sample_value(text, "shop_events_oldest_pending_age_seconds") == 0
                    and sample_value(text, "shop_events_published_total") >= published + 4
                )

            await eventually(backlog_gone, "the backlog never drained in /metrics")


async def test_without_nats_url_no_relay_runs(client):
    assert client.app.state.event_relay is None
    assert (
        open_event_relay(settings=Settings(environment="test", nats_url=None), database=client.app.state.database)
        is None
    )
