"""The expiry sweep finds expired orders through an index, not by scanning every order (PostgreSQL, 100k orders).

Every process runs the sweep every few seconds, so its cost must not grow with the orders the shop has kept.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from config import Settings
from database.connection import Database, write_transaction
from database.repositories import orders as orders_repo
from services.order_status import EXPIRY
from tests.conftest import in_thread

pytestmark = pytest.mark.postgres

ORDERS = 100_000
# Most orders are long finished, one in fifty is pending, and a handful of those are past their deadline.
SEED = [
    text(
        "INSERT INTO users (username, email, hashed_password, role, is_active, created_at, updated_at) "
        "VALUES ('sweeper', 'sweeper@example.com', :hash, 'user', true, now(), now())"
    ),
    text(
        "INSERT INTO orders (user_id, status, total, created_at, updated_at, expires_at) "
        "SELECT (SELECT id FROM users WHERE username = 'sweeper'), "
        "CASE WHEN n % 50 = 0 THEN 'pending' ELSE 'delivered' END, 1, now(), now(), "
        "CASE WHEN n % 5000 = 0 THEN now() - interval '1 minute' "
        "WHEN n % 50 = 0 THEN now() + interval '30 minutes' END "
        "FROM generate_series(1, :count) AS n"
    ),
    text("ANALYZE orders"),
]


async def _seed(url: str) -> None:
    database = Database(Settings(environment="test", database_url=url))
    try:
        async with database.sessionmaker() as session, write_transaction(session):
            await session.execute(text("TRUNCATE users, orders RESTART IDENTITY CASCADE"))
            for statement in SEED:
                await session.execute(statement, {"hash": "x" * 60, "count": ORDERS})
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def many_orders(postgres_url: str) -> str:
    in_thread(asyncio.run, _seed(postgres_url))
    return postgres_url


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


async def test_the_sweeps_claim_reads_the_expiry_index(many_orders):
    database = Database(Settings(environment="test", database_url=many_orders))
    sent: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    from_status, to_status = EXPIRY
    try:
        # The claim commits: the seeded rows serve this test only.
        async with database.sessionmaker() as session, write_transaction(session):
            event.listen(database.engine.sync_engine, "before_cursor_execute", record)
            try:
                claimed = await orders_repo.claim_expired_orders(
                    session, now=datetime.now(UTC), limit=100, from_status=from_status, to_status=to_status
                )
            finally:
                event.remove(database.engine.sync_engine, "before_cursor_execute", record)
            assert len(claimed) == ORDERS // 5000, "the claim should find the expired orders"
            statement, parameters = next((s, p) for s, p in sent if s.lstrip().upper().startswith("UPDATE"))
            connection = await session.connection()
            rows = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            plan = list(plan_nodes(rows.scalar_one()[0]["Plan"]))
    finally:
        await database.dispose()

    scans = [node for node in plan if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "orders"]
    assert not scans, plan
    assert "ix_orders_status_expires_at" in {node.get("Index Name") for node in plan}, plan
