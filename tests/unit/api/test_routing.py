"""api/routing.py: request JSON is read with exact decimals, and the database released, on every route of the app."""

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.dependencies import SessionDep
from api.routing import APIRouteWithDatabase, api_router, loads_exact
from config import Settings
from main import create_app


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (b"19.90", "19.90"),
        (b"1." + b"0" * 300 + b"1", "1." + "0" * 300 + "1"),
        (b"1e2", "1E+2"),
        (b"-0.0", "-0.0"),
        (b"NaN", "NaN"),
        (b"-Infinity", "-Infinity"),
    ],
)
def test_numbers_with_a_fraction_or_an_exponent_are_exact_decimals(text: bytes, read: str) -> None:
    number = loads_exact(b'{"n": ' + text + b"}")["n"]
    assert isinstance(number, Decimal)
    assert str(number) == read


def test_integers_stay_integers() -> None:
    assert loads_exact(b"[1, -7, 12345678901234567890]") == [1, -7, 12345678901234567890]


def test_every_route_of_the_app_reads_json_exactly_and_releases_the_database() -> None:
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:"))
    # The documented operations: every route of api/routes (the docs pages' own routes read no JSON).
    routes = [route for route in app.routes if isinstance(route, APIRoute) and route.include_in_schema]
    assert len(routes) >= 24
    assert [route.path for route in routes if not isinstance(route, APIRouteWithDatabase)] == []


async def test_a_route_of_another_route_class_cannot_open_the_database() -> None:
    app = FastAPI()

    @app.get("/elsewhere")
    async def elsewhere(session: SessionDep) -> None:
        raise AssertionError("never reached")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="route class"):
            await client.get("/elsewhere")


async def test_an_os_error_of_a_route_that_opened_no_database_is_no_database_loss() -> None:
    router = api_router()

    @router.get("/fails")
    async def fails() -> None:
        raise ConnectionResetError("not the database")

    app = FastAPI()
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(ConnectionResetError):
            await client.get("/fails")
