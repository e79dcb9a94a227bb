"""Reading orders takes a fixed number of SQL statements, however many orders and items there are (no N+1)."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from tests.helpers import AppClient, create_product, place_order, signed_in

ORDERS = "/api/v1/orders"


@contextmanager
def recorded_statements(client: AppClient) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs, transaction control left out."""
    statements: list[str] = []
    engine = client.app.state.database.engine.sync_engine

    def record(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        # SQLite's explicit BEGIN (IMMEDIATE) starts a transaction; it reads nothing.
        if not statement.lstrip().upper().startswith("BEGIN"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def statements_for(client: AppClient, url: str, headers: dict[str, str]) -> list[str]:
    with recorded_statements(client) as statements:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return statements


async def test_order_reads_do_not_grow_with_orders_or_items(client, admin_headers):
    products = [(await create_product(client, admin_headers, stock=1000))["id"] for _ in range(5)]
    small, _ = await signed_in(client)
    large, _ = await signed_in(client)
    single = (await place_order(client, small, [(products[0], 1)])).json()
    for _ in range(20):
        biggest = (await place_order(client, large, [(product_id, 2) for product_id in products])).json()
    large_page = (await client.get(ORDERS, headers=large)).json()
    assert (len(large_page["items"]), {len(order["items"]) for order in large_page["items"]}) == (20, {5})

    # The current user, the count of the page, and the orders of the page with all their items at once.
    list_small = await statements_for(client, ORDERS, small)
    list_large = await statements_for(client, ORDERS, large)
    list_all = await statements_for(client, ORDERS, admin_headers)
    assert len(list_small) == 3, list_small
    assert len(list_large) == len(list_small), list_large
    assert len(list_all) == len(list_small), list_all
    # In cursor mode, no count: the current user, then the orders of the page with their items, at any depth.
    first_page = (await client.get(ORDERS, params={"cursor": "", "size": 7}, headers=large)).json()
    for cursor in ("", first_page["next_cursor"]):
        cursor_large = await statements_for(client, f"{ORDERS}?size=7&cursor={cursor}", large)
        assert len(cursor_large) == 2, cursor_large

    # The current user, the order, and its items.
    read_small = await statements_for(client, f"{ORDERS}/{single['id']}", small)
    read_large = await statements_for(client, f"{ORDERS}/{biggest['id']}", large)
    assert len(read_small) == 3, read_small
    assert len(read_large) == len(read_small), read_large
