"""Every router of the API: the database released before the response, request JSON read with exact decimals
(never binary floats), clean operation ids."""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from api.openapi import operation_id
from api.request_database import DatabaseResources


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:
        # An exponent beyond what Decimal holds (1e10000000000000000000): as unreadable as a 5000-digit integer.
        raise ValueError(f"number out of range: {text[:20]}") from None


def loads_exact(body: bytes) -> Any:
    """Parse JSON with every non-integral number (and NaN, Infinity) as a Decimal.

    A float would turn `1.000…0001` into 1.0 before any validator sees it; as a Decimal it keeps all its
    digits, so "at most two decimals" is judged on what was sent, and integer fields refuse `1.0` and `1e3`.
    """
    return json.loads(body, parse_float=_decimal, parse_constant=Decimal)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


class APIRouteWithDatabase(APIRoute):
    """A route that releases the database session or connection its dependencies opened as soon as it returns,
    and reads request JSON exactly.

    Both through FastAPI's documented hook, a route class: FastAPI reads a body through `Request.json()`, so the
    route hands it a Request of its own.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            # Nothing to parse: FastAPI's handler and its request as they are.
            route_handler = handler
        else:

            async def route_handler(request: Request) -> Response:
                return await handler(ExactJSONRequest(request.scope, request.receive))

        async def handler_releasing_the_database(request: Request) -> Response:
            return await DatabaseResources().run(route_handler, request)

        return handler_releasing_the_database


def api_router(**options: Any) -> APIRouter:
    """A router of this API: the database released before the response, request JSON read exactly, and operation
    ids named after the route functions."""
    return APIRouter(route_class=APIRouteWithDatabase, generate_unique_id_function=operation_id, **options)
