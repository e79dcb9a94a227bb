"""api/routing.py: request JSON is read with exact decimals, on every route of the app."""

from decimal import Decimal

import pytest
from fastapi.routing import APIRoute

from api.routing import ExactJSONRoute, loads_exact
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


def test_every_route_of_the_app_reads_json_exactly() -> None:
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:"))
    # The documented operations: every route of api/routes (the docs pages' own routes read no JSON).
    routes = [route for route in app.routes if isinstance(route, APIRoute) and route.include_in_schema]
    assert len(routes) >= 24
    assert [route.path for route in routes if not isinstance(route, ExactJSONRoute)] == []
